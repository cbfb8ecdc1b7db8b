#!/usr/bin/env bash
# Builds the stand-in images of the end-to-end stack test (no registry is reachable here) and
# caches them under $WEBSTACK_CACHE/stack-images, so later runs on the same machine only
# `docker load` them.
#
#   build.sh            build (or load from the cache) every stand-in image
#   build.sh --tarball  the same, then print the path of the `docker save` tarball of all of
#                       them (the VM suite loads it into the VM's own engine)
#
# One Debian 13 rootfs (debootstrap minbase + PostgreSQL 17 with PostGIS 3.5, Redis, Caddy,
# Python with psycopg2 and redis) is imported as a base image; each stand-in is a tiny Dockerfile
# on top that adds its entrypoint, so they share one layer. Runs as root; starts dockerd if none
# answers (scripts/start-dockerd.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${WEBSTACK_CACHE:-/var/cache/webstack}/stack-images"
docker="${DOCKER:-/usr/bin/docker}"
mkdir -p "$cache"
# One build at a time (the Docker suites start in parallel and share the rootfs directory).
exec 9>"$cache/.lock"
flock 9

# The images' sources, this script included: any change to them is a new version, so a stale
# cache is rebuilt (a version bumped by hand was forgotten once).
version="$(cd "$here" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
images=(local/postgis:17-3.5 local/redis:standin local/caddy:standin local/cloudflared:standin local/app:standin)
tarball="$cache/images-v$version.tar"

print_tarball=false
[ "${1:-}" = --tarball ] && print_tarball=true

# Every image is there and was built by this version of the script (its label says so).
have_all() {
  for image in "${images[@]}"; do
    [ "$("$docker" image inspect -f '{{index .Config.Labels "webstack.stand-in"}}' "$image" 2>/dev/null)" = "v$version" ] || return 1
  done
}

# The tarball alone is what --tarball needs: no engine has to run for it.
if $print_tarball && [ -f "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

# Everything below needs a Docker engine on this machine.
bash "$here/../../../scripts/start-dockerd.sh" >&2

finish() {
  if $print_tarball; then
    if [ ! -f "$tarball" ]; then
      "$docker" save -o "$tarball.tmp" "${images[@]}"
      mv "$tarball.tmp" "$tarball"
    fi
    echo "$tarball"
  fi
  exit 0
}

if have_all; then finish; fi
if [ -f "$tarball" ]; then
  "$docker" load -q -i "$tarball" >/dev/null
  have_all && finish
fi

rootfs="$cache/rootfs-v$version"
if [ ! -f "$rootfs/.complete" ]; then
  echo "stack-images: debootstrap Debian 13 into $rootfs" >&2
  rm -rf "$rootfs"
  debootstrap --variant=minbase \
    --include=postgresql-17,postgresql-17-postgis-3,redis-server,caddy,python3,python3-psycopg2,python3-redis,curl,wget,ca-certificates,util-linux \
    trixie "$rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 || {
    tail -20 "$cache/debootstrap.log" >&2
    exit 1
  }
  # Keep the base small: package lists and the apt cache are not needed in the images.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  touch "$rootfs/.complete"
fi

echo "stack-images: importing the base and building the stand-ins" >&2
tar -C "$rootfs" --exclude=./.complete -c . | "$docker" import - local/webstack-base:trixie >/dev/null
for dir in "$here"/*/; do
  name="$(basename "$dir")"
  tag=standin
  [ "$name" = postgis ] && tag=17-3.5
  DOCKER_BUILDKIT=0 "$docker" build -q --label "webstack.stand-in=v$version" -t "local/$name:$tag" "$dir" >/dev/null
done
"$docker" save -o "$tarball.tmp" "${images[@]}"
mv "$tarball.tmp" "$tarball"
rm -f "$cache"/images-v*.tar.tmp
echo "stack-images: cached in $tarball" >&2
finish
