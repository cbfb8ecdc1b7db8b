#!/bin/sh
# Installed by cloud-init as /usr/local/sbin/data-volume-mount; run by data-volume@.service.
# Usage: data-volume-mount DEVICE
# Formats DEVICE only when it carries no signature at all (a blank volume), mounts it at the data
# mount point, grows its file system to the device's size and creates the directory of each
# service. Safe to run again at every boot.
set -eu

device="$1"
mount_point=/srv/data

if [ ! -b "$device" ]; then
  echo "data-volume: $device is not a block device" >&2
  exit 1
fi

if mountpoint -q "$mount_point"; then
  echo "data-volume: $mount_point already mounted"
else
  # blkid exits 2 when it finds no signature: only then is the volume blank.
  status=0
  blkid -p "$device" >/dev/null 2>&1 || status=$?
  if [ "$status" -eq 2 ]; then
    echo "data-volume: $device is blank, creating an ext4 file system"
    mkfs.ext4 -q -L data "$device"
  elif [ "$status" -ne 0 ]; then
    echo "data-volume: blkid failed on $device (exit $status); not touching it" >&2
    exit 1
  fi
  mkdir -p "$mount_point"
  mount -t ext4 -o defaults,noatime,discard,errors=remount-ro "$device" "$mount_point"
  echo "data-volume: mounted $device at $mount_point"
fi

# A volume grown while the server was off (or before this script could grow it) fills its device.
/usr/local/sbin/data-volume-grow "$device"

# One directory per service; the app stack sets owners when it deploys.
for dir in postgres redis caddy/data caddy/config uploads backups app; do
  mkdir -p "$mount_point/$dir"
done
chmod 0755 "$mount_point"
