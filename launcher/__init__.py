"""Starts the whole suite on one machine, as ``make run`` does: migrations, then the five
services and the gateway as six processes."""
