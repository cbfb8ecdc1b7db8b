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
# on top that adds its entrypoint, so they share one layer. PostgreSQL 18 with PostGIS 3.6 comes
# from a second rootfs of Debian's testing suite (forky), for the 18 stand-in. Runs as root; starts dockerd if none
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
images=(local/postgis:17-3.5 local/postgis:18-3.6 local/redis:standin local/caddy:standin local/cloudflared:standin local/app:standin)
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

# One Debian rootfs, debootstrapped once per version of this script: bootstrap SUITE PACKAGES
# prints its directory.
bootstrap() {
  local suite="$1" packages="$2" dir="$cache/rootfs-$1-v$version"
  if [ ! -f "$dir/.complete" ]; then
    echo "stack-images: debootstrap Debian $suite into $dir" >&2
    rm -rf "$dir"
    # Debian's testing suite (forky, for PostgreSQL 18) has no script of its own yet: sid's fits it.
    debootstrap --variant=minbase --include="$packages" "$suite" "$dir" http://deb.debian.org/debian \
      /usr/share/debootstrap/scripts/sid >"$cache/debootstrap-$suite.log" 2>&1 || {
      tail -20 "$cache/debootstrap-$suite.log" >&2
      exit 1
    }
    # Keep the base small: package lists and the apt cache are not needed in the images.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    touch "$dir/.complete"
  fi
  echo "$dir"
}

trixie="$(bootstrap trixie postgresql-17,postgresql-17-postgis-3,redis-server,caddy,python3,python3-psycopg2,python3-redis,curl,wget,ca-certificates,util-linux)"
forky="$(bootstrap forky postgresql-18,postgresql-18-postgis-3,util-linux)"

echo "stack-images: importing the bases and building the stand-ins" >&2
tar -C "$trixie" --exclude=./.complete -c . | "$docker" import - local/webstack-base:trixie >/dev/null
tar -C "$forky" --exclude=./.complete -c . | "$docker" import - local/webstack-base:forky >/dev/null
build() { DOCKER_BUILDKIT=0 "$docker" build -q --label "webstack.stand-in=v$version" "$@" >/dev/null; }
for dir in "$here"/*/; do
  name="$(basename "$dir")"
  if [ "$name" = postgis ]; then
    build -t local/postgis:17-3.5 "$dir"
    build -t local/postgis:18-3.6 --build-arg BASE=local/webstack-base:forky --build-arg PG_MAJOR=18 \
      --build-arg PGDATA=/var/lib/postgresql/18/docker --build-arg VOLUME_DIR=/var/lib/postgresql "$dir"
  else
    build -t "local/$name:standin" "$dir"
  fi
done
"$docker" save -o "$tarball.tmp" "${images[@]}"
mv "$tarball.tmp" "$tarball"
rm -f "$cache"/images-v*.tar.tmp
echo "stack-images: cached in $tarball" >&2
finish
