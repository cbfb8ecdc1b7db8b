#!/usr/bin/env bash
# Builds the server twin's image: Debian 13 with systemd as PID 1, sshd, sudo and a Docker engine
# with Compose v2 from Debian's archive (the packages cloud-init installs on the real server), plus
# the packages the backups install (so their install step finds them in place) and acl, which the
# deploy installs when it is missing (the twin has no apt lists). The lifecycle
# suite starts one container of it per scenario in seconds (tests/lifecycle/twin.ts).
#
#   build.sh        print the image's tag, building it first when it is not there
#
# Cached under $WEBSTACK_CACHE/twin: the rootfs is rebuilt when this script changes or after 7
# days (so it is as patched as a new Hetzner image). Runs as root; starts dockerd if none answers.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${WEBSTACK_CACHE:-/var/cache/webstack}/twin"
docker="${DOCKER:-/usr/bin/docker}"
key="$(cat "$0" "$here/cloud-init-status" | sha256sum | cut -c1-12)"
tag="local/webstack-twin:$key"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

bash "$here/../../../scripts/start-dockerd.sh" >&2

rootfs="$cache/rootfs-$key"
if [ -f "$rootfs/.complete" ] && [ -n "$(find "$rootfs/.complete" -mtime +7)" ]; then
  "$docker" image rm "$tag" >/dev/null 2>&1 || true
  rm -rf "$rootfs"
fi
if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

if [ ! -f "$rootfs/.complete" ]; then
  echo "twin: debootstrap Debian 13 into $rootfs" >&2
  rm -rf "$cache"/rootfs-*
  debootstrap --variant=minbase \
    --include=systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,ca-certificates,e2fsprogs,docker.io,docker-cli,docker-compose,iptables,ufw,nftables,fail2ban,python3-systemd,libpam-tmpdir,age,rclone,zstd,jq,curl,acl \
    trixie "$rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  # Containers need this on a host whose engine gives them no IPv6 (FACTS: the twin's dockerd).
  install -d "$rootfs/etc/systemd/system/docker.service.d"
  printf '[Service]\nEnvironment=DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE=1\n' \
    >"$rootfs/etc/systemd/system/docker.service.d/90-twin.conf"
  # A container has no console to log in on, and no kernel to tune.
  chroot "$rootfs" systemctl mask getty@tty1.service serial-getty@console.service \
    systemd-sysctl.service systemd-remount-fs.service >/dev/null 2>&1 || true
  # cloud-init ran before the twin starts (twin.ts applies its users and files): answer for it.
  install -m 0755 "$here/cloud-init-status" "$rootfs/usr/local/bin/cloud-init"
  rm -f "$rootfs"/etc/ssh/ssh_host_*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  touch "$rootfs/.complete"
fi

echo "twin: importing $tag" >&2
tar -C "$rootfs" --exclude=./.complete -c . | "$docker" import -c 'CMD ["/sbin/init"]' - "$tag" >/dev/null
echo "$tag"
