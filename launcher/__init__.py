"""Starts the whole suite on one machine, as ``make run`` does: migrations, then the three
services and the gateway as four processes."""
