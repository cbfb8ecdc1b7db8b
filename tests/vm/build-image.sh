#!/usr/bin/env bash
# Builds, once, the local stand-in for Hetzner's `debian-13` image: a Debian 13 (trixie) root file
# system made with debootstrap, with the kernel and initrd next to it for a direct kernel boot.
# Prints the directory that holds base.raw, vmlinuz and initrd.img.
#
# The image is cached under $WEBSTACK_CACHE/vm/image-<key>, where the key hashes this script: a
# changed package list or setup step builds a new image (about 75 s of debootstrap), an unchanged
# one is reused for up to a week, so that first boot, like a boot from Hetzner's regularly
# refreshed image, has little to upgrade. Runs as root; needs debootstrap and e2fsprogs
# (mkfs.ext4 -d, no loop mounts). Every download goes through the caching apt proxy
# (apt-proxy.sh), and so does the image's own apt once it boots.
set -euo pipefail

suite=trixie
mirror=http://deb.debian.org/debian
# What Hetzner's debian-13 image ships that matters here: systemd, cloud-init, OpenSSH, sudo, the
# ifupdown + DHCP networking cloud-init renders for, and the usual small tools. Everything the
# server needs beyond this (Docker, ufw, fail2ban, unattended-upgrades) is installed by the
# rendered cloud-init at first boot, as on Hetzner.
packages=(
  linux-image-amd64 systemd-sysv systemd-timesyncd udev dbus kmod
  cloud-init python3-cffi-backend openssh-server sudo ca-certificates
  e2fsprogs iproute2 ifupdown isc-dhcp-client netbase procps
  curl wget gnupg less locales cron logrotate
)
root_size=12G
max_age_days=7
here="$(cd "$(dirname "$0")" && pwd)"
proxy_port=3149 # apt-proxy.sh's port, baked into the image

cache_root="${WEBSTACK_CACHE:-/var/cache/webstack}/vm"
key="$(sha256sum "$0" | cut -c1-16)"
dir="$cache_root/image-$key"
# The image's apt needs the proxy, whether the image is built now or was cached.
bash "$here/apt-proxy.sh" >&2
if [ -n "$(find "$dir/.complete" -mtime -"$max_age_days" 2>/dev/null)" ]; then
  echo "$dir"
  exit 0
fi

export http_proxy="http://127.0.0.1:$proxy_port"

echo "build-image: building a Debian 13 image in $dir (debootstrap, about 75 s)" >&2
rm -rf "$dir"
mkdir -p "$dir"
rootfs="$dir/rootfs"
include="$(IFS=,; echo "${packages[*]}")"
if ! debootstrap --variant=minbase --include="$include" "$suite" "$rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1; then
  tail -30 "$dir/debootstrap.log" >&2
  exit 1
fi

# Apt sources as on Hetzner: the release, its updates and the security archive (without the
# security suite, unattended-upgrades would have nothing to install).
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# The image's apt fetches through the same proxy, which the VM reaches at qemu's host address.
# On Hetzner this is the data centre's own mirror; here it takes the mirror's speed out of the
# boot time, and a second run on this machine downloads no package again.
cat >"$rootfs/etc/apt/apt.conf.d/01test-mirror-proxy" <<EOF
// The test VM's stand-in for a nearby mirror: the host's caching proxy (tests/vm/apt-proxy.sh).
Acquire::http::Proxy "http://10.0.2.2:$proxy_port";
EOF

# Up to date like Hetzner's regularly refreshed images: debootstrap takes only the release, and
# upgrading a kernel at first boot would cost many minutes of initramfs under TCG. full-upgrade:
# a kernel update is a new package, which plain upgrade holds back.
mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
host_apt=(-o "Acquire::http::Proxy=$http_proxy")
if ! { chroot "$rootfs" apt-get "${host_apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get "${host_apt[@]}" full-upgrade -y -qq; } >>"$dir/debootstrap.log" 2>&1; then
  tail -30 "$dir/debootstrap.log" >&2
  exit 1
fi
chroot "$rootfs" apt-get clean
umount "$rootfs/proc"

# The root file system is the whole first disk (no partition table), as the kernel is booted
# directly with root=/dev/vda.
echo "/dev/vda / ext4 defaults,errors=remount-ro 0 1" >"$rootfs/etc/fstab"
# A fresh identity at every boot of a copy of this image, like a cloud image.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs"/etc/ssh/ssh_host_*
# Only the NoCloud seed is looked for: probing cloud metadata services would wait for time-outs.
echo "datasource_list: [ NoCloud, None ]" >"$rootfs/etc/cloud/cloud.cfg.d/90-datasource.cfg"
echo "localhost" >"$rootfs/etc/hostname"

newest() { find "$rootfs/boot" -maxdepth 1 -name "$1-*" | sort -V | tail -1; }
cp "$(newest vmlinuz)" "$dir/vmlinuz"
cp "$(newest initrd.img)" "$dir/initrd.img"
chroot "$rootfs" dpkg-query -W -f="\${Package} \${Version}\n" >"$dir/packages.txt"

mkfs.ext4 -q -L root -d "$rootfs" "$dir/base.raw" "$root_size"
rm -rf "$rootfs"
touch "$dir/.complete"
echo "$dir"
