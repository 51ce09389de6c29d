"""Groups: purpose groups, their charters, membership flows and group health."""
