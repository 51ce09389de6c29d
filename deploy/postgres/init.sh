#!/bin/sh
# One database and one role per service, passwords from the environment (never in the repo).
set -eu
for service in identity feed groups; do
  var="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  eval "password=\${$var:?$var is required}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<SQL
CREATE ROLE $service LOGIN PASSWORD '$password';
CREATE DATABASE $service OWNER $service;
SQL
done
