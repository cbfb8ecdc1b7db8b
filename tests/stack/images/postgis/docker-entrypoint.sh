#!/bin/bash
# Entry point of the PostGIS stand-in: initialise the cluster on first start (password from the
# environment through a file, never an argument), enable PostGIS, then run postgres as `postgres`.
set -euo pipefail
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

# As the official image from 18 on: a cluster where the layout before 18 kept it (a mount at
# /var/lib/postgresql/data) is refused rather than left unused beside a new, empty one.
if [ "${PG_MAJOR:-17}" -ge 18 ] && [ "$PGDATA" != /var/lib/postgresql/data ] && [ -s /var/lib/postgresql/data/PG_VERSION ]; then
  echo "Error: in 18+, these Docker images are configured to store database data in a" >&2
  echo "       format which is compatible with \"pg_ctlcluster\"; there appears to be PostgreSQL data in:" >&2
  echo "         /var/lib/postgresql/data (unused mount/volume)" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  chmod 3775 /var/run/postgresql
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user="${POSTGRES_USER:-postgres}" db="${POSTGRES_DB:-$user}"
  # As the official image: POSTGRES_HOST_AUTH_METHOD=trust needs no password (the restore drill's
  # throwaway container on no network); otherwise a password is required.
  auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  pwfile="$(mktemp)"
  if [ "$auth" = trust ]; then
    as_postgres initdb -D "$PGDATA" -U "$user" --auth=trust >/dev/null
  else
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  fi
  rm -f "$pwfile"
  printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
  printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$db" != postgres ]; then as_postgres psql -q -U "$user" -d postgres -c "CREATE DATABASE \"$db\""; fi
  as_postgres psql -q -U "$user" -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis"
  as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  # The official image's line, which the restore drill waits for.
  echo "PostgreSQL init process complete; ready for start up."
fi
if [ "$1" = postgres ]; then exec setpriv --reuid=postgres --regid=postgres --init-groups "$@"; fi
exec "$@"
