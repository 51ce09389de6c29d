#!/bin/sh
# govsocial COMPONENT: starts one component, or runs one or more services' migrations.
#   govsocial identity|feed|groups|moderation|records|media|gateway
#       listens on $PORT, else on its own default port
#   govsocial migrate identity [feed groups moderation records media]
#       applies the migrations, then exits
set -eu
# IDENTITY_X_FILE=/path (likewise FEED_, GROUPS_, MODERATION_, RECORDS_, MEDIA_, GATEWAY_) sets
# IDENTITY_X to the file's content: secrets mounted as files (Docker, Kubernetes). Other *_FILE
# variables (SSL_CERT_FILE) keep their meaning.
for name in $(env | sed -En 's/^((IDENTITY|FEED|GROUPS|MODERATION|RECORDS|MEDIA|GATEWAY)_[A-Z0-9_]*)_FILE=.*/\1/p'); do
  eval "path=\${${name}_FILE}"
  value="$(cat "$path")"
  export "$name=$value"
  unset "${name}_FILE"
done
component="${1:-gateway}"
serve() {
  # SIGTERM: stop accepting, finish in-flight requests (at most 20 s), stop the relay, exit.
  # asyncio's event loop, not uvloop, which accepts one connection per loop turn (decision 0015).
  # No Server header: no process advertises uvicorn (the gateway writes its own Date alone).
  # kit.serving's protocol sends a response's head and body in one write (decision 0052).
  exec uvicorn "$1" --factory --host 0.0.0.0 --port "$2" --no-access-log --no-server-header --loop asyncio \
    --http kit.serving:HttpProtocol \
    --timeout-graceful-shutdown "${GRACEFUL_SHUTDOWN_SECONDS:-20}" --timeout-keep-alive 5 --proxy-headers
}
case "$component" in
  identity) serve services.identity.app:create_app "${PORT:-${IDENTITY_PORT:-8001}}" ;;
  feed) serve services.feed.app:create_app "${PORT:-${FEED_PORT:-8002}}" ;;
  groups) serve services.groups.app:create_app "${PORT:-${GROUPS_PORT:-8003}}" ;;
  moderation) serve services.moderation.app:create_app "${PORT:-${MODERATION_PORT:-8004}}" ;;
  records) serve services.records.app:create_app "${PORT:-${RECORDS_PORT:-8005}}" ;;
  media) serve services.media.app:create_app "${PORT:-${MEDIA_PORT:-8006}}" ;;
  gateway) serve gateway.app:create_app "${PORT:-${GATEWAY_PORT:-8000}}" ;;
  migrate)
    shift
    [ "$#" -gt 0 ] || set -- identity feed groups moderation records media
    exec python -m services.migrate upgrade "$@" ;;
  *)
    echo "usage: govsocial identity|feed|groups|moderation|records|media|gateway | govsocial migrate [SERVICE...]" >&2
    exit 2 ;;
esac
