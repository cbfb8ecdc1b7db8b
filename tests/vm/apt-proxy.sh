#!/usr/bin/env bash
# Starts, when none answers, the caching apt proxy the test VMs fetch Debian's packages through:
# Debian's apt-cacher-ng on 127.0.0.1:3149 (the VMs reach it as 10.0.2.2, qemu's
# host address), its cache under $WEBSTACK_CACHE/apt-proxy. It plays the part of the mirror a
# Hetzner server's apt is pointed at (Hetzner's own, in the same data centre): the VM still runs
# its own apt-get update and install against Debian's archive, but a second run on this machine
# downloads no package again, and the time a first boot takes no longer depends on the mirror.
#
#   apt-proxy.sh          exits 0 once the proxy answers (at most 10 s)
#   apt-proxy.sh --stats  prints "<bytes fetched from the mirror> <bytes served>" from its log
set -euo pipefail
port=3149 # baked into the VM image by build-image.sh
dir="${WEBSTACK_CACHE:-/var/cache/webstack}/apt-proxy"
mkdir -p "$dir/cache" "$dir/log"

if [ "${1:-}" = --stats ]; then
  # Transfer log lines: time|I (in, from upstream) or O (out, to a client)|bytes|client|path.
  awk -F'|' '$2 == "I" { i += $3 } $2 == "O" { o += $3 } END { printf "%d %d\n", i, o }' "$dir/log/apt-cacher.log" 2>/dev/null ||
    echo "0 0"
  exit 0
fi

answers() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/acng-report.html" 2>/dev/null; }
if answers; then exit 0; fi

command -v /usr/sbin/apt-cacher-ng >/dev/null || {
  echo "apt-proxy: apt-cacher-ng is not installed (scripts/install-test-tools.sh installs it)" >&2
  exit 1
}
# A configuration of its own, with no remapping of mirrors: every URL is cached under its host
# and path, exactly as apt asked for it. Unreferenced files are kept for 30 days.
cat >"$dir/acng.conf" <<CONF
CacheDir: $dir/cache
LogDir: $dir/log
Port: $port
BindAddress: 127.0.0.1
PidFile: $dir/apt-cacher-ng.pid
ReportPage: acng-report.html
ExThreshold: 30
CONF
echo "apt-proxy: starting apt-cacher-ng on 127.0.0.1:$port (cache: $dir/cache)" >&2
# setsid: the daemon outlives this script and the test run's process group.
setsid /usr/sbin/apt-cacher-ng -c "$dir" ForeGround=0 </dev/null >>"$dir/log/start.log" 2>&1
for _ in $(seq 20); do
  if answers; then exit 0; fi
  sleep 0.5
done
echo "apt-proxy: apt-cacher-ng did not answer within 10 s; its logs end with:" >&2
tail -n 20 "$dir/log/start.log" "$dir/log/apt-cacher.err" >&2 || true
exit 1
