"""Clients generated from openapi.json run the whole flow against a live suite
(``python -m tests.clients``, ``make clients``): see ``driver.py``."""
