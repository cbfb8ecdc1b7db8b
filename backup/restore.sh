#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# webstack-restore: list, check, fetch and restore the backups that backup.sh writes. Runs on the
# server (installed as /usr/local/lib/webstack-backup/restore.sh) and on a workstation with bash,
# rclone, age, jq and the PostgreSQL client tools.
#
#   restore.sh [--env-file FILE] COMMAND ...
#       --env-file: read the settings from an environment file first (on the server:
#       /etc/webstack/backup/backup.env, which holds the bucket credentials; run as root)
#
#   restore.sh list
#       every backup in the bucket, oldest first, and which one latest.json points to
#   restore.sh verify [BACKUP]
#       download BACKUP (default: latest) and compare its size and sha256 with its manifest; no key needed
#   restore.sh fetch [BACKUP] --output FILE
#       download the encrypted object to FILE after checking it against its manifest
#   restore.sh restore [BACKUP] --identity FILE|- [--database NEW_DB] [--jobs N] [--no-owner]
#       decrypt with the age identity (a file, or "-" for standard input: the private key never
#       needs to be written to disk), then pg_restore --jobs N into NEW_DB, which must not exist
#       (default: <PGDATABASE>_restored_<stamp>) and is created with the owner of PGDATABASE
#       (the app's role) when that exists
#   restore.sh restore [BACKUP] --identity FILE|- --over-live --confirm-over-live
#       restore into a new database, then swap it in under the live name; the live database is
#       kept as <PGDATABASE>_before_restore_<stamp>. Refused while any other session (the app) is
#       connected to the live database: stop the app first.
#   restore.sh uploads [BACKUP] --identity FILE|- --into DIR
#       decrypt the backup's uploads archive and unpack it under DIR (missing or empty), where the
#       directories appear at their paths below DIR (DIR/srv/data/uploads/...), with their owners
#       and ACLs when run as root
#   restore.sh uploads [BACKUP] --identity FILE|- --over-live --confirm-over-live
#       unpack them where they were (under /): files of the backup replace the live files of the
#       same names; files added since the backup stay
#
# BACKUP is "latest", an object key such as daily/shop-20250101T020000Z.tar.zst.age, or its name alone.
# Environment: the bucket, PG_EXEC, PGDATABASE, PGUSER and BACKUP_JOBS as in lib.sh;
# RESTORE_MAINTENANCE_WORK_MEM (default 256MB) for the restore's index builds.
set -Eeuo pipefail
program=webstack-restore
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
  sed -n '3,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

work="" identity_file=""
extra_cleanup() {
  if [ -n "$work" ]; then pg rm -rf "$work" 2>/dev/null || true; fi
}

main() {
  if [ "${1:-}" = --env-file ]; then
    load_env_file "${2:?--env-file needs a file}"
    shift 2
  fi
  [ $# -ge 1 ] || usage
  local command="$1"
  shift
  local backup=latest identity="" database="" output="" into="" over_live=false confirmed=false
  local restore_opts=()
  while [ $# -gt 0 ]; do
    case "$1" in
    --identity) identity="${2:?--identity needs a file or -}" && shift ;;
    --database) database="${2:?--database needs a name}" && shift ;;
    --output) output="${2:?--output needs a file}" && shift ;;
    --into) into="${2:?--into needs a directory}" && shift ;;
    --jobs) export BACKUP_JOBS="${2:?--jobs needs a number}" && shift ;;
    --no-owner) restore_opts+=(--no-owner --no-privileges) ;;
    --over-live) over_live=true ;;
    --confirm-over-live) confirmed=true ;;
    -h | --help) usage ;;
    -*) printf 'unknown option %s\n' "$1" >&2 && usage ;;
    *) backup="$1" ;;
    esac
    shift
  done
  make_scratch
  step="config"
  setup_rclone
  case "$command" in
  list) list_backups ;;
  verify) verify_backup "$backup" ;;
  fetch)
    [ -n "$output" ] || fail "fetch needs --output FILE"
    fetch_backup "$backup" "$output"
    ;;
  restore)
    [ -n "$identity" ] || fail "restore needs --identity FILE (or - to read the private key from standard input)"
    if $over_live && ! $confirmed; then
      fail "--over-live replaces the live database: add --confirm-over-live once the app is stopped"
    fi
    restore_backup "$backup" "$identity" "$database" "$over_live" "${restore_opts[@]}"
    ;;
  uploads)
    [ -n "$identity" ] || fail "uploads needs --identity FILE (or - to read the private key from standard input)"
    if $over_live; then
      $confirmed || fail "--over-live writes over the live uploads: add --confirm-over-live"
      [ -z "$into" ] || fail "--over-live unpacks where the files were; drop --into"
      into=/
    fi
    [ -n "$into" ] || fail "uploads needs --into DIR (a new directory), or --over-live --confirm-over-live"
    restore_uploads "$backup" "$identity" "$into"
    ;;
  *) usage ;;
  esac
}

list_backups() {
  step="list"
  local latest="" logfile="$scratch/rclone-list.log"
  latest="$(rcl "$logfile" cat "$remote/$LATEST_OBJECT" 2>/dev/null | jq -r '.key // empty' 2>/dev/null || true)"
  rcl "$logfile" lsf -R --files-only --format tsp --separator '|' --filter "- *$UPLOADS_SUFFIX" --filter "+ *$BACKUP_SUFFIX" --filter "- *" "$remote" >"$scratch/list" ||
    fail "cannot list the bucket: $(log_tail "$logfile")"
  printf '%-20s  %10s  %s\n' "MODIFIED (UTC)" "SIZE" "KEY"
  sort "$scratch/list" | while IFS='|' read -r time size key; do
    printf '%-20s  %10s  %s%s\n' "${time:0:19}" "$(human_bytes "$size")" "$key" "$([ "$key" = "$latest" ] && echo '  <- latest')"
  done
}

# Download and hash without decrypting: proves the object is whole and matches its manifest.
verify_backup() {
  step="verify"
  local key manifest="$scratch/manifest.json"
  key="$(resolve_backup "$1" "$manifest")"
  [ -s "$manifest" ] || fail "$key has no manifest to check it against"
  hash_object "$key" || fail "cannot download $key: $(log_tail "$scratch/rclone-fetch.log")"
  [ "$object_sha" = "$(jq -r .sha256 "$manifest")" ] ||
    fail "$key is corrupted or truncated: $object_size bytes with sha256 $object_sha, the manifest says $(jq -r .sizeBytes "$manifest") bytes with sha256 $(jq -r .sha256 "$manifest")"
  printf '%s: ok: %s matches its manifest (%s, sha256 %s)\n' "$program" "$key" "$(human_bytes "$object_size")" "$object_sha"
}

fetch_backup() {
  step="fetch"
  local key manifest="$scratch/manifest.json" output="$2" logfile="$scratch/rclone-fetch.log" sha
  key="$(resolve_backup "$1" "$manifest")"
  rcl "$logfile" copyto "$remote/$key" "$output" || fail "cannot download $key: $(log_tail "$logfile")"
  if [ -s "$manifest" ]; then
    sha="$(sha256sum "$output" | cut -d' ' -f1)"
    if [ "$sha" != "$(jq -r .sha256 "$manifest")" ]; then
      mv "$output" "$output.corrupt"
      fail "$key is corrupted or truncated (sha256 $sha does not match its manifest); kept as $output.corrupt"
    fi
    cp "$manifest" "$output${MANIFEST_SUFFIX}"
  fi
  printf '%s: ok: %s saved as %s\n' "$program" "$key" "$output"
}

restore_backup() {
  local wanted="$1" identity="$2" database="$3" over_live="$4" extra=("${@:5}")
  local stamp started key manifest="$scratch/manifest.json" jobs
  started="$(date +%s)"
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  step="config"
  setup_pg
  jobs="$(jobs_default)"
  open_identity "$identity"
  identity="$identity_file"
  if $over_live; then
    [ -z "$database" ] || fail "--over-live restores under the live name ($PGDATABASE); drop --database"
    database="${PGDATABASE}_restore_$stamp"
    require_app_stopped
  fi
  database="${database:-${PGDATABASE}_restored_$stamp}"
  case "$database" in *[!A-Za-z0-9_]* | [0-9]*) fail "database name '$database' must be letters, digits and '_'" ;; esac
  local exists
  exists="$(psql_value postgres "SELECT 1 FROM pg_database WHERE datname = '$database'" 2>"$scratch/psql.log")" ||
    fail "cannot reach PostgreSQL: $(log_tail "$scratch/psql.log")"
  [ -z "$exists" ] || fail "database $database already exists; restore into a new one (--database NAME)"

  step="download"
  key="$(resolve_backup "$wanted" "$manifest")"
  work="${BACKUP_WORK_DIR:-${TMPDIR:-/tmp}/webstack-backup}/restore-$stamp-$$"
  fetch_and_unpack "$key" "$manifest" "$work" "$identity"

  step="restore"
  # Owned by the live database's owner (the app's role, which is no superuser) when there is one.
  local owner
  owner="$(psql_value postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '$PGDATABASE'" 2>>"$scratch/psql.log")" ||
    fail "cannot reach PostgreSQL: $(log_tail "$scratch/psql.log")"
  psql_value postgres "CREATE DATABASE \"$database\" TEMPLATE template0${owner:+ OWNER \"$owner\"}" >/dev/null 2>>"$scratch/psql.log" ||
    fail "cannot create database $database: $(log_tail "$scratch/psql.log")"
  parallel_restore "$work/dump" "$database" "$jobs" "${extra[@]}" ||
    fail "pg_restore into $database failed (the partial database is left for inspection): $(log_tail "$scratch/pg_restore.log")"
  pg rm -rf "$work" 2>/dev/null || true
  work=""

  local target="$database"
  if $over_live; then
    step="swap"
    require_app_stopped
    local old="${PGDATABASE}_before_restore_$stamp"
    psql_value postgres "ALTER DATABASE \"$PGDATABASE\" RENAME TO \"$old\"" >/dev/null 2>>"$scratch/psql.log" ||
      fail "cannot move the live database aside (restored copy kept as $database): $(log_tail "$scratch/psql.log")"
    psql_value postgres "ALTER DATABASE \"$database\" RENAME TO \"$PGDATABASE\"" >/dev/null 2>>"$scratch/psql.log" ||
      fail "cannot rename $database to $PGDATABASE (the old live database is $old): $(log_tail "$scratch/psql.log")"
    target="$PGDATABASE (the previous one is kept as $old; drop it once the app is checked)"
  fi
  printf '%s: ok: %s restored into %s in %ss with %s jobs\n' "$program" "$key" "$target" "$(($(date +%s) - started))" "$jobs"
}

# Sets identity_file, the file age reads the identity from: the file given, or for "-" standard
# input, kept in memory (age reads it through a file descriptor, never from disk).
open_identity() {
  if [ "$1" = - ]; then
    local key_text
    key_text="$(cat)"
    [ -n "$key_text" ] || fail "no private key on standard input"
    identity_file="/dev/fd/9"
    exec 9< <(printf '%s\n' "$key_text")
  elif [ -r "$1" ]; then
    identity_file="$1"
  else
    fail "cannot read the identity file $1"
  fi
}

restore_uploads() {
  local wanted="$1" identity="$2" into="$3" started key manifest="$scratch/manifest.json"
  started="$(date +%s)"
  open_identity "$identity"
  identity="$identity_file"
  step="download"
  key="$(resolve_backup "$wanted" "$manifest")"
  [ -s "$manifest" ] || fail "$key has no manifest, so its uploads archive cannot be found"
  jq -e '.uploads.key' "$manifest" >/dev/null 2>&1 ||
    fail "$key has no uploads archive (the stack backed up no uploads directory when it was taken)"
  jq .uploads "$manifest" >"$scratch/uploads-manifest.json"
  local uploads_key
  uploads_key="$(jq -r .key "$scratch/uploads-manifest.json")"
  if [ "$into" != / ] && [ -e "$into" ] && [ -n "$(ls -A "$into" 2>/dev/null)" ]; then
    fail "$into is not empty; unpack into a new directory, or use --over-live --confirm-over-live"
  fi
  step="unpack"
  fetch_and_unpack "$uploads_key" "$scratch/uploads-manifest.json" "$into" "$identity" host
  local where
  where="$(jq -r '.dirs | join(", ")' "$scratch/uploads-manifest.json")"
  [ "$into" = / ] || where="$(jq -r --arg into "${into%/}" '.dirs | map($into + .) | join(", ")' "$scratch/uploads-manifest.json")"
  printf '%s: ok: %s (%s files) unpacked into %s in %ss\n' "$program" "$uploads_key" \
    "$(jq -r .files "$scratch/uploads-manifest.json")" "$where" "$(($(date +%s) - started))"
}

# No session but ours may use the live database while it is replaced.
require_app_stopped() {
  local sessions
  sessions="$(psql_value postgres "SELECT count(*) FROM pg_stat_activity WHERE datname = '$PGDATABASE' AND pid <> pg_backend_pid()" 2>"$scratch/psql.log")" ||
    fail "cannot reach PostgreSQL: $(log_tail "$scratch/psql.log")"
  [ "$sessions" = 0 ] ||
    fail "$sessions session(s) still use $PGDATABASE: stop the app first (docker compose stop of every service but postgres)"
}

main "$@"
