#!/bin/sh
# Installed as /usr/local/sbin/swap-resize; run by the host configuration whenever the tier's swap
# size changes (first boot made /swapfile as big as the tier was then).
# Usage: swap-resize MIB
# Makes /swapfile (the file /etc/fstab turns on at boot) MIB mebibytes without the server ever
# running without swap: a stand-in of the new size is turned on before the old file is turned off
# (its pages move into memory or the stand-in), and off again once /swapfile is back.
set -eu

want_mib="$1"
swap=/swapfile
standin="$swap.resizing"
want=$((want_mib * 1024 * 1024))

if systemd-detect-virt --container --quiet; then
  echo "swap-resize: a container has no swap of its own; nothing to do"
  exit 0
fi
if [ -f "$swap" ] && [ "$(stat -c %s "$swap")" -eq "$want" ] && swapon --show=NAME --noheadings | grep -qxF "$swap"; then
  echo "swap-resize: $swap is $want_mib MiB and on already"
  exit 0
fi
# An active swap file cannot be renamed or written (the kernel refuses), so the new size is made
# twice: a stand-in keeps swap on while /swapfile itself is made again, then goes.
make_swap() {
  rm -f "$1"
  fallocate -l "$want" "$1"
  chmod 0600 "$1"
  mkswap "$1" >/dev/null
  swapon "$1"
}
# A stand-in a failed run left on goes first (it cannot be removed while it is on).
if swapon --show=NAME --noheadings | grep -qxF "$standin"; then
  swapoff "$standin"
fi
make_swap "$standin"
if swapon --show=NAME --noheadings | grep -qxF "$swap"; then
  swapoff "$swap"
fi
make_swap "$swap"
swapoff "$standin"
rm -f "$standin"
echo "swap-resize: $swap is $want_mib MiB"
