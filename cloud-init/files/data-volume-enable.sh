#!/bin/sh
# Installed by cloud-init as /usr/local/sbin/data-volume-enable; run once from runcmd.
# Usage: data-volume-enable DEVICE
# Makes the empty mount point immutable, so nothing can write to the root disk in its place while
# the volume is not mounted, then enables and starts data-volume@ for DEVICE. If the volume is not
# attached yet, the unit starts by itself when the device appears.
set -eu

device="$1"
mount_point=/srv/data
unit="data-volume@$(systemd-escape --path "$device").service"

mkdir -p "$mount_point"
if ! mountpoint -q "$mount_point"; then
  chattr +i "$mount_point"
fi
systemctl daemon-reload
systemctl enable "$unit"
systemctl start --no-block "$unit"
echo "data-volume: enabled $unit"
