"""Plumbing shared by the services and the gateway; it knows nothing of the domain."""
