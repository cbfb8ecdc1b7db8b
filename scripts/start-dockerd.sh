#!/usr/bin/env bash
# Starts a Docker engine for the tests when none answers (run as root). Idempotent: an engine
# already running is reused. The daemon's log goes to $WEBSTACK_CACHE/dockerd.log.
#
#   start-dockerd.sh        exits 0 once `docker info` answers (at most 30 s)
set -euo pipefail
docker=/usr/bin/docker
cache="${WEBSTACK_CACHE:-/var/cache/webstack}"
if "$docker" info >/dev/null 2>&1; then exit 0; fi
mkdir -p "$cache"
command -v dockerd >/dev/null || {
  echo "start-dockerd: dockerd is not installed (scripts/install-test-tools.sh installs docker.io)" >&2
  exit 1
}
echo "start-dockerd: starting dockerd (log: $cache/dockerd.log)"
# setsid: the daemon outlives this script and the test run's process group.
# No inherited descriptors beyond stdio: a build script's lock (fd 9) must not outlive the script.
setsid dockerd >>"$cache/dockerd.log" 2>&1 </dev/null 9>&- &
for _ in $(seq 60); do
  if "$docker" info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "start-dockerd: dockerd did not answer within 30 s; its log ends with:" >&2
tail -20 "$cache/dockerd.log" >&2
exit 1
