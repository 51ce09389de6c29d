#!/bin/sh
# Run once by the postgres image on an empty data directory (docker-entrypoint-initdb.d): one
# role and one database per service, each database owned by its role and closed to the others.
# Passwords come from IDENTITY_DB_PASSWORD (or IDENTITY_DB_PASSWORD_FILE), likewise FEED_,
# GROUPS_, MODERATION_, RECORDS_ and MEDIA_; they never appear in the repository or the image.
set -eu
for service in identity feed groups moderation records media; do
  prefix="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  eval "file=\${${prefix}_FILE:-}"
  if [ -n "$file" ]; then
    password="$(cat "$file")"
  else
    eval "password=\${${prefix}:?${prefix} or ${prefix}_FILE is required}"
  fi
  psql -v ON_ERROR_STOP=1 -v service="$service" -v password="$password" \
    --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
SQL
done
