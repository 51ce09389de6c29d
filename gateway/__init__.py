"""The gateway: one entry for every client, with bearer-token checks, routing and limits."""
