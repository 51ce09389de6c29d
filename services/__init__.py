"""The suite's five services; each owns its database and never imports another."""
