#!/bin/sh
# govsocial COMPONENT: starts one component, or runs one service's migrations.
set -eu
component="${1:-gateway}"
case "$component" in
  identity|feed|groups)
    port_var="$(echo "$component" | tr '[:lower:]' '[:upper:]')_PORT"
    eval "port=\${$port_var:-8000}"
    exec uvicorn "services.$component.app:create_app" --factory --host 0.0.0.0 --port "$port" \
      --no-access-log --timeout-graceful-shutdown 20 --timeout-keep-alive 5 --proxy-headers ;;
  gateway)
    exec uvicorn gateway.app:create_app --factory --host 0.0.0.0 --port "${GATEWAY_PORT:-8000}" \
      --no-access-log --timeout-graceful-shutdown 20 --timeout-keep-alive 5 --proxy-headers ;;
  migrate)
    shift
    exec python -m kit.migrate upgrade "$@" ;;
  *)
    echo "usage: govsocial identity|feed|groups|gateway|migrate SERVICE..." >&2
    exit 2 ;;
esac
