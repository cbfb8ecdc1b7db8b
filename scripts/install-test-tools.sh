#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (run as root), and nothing when it
# is already there. Cached between runs on the same machine under $WEBSTACK_CACHE.
#   - shellcheck: every shell script the stack ships
#   - PostgreSQL 15 + PostGIS, age, rclone, awscli, jq, curl, systemd-analyze, acl: the backup
#     suites (acl: the uploads archive keeps the uploads directory's ACLs; the e2e deploy sets them)
#   - a Debian 13 (trixie) chroot with cloud-init 25.x: `cloud-init schema` of the release the
#     server runs (bookworm's 22.4 accepts misspelled keys, trixie's rejects them)
#   - the app stack's tools: a Docker engine (docker.io, iptables), Compose v2 (trixie's
#     docker-compose .deb as a CLI plugin; bookworm's is the v1 Python tool) and caddy
#   - in the same chroot, trixie's ssh-audit 3.x (bookworm's 2.5 predates OpenSSH 10's algorithms)
#   - qemu, qemu-img and cloud-localds for the VM test (tests/vm/), apt-cacher-ng for the apt
#     proxy its VMs install through (tests/vm/apt-proxy.sh), busybox-static for the listeners
#     its port probes publish
#   - docker-registry (the CNCF distribution) and htpasswd: the private registry the deploy logs
#     in to and pulls from in tests/stack/registry.test.ts
#   - OpenSSH's sshd and socat: the server and the tunnel's path in tests/stack/ssh-through-tunnel.test.ts
set -euo pipefail

cache="${WEBSTACK_CACHE:-/var/cache/webstack}"
mkdir -p "$cache"

apt_updated=0
need_pkg() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$apt_updated" -eq 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  echo "install-test-tools: apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need_pkg shellcheck debootstrap ca-certificates docker.io iptables caddy qemu-system-x86 qemu-utils cloud-image-utils apt-cacher-ng busybox-static docker-registry apache2-utils openssh-server socat

# Compose v2 from Debian 13: fetched with a separate APT_CONFIG that lists trixie, so this
# machine's own sources stay as they are; unpacked, not installed (its Depends name trixie's
# docker.io). The binary only needs libc6 >= 2.34.
compose_plugin=/usr/libexec/docker/cli-plugins/docker-compose
compose_version="$("$compose_plugin" version 2>/dev/null || true)"
if ! grep -Eq 'version v?2\.' <<<"$compose_version"; then
  echo "install-test-tools: fetching Compose v2 (docker-compose from Debian 13)"
  apt_dir="$cache/apt-trixie"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/deb"
  cat >"$apt_dir/sources.list" <<SOURCES
deb http://deb.debian.org/debian trixie main
SOURCES
  cat >"$apt_dir/apt.conf" <<CONF
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$apt_dir/lists";
Dir::Cache "$apt_dir";
Dir::Cache::Archives "$apt_dir/archives";
Dir::State::Status "/var/lib/dpkg/status";
APT::Sandbox::User "root";
CONF
  export APT_CONFIG="$apt_dir/apt.conf"
  apt-get update -qq
  (cd "$apt_dir/deb" && rm -f docker-compose_*.deb && apt-get download -qq docker-compose)
  unset APT_CONFIG
  rm -rf "$apt_dir/unpacked"
  dpkg-deb -x "$apt_dir"/deb/docker-compose_*.deb "$apt_dir/unpacked"
  install -D -m 0755 "$apt_dir/unpacked/usr/libexec/docker/cli-plugins/docker-compose" "$compose_plugin"
fi
echo "install-test-tools: $("$compose_plugin" version), caddy $(caddy version 2>/dev/null | awk '{print $1}')"

# The backup suites (tests/backup) and bench/backup.ts: PostgreSQL 15 + PostGIS (pg_dump,
# pg_restore, pgbench), age, rclone, zstd, Debian's AWS CLI, jq, curl, systemd-analyze for the units,
# and acl (getfacl/setfacl: the uploads directory's ACLs, which the archive keeps).
need_pkg postgresql-15-postgis-3 postgresql-client-15 age rclone zstd awscli jq curl systemd acl

# cloud-init of Debian 13, in a minimal chroot (about 75 s the first time, 330 MB).
chroot_dir="$cache/cloud-init-trixie"
if [ ! -f "$chroot_dir/.complete" ]; then
  echo "install-test-tools: building a Debian 13 chroot with cloud-init in $chroot_dir"
  rm -rf "$chroot_dir"
  debootstrap --variant=minbase --include=cloud-init,python3-cffi-backend trixie "$chroot_dir" \
    http://deb.debian.org/debian >"$cache/cloud-init-trixie.log" 2>&1 || {
    tail -20 "$cache/cloud-init-trixie.log" >&2
    exit 1
  }
  touch "$chroot_dir/.complete"
fi
echo "install-test-tools: cloud-init $(chroot "$chroot_dir" cloud-init --version 2>&1 | awk '{print $2}') in $chroot_dir"

if [ ! -x "$chroot_dir/usr/bin/ssh-audit" ]; then
  echo "install-test-tools: installing ssh-audit in $chroot_dir"
  chroot "$chroot_dir" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive chroot "$chroot_dir" apt-get install -y -qq --no-install-recommends ssh-audit >/dev/null
fi
