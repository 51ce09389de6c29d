"""The suite's three services; each owns its database and never imports another."""
