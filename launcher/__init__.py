"""Starts the whole suite on one machine, as ``make run`` does: migrations, then the four
services and the gateway as five processes."""
