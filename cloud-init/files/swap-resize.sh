#!/bin/sh
# Installed as /usr/local/sbin/swap-resize; run by the host configuration whenever the tier's swap
# size changes (first boot made /swapfile as big as the tier was then).
# Usage: swap-resize MIB
# Makes /swapfile MIB mebibytes without the server ever running without swap: the new file is
# made and turned on first, then the old one is turned off (its pages move into memory or the new
# file) and the new one takes its name, which /etc/fstab turns on at boot.
set -eu

want_mib="$1"
swap=/swapfile
new="$swap.new"
want=$((want_mib * 1024 * 1024))

if systemd-detect-virt --container --quiet; then
  echo "swap-resize: a container has no swap of its own; nothing to do"
  exit 0
fi
if [ -f "$swap" ] && [ "$(stat -c %s "$swap")" -eq "$want" ] && swapon --show=NAME --noheadings | grep -qxF "$swap"; then
  echo "swap-resize: $swap is $want_mib MiB and on already"
  exit 0
fi
rm -f "$new"
fallocate -l "$want" "$new"
chmod 0600 "$new"
mkswap "$new" >/dev/null
swapon "$new"
if swapon --show=NAME --noheadings | grep -qxF "$swap"; then
  swapoff "$swap"
fi
mv -f "$new" "$swap"
echo "swap-resize: $swap is $want_mib MiB"
