#!/bin/sh
# Installed as /usr/local/sbin/data-volume-grow; run by data-volume-mount at every mount and by
# the host configuration step after the Hetzner Volume's size is updated.
# Usage: data-volume-grow DEVICE
# Grows the data volume's ext4 file system, online, to the size of its device: Hetzner makes the
# device bigger and leaves the file system as it was. Does nothing when it already fills it.
set -eu

device="$(readlink -f "$1")"
mount_point=/srv/data

if [ "$(findmnt -no SOURCE "$mount_point" 2>/dev/null)" != "$device" ]; then
  echo "data-volume-grow: $device is not mounted at $mount_point; not touching it" >&2
  exit 1
fi
# A SCSI disk learns its new capacity when asked to rescan (Hetzner Volumes are SCSI disks).
rescan="/sys/class/block/${device##*/}/device/rescan"
if [ -w "$rescan" ]; then
  echo 1 >"$rescan"
fi
resize2fs "$device" 2>&1
echo "data-volume-grow: $mount_point is $(df -h --output=size "$mount_point" | tail -n 1 | tr -d ' ')"
