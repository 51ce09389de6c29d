"""The gateway's routes: the proxy's catch-alls, which carry nearly every request, and the
gateway's own answers (health, the merged OpenAPI document)."""
