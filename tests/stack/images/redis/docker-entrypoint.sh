#!/bin/bash
# Entry point of the Redis stand-in (the official image's contract: `redis-server …` as redis).
set -euo pipefail
if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  chown -R redis:redis /data
  exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
