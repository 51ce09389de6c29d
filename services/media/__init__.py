"""Media: uploads, their processing off the request path, storage and serving (decision 0036)."""
