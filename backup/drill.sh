#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# webstack-restore-drill: prove that the latest backup restores, every week, without the
# operators' private key on the server.
#
#   drill.sh            (no arguments; configured by the environment)
#
# Design: backup.sh encrypts every backup to the operators' age recipients AND to a drill-only
# recipient whose private key (BACKUP_DRILL_IDENTITY_FILE, generated on the server, 0600 root,
# kept on the data volume) never leaves the server. An age file is one random file key wrapped
# once per recipient, so the drill decrypts the very bytes the operators would; only the wrapping
# of the file key for the operators' keys is not exercised (the test suite covers that path).
# Holding the drill key gives nothing the server does not already have: root on the server can
# read the live database anyway. Old backups (up to a year of monthlies) are the one extra
# exposure, which is why the key stays in a root-only file and is never copied into Pulumi state.
#
# Steps: latest.json → the backup must be younger than DRILL_MAX_AGE_HOURS → download, check
# size and sha256 against the manifest → decrypt and unpack → start a throwaway PostgreSQL
# (a container of DRILL_POSTGRES_IMAGE on no network, removed afterwards) → parallel pg_restore →
# sanity queries: every table of the dump exists and is counted, PostGIS works when the source had
# it → the uploads archive, when the backup has one, decrypts and lists → drop everything → one
# journal line and the ping.
#
# Environment, besides lib.sh's (bucket, PGDATABASE, pings):
#   BACKUP_DRILL_IDENTITY_FILE  (required) the drill's age identity
#   DRILL_MAX_AGE_HOURS         fail when the latest backup is older (default 48)
#   DRILL_POSTGRES_IMAGE        image of the throwaway PostgreSQL container (production: the app's
#                               PostGIS image). Unset: restore into a throwaway database on the
#                               server that DRILL_PG_EXEC and the PG* variables reach (for tests
#                               and workstations), dropped afterwards.
#   DRILL_MEMORY                memory limit of the drill container (default 1g)
#   DRILL_PING_URL / DRILL_PING_FAIL_URL   default to BACKUP_PING_URL / BACKUP_PING_FAIL_URL
set -Eeuo pipefail
program=webstack-restore-drill
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source=lib.sh
. "$here/lib.sh"

BACKUP_PING_URL="${DRILL_PING_URL:-${BACKUP_PING_URL:-}}"
BACKUP_PING_FAIL_URL="${DRILL_PING_FAIL_URL:-${BACKUP_PING_FAIL_URL:-}}"

container=""
drill_db=""
work=""
extra_cleanup() {
  if [ -n "$container" ]; then
    # -v: the image declares its data directory a VOLUME; without it the restored copy of the
    # database would stay behind on the disk, unencrypted, a new one every week.
    docker rm -f -v "$container" >/dev/null 2>&1 || true
  else
    if [ -n "$work" ]; then pg rm -rf "$work" 2>/dev/null || true; fi
    if [ -n "$drill_db" ]; then psql_value postgres "DROP DATABASE IF EXISTS \"$drill_db\"" >/dev/null 2>&1 || true; fi
  fi
}

main() {
  begin_run
  setup_rclone
  require_env BACKUP_DRILL_IDENTITY_FILE
  [ -r "$BACKUP_DRILL_IDENTITY_FILE" ] || fail "cannot read the drill identity $BACKUP_DRILL_IDENTITY_FILE"
  local jobs
  jobs="$(jobs_default)"

  step="latest"
  local manifest="$scratch/manifest.json" key created age_hours
  key="$(resolve_backup latest "$manifest")"
  created="$(jq -r .created "$manifest")"
  age_hours=$((($(date +%s) - $(date -u -d "$created" +%s)) / 3600))
  [ "$age_hours" -le "${DRILL_MAX_AGE_HOURS:-48}" ] ||
    fail "the latest backup ($key) is ${age_hours}h old: backups have stopped"
  [ "$(jq -r .drillRecipient "$manifest")" = true ] ||
    fail "$key is not encrypted to the drill key (was BACKUP_DRILL_IDENTITY_FILE missing when it was taken?)"

  step="postgres"
  if [ -n "${DRILL_POSTGRES_IMAGE:-}" ]; then
    start_container "$stamp"
  else
    # shellcheck disable=SC2034 # PG_EXEC is read by setup_pg
    PG_EXEC="${DRILL_PG_EXEC:-}"
    PGDATABASE="drill_$stamp"
    PGDATABASE="${PGDATABASE,,}"
    setup_pg
  fi
  drill_db="drill_restore"
  [ -n "$container" ] || drill_db="$PGDATABASE"

  step="download"
  work="${BACKUP_WORK_DIR:-${TMPDIR:-/tmp}/webstack-backup}/drill-$stamp-$$"
  [ -z "$container" ] || work="/tmp/drill"
  fetch_and_unpack "$key" "$manifest" "$work" "$BACKUP_DRILL_IDENTITY_FILE"

  step="restore"
  psql_value postgres "CREATE DATABASE \"$drill_db\" TEMPLATE template0" >/dev/null 2>>"$scratch/psql.log" ||
    fail "cannot create the drill database: $(log_tail "$scratch/psql.log")"
  local restore_started restore_seconds
  restore_started="$(date +%s)"
  parallel_restore "$work/dump" "$drill_db" "$jobs" --no-owner --no-privileges ||
    fail "pg_restore of $key failed: $(log_tail "$scratch/pg_restore.log")"
  restore_seconds=$(($(date +%s) - restore_started))

  step="sanity"
  local expected tables=0 rows=0 schema table count missing=()
  pg pg_restore --list "$work/dump" >"$scratch/toc" 2>>"$scratch/pg_restore.log" ||
    fail "cannot read the dump's table of contents: $(log_tail "$scratch/pg_restore.log")"
  # TOC lines: "<id>; <oid> <oid> TABLE DATA <schema> <table> <owner>"
  expected="$(awk '/ TABLE DATA / { for (i = 1; i <= NF; i++) if ($i == "DATA") { print $(i + 1) "|" $(i + 2); break } }' "$scratch/toc")"
  while IFS='|' read -r schema table; do
    [ -n "$table" ] || continue
    count="$(psql_value "$drill_db" "SELECT count(*) FROM \"$schema\".\"$table\"" 2>>"$scratch/psql.log")" || {
      missing+=("$schema.$table")
      continue
    }
    tables=$((tables + 1))
    rows=$((rows + count))
    printf '%s.%s\t%s\n' "$schema" "$table" "$count" >>"$scratch/counts"
  done <<<"$expected"
  [ "${#missing[@]}" -eq 0 ] || fail "tables of the dump missing after restore: ${missing[*]}"
  local source_tables
  source_tables="$(jq -r .tables "$manifest")"
  local restored_tables
  restored_tables="$(psql_value "$drill_db" "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")"
  [ "$restored_tables" = "$source_tables" ] ||
    fail "the source had $source_tables tables, the restore has $restored_tables"
  local postgis_note="" postgis
  if [ "$(jq -r '.postgisVersion // empty' "$manifest")" != "" ]; then
    postgis="$(psql_value "$drill_db" "SELECT extversion FROM pg_extension WHERE extname = 'postgis'" 2>>"$scratch/psql.log")" || true
    [ -n "$postgis" ] || fail "PostGIS is missing from the restored database"
    [ "$(psql_value "$drill_db" "SELECT ST_AsText(ST_Buffer(ST_MakePoint(0, 0), 1, 1)) IS NOT NULL" 2>>"$scratch/psql.log")" = t ] ||
      fail "PostGIS functions do not work in the restored database: $(log_tail "$scratch/psql.log")"
    postgis_note=", PostGIS $postgis works"
  fi

  local uploads_note=""
  if jq -e '.uploads.key' "$manifest" >/dev/null 2>&1; then
    step="uploads"
    # Decrypted and listed, not written anywhere: proves the archive is whole and opens with the
    # key, and counts the files it holds.
    jq .uploads "$manifest" >"$scratch/uploads-manifest.json"
    local uploads_key files
    uploads_key="$(jq -r .key "$scratch/uploads-manifest.json")"
    fetch_and_unpack "$uploads_key" "$scratch/uploads-manifest.json" "$scratch/uploads-listing" "$BACKUP_DRILL_IDENTITY_FILE" list
    files="$(grep -c '^-' "$scratch/uploads-listing" || true)"
    if [ "$files" -eq 0 ] && [ "$(jq -r .files "$scratch/uploads-manifest.json")" -gt 0 ]; then
      fail "$uploads_key holds no files; the backup counted $(jq -r .files "$scratch/uploads-manifest.json")"
    fi
    uploads_note=", uploads archive opens with $files files"
  fi

  local line
  line="$program: ok: $key restored in ${restore_seconds}s ($tables tables with data, $rows rows, $restored_tables tables$postgis_note$uploads_note; drill took $(($(date +%s) - started))s)"
  if [ -s "$scratch/counts" ]; then log "row counts: $(tr '\t\n' '= ' <"$scratch/counts" | sed 's/ $//')"; fi
  printf '%s\n' "$line"
  send_ping success "$line"
}

# A PostgreSQL that exists only for this drill: no network, trust auth on its own socket,
# its data in an anonymous volume that `docker rm -f -v` removes with it.
start_container() {
  container="webstack-restore-drill-$1"
  docker run --detach --name "$container" --network none --memory "${DRILL_MEMORY:-1g}" \
    --env POSTGRES_HOST_AUTH_METHOD=trust --label webstack.role=restore-drill \
    "$DRILL_POSTGRES_IMAGE" >/dev/null 2>"$scratch/docker.log" ||
    fail "cannot start a $DRILL_POSTGRES_IMAGE container: $(log_tail "$scratch/docker.log")"
  # shellcheck disable=SC2034 # read by setup_pg
  PG_EXEC="docker exec -i $container"
  export PGUSER=postgres
  PGDATABASE=postgres
  setup_pg
  local tries=0
  # The image's entrypoint runs a temporary server for initdb and then restarts: wait for the
  # final one (the log says the init is complete) to answer.
  until docker logs "$container" 2>&1 | grep -q 'init process complete' &&
    pg psql -X -q -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 180 ] || fail "the drill PostgreSQL did not start: $(docker logs --tail 3 "$container" 2>&1 | tr '\n' ' ')"
    sleep 1
  done
}

main "$@"
