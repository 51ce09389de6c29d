"""socialctl: the command line for integrators' scripts, a pure HTTP client of the gateway."""
