"""The suite's four services; each owns its database and never imports another."""
