#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# webstack-backup: one consistent, encrypted backup of the app's PostgreSQL database and of the
# uploads directories on the data volume to the backups bucket.
#
#   backup.sh            (no arguments; configured by the environment, see below and lib.sh)
#
# Steps: pg_dump --format=directory --jobs=N --compress=0 (one snapshot shared by all jobs, so the
# dump is consistent while the app writes) → tar → zstd (multi-threaded; smaller than pg_dump's
# gzip and several times faster both ways) → age (to the public recipients only; no private key on
# the server) → rclone rcat into <tier>/<name>-<stamp>.tar.zst.age, hashing the stream on the way →
# read the object back and compare size and sha256 → <tier>/<name>-<stamp>.manifest.json → only
# then move latest.json. The directory format is what lets restore.sh run pg_restore in parallel.
# The uploads directories, when there are any, go the same way (tar on this host, with their ACLs
# and numeric owners → zstd → age → <tier>/<name>-<stamp>.uploads.tar.zst.age, read back) before
# the manifest is written: latest.json only ever points at a backup whose two parts are whole.
#
# Environment, besides lib.sh's:
#   PGDATABASE (required)           the database to back up
#   BACKUP_RECIPIENTS_FILE          age recipients, one per line (default /etc/webstack/backup/recipients.txt)
#   BACKUP_DRILL_IDENTITY_FILE      the restore drill's own age identity; when the file exists its
#                                   public key is added as one more recipient (see drill.sh)
#   BACKUP_TIER                     auto (default) | daily | weekly | monthly. auto: the first backup
#                                   of a calendar month goes to monthly/, the first of an ISO week to
#                                   weekly/, every other one to daily/
#   BACKUP_PREFIX_DAILY|WEEKLY|MONTHLY  the prefixes the bucket's lifecycle rules expire
#                                   (defaults daily/ weekly/ monthly/)
#   BACKUP_NAME                     object name stem (default: the database name)
#   BACKUP_ZSTD_LEVEL               zstd level (default 3)
#   BACKUP_VERIFY                   full (default: read the object back and hash it) | size
#   BACKUP_PRE_MIGRATION_DIR        where the deploy dumps the database before a migration (as
#                                   PG_EXEC sees it): dumps older than this backup go once it is
#                                   verified and latest.json has moved
#   BACKUP_UPLOADS_DIRS             directories of this host to back up with the database,
#                                   ':'-separated absolute paths (the archive holds them relative
#                                   to /, so a restore puts them back where they were)
#
# Exit status: 0 on success, 1 on any failure (with one line saying what failed, and the failure ping).
set -Eeuo pipefail
program=webstack-backup
here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
# shellcheck source=lib.sh
. "$here/lib.sh"

work=""
extra_cleanup() {
  if [ -n "$work" ]; then pg rm -rf "$work" 2>/dev/null || true; fi
}

# The spool shares the data volume with PostgreSQL: a dump that filled it would stop the database
# writing. So the dump starts only when the volume has room for it (about the database's size:
# the uncompressed dump holds the tables' data without their indexes) and a reserve of 5 % of
# the volume still stays free afterwards; otherwise it fails before writing a byte.
check_spool_space() {
  local dir="$1" database_bytes="$2" size_kb avail_kb
  read -r size_kb avail_kb < <(pg df -Pk "$dir" 2>>"$scratch/pg_dump.log" | awk 'NR == 2 { print $2, $4 }') ||
    fail "cannot read the free space of $dir: $(log_tail "$scratch/pg_dump.log")"
  local need_kb=$((database_bytes / 1024 + size_kb / 20))
  if [ "$avail_kb" -lt "$need_kb" ]; then
    fail "not enough free space for the dump on $dir: the database takes $(human_bytes "$database_bytes")" \
      "and $(human_bytes $((size_kb * 1024 / 20))) must stay free; $(human_bytes $((avail_kb * 1024))) is free." \
      "Grow the data volume (webstack:volumeSizeGb)"
  fi
}

main() {
  begin_run
  setup_pg
  setup_rclone
  local recipients_file="${BACKUP_RECIPIENTS_FILE:-/etc/webstack/backup/recipients.txt}"
  local recipients="$scratch/recipients.txt" drill=false
  [ -s "$recipients_file" ] || fail "no age recipients in $recipients_file"
  grep -v '^[[:space:]]*\(#\|$\)' "$recipients_file" >"$recipients" || fail "no age recipients in $recipients_file"
  if grep -q 'AGE-SECRET-KEY' "$recipients"; then fail "$recipients_file holds a private key; it must list public keys only"; fi
  if [ -n "${BACKUP_DRILL_IDENTITY_FILE:-}" ] && [ -s "$BACKUP_DRILL_IDENTITY_FILE" ]; then
    age-keygen -y "$BACKUP_DRILL_IDENTITY_FILE" >>"$recipients" 2>"$scratch/age-keygen.log" ||
      fail "cannot read the drill identity $BACKUP_DRILL_IDENTITY_FILE: $(log_tail "$scratch/age-keygen.log")"
    drill=true
  fi
  local name="${BACKUP_NAME:-$PGDATABASE}" jobs
  jobs="$(jobs_default)"

  step="database"
  local server_version postgis_version pg_dump_version tables
  server_version="$(psql_value "$PGDATABASE" "SELECT split_part(current_setting('server_version'), ' ', 1)" 2>"$scratch/psql.log")" ||
    fail "cannot reach PostgreSQL database '$PGDATABASE': $(log_tail "$scratch/psql.log")"
  postgis_version="$(psql_value "$PGDATABASE" "SELECT extversion FROM pg_extension WHERE extname = 'postgis'" 2>>"$scratch/psql.log")" ||
    fail "cannot query PostgreSQL: $(log_tail "$scratch/psql.log")"
  tables="$(psql_value "$PGDATABASE" "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')" 2>>"$scratch/psql.log")" ||
    fail "cannot query PostgreSQL: $(log_tail "$scratch/psql.log")"
  local database_bytes
  database_bytes="$(psql_value "$PGDATABASE" "SELECT pg_database_size(current_database())" 2>>"$scratch/psql.log")" ||
    fail "cannot query PostgreSQL: $(log_tail "$scratch/psql.log")"
  pg_dump_version="$(pg pg_dump --version 2>/dev/null | awk '{print $NF}')"

  step="bucket"
  local tier prefix
  tier="$(choose_tier "$stamp")"
  prefix="$(prefix_of "$tier")"
  local key="$prefix$name-$stamp$BACKUP_SUFFIX"
  local manifest_key="$prefix$name-$stamp$MANIFEST_SUFFIX"

  step="dump"
  work="${BACKUP_WORK_DIR:-${TMPDIR:-/tmp}/webstack-backup}/backup-$stamp-$$"
  pg mkdir -p "$work" 2>"$scratch/pg_dump.log" || fail "cannot create $work: $(log_tail "$scratch/pg_dump.log")"
  check_spool_space "$work" "$database_bytes"
  local opts
  mapfile -t opts < <(pg_user_opts)
  # Uncompressed here: zstd compresses the whole stream on the way out (the spool needs room for
  # the uncompressed dump: about the size of the tables without their indexes).
  pg pg_dump --format=directory --jobs="$jobs" --compress=0 "${opts[@]}" --dbname="$PGDATABASE" \
    --file="$work/dump" 2>>"$scratch/pg_dump.log" || fail "pg_dump failed: $(log_tail "$scratch/pg_dump.log")"

  step="upload"
  upload_encrypted "$key" "$recipients" 0 pg tar -C "$work" -cf - dump
  local sha size
  sha="$(cat "$scratch/sha")"
  size="$(cat "$scratch/size")"
  pg rm -rf "$work" 2>/dev/null || true
  work=""

  step="verify"
  verify_object "$key" "$sha" "$size"

  local uploads_json=null uploads_note=""
  if [ -n "${BACKUP_UPLOADS_DIRS:-}" ]; then
    step="uploads"
    backup_uploads "$prefix$name-$stamp$UPLOADS_SUFFIX" "$recipients" >"$scratch/uploads.json"
    uploads_json="$(cat "$scratch/uploads.json")"
    uploads_note=", uploads: $(jq -r .files <<<"$uploads_json") files in $(human_bytes "$(jq -r .sizeBytes <<<"$uploads_json")")"
  fi

  step="manifest"
  local finished duration
  finished="$(date +%s)"
  duration=$((finished - started))
  jq -n \
    --arg key "$key" --arg tier "$tier" --arg created "$(date -u -d "@$started" +%Y-%m-%dT%H:%M:%SZ)" \
    --arg database "$PGDATABASE" --arg postgres "$server_version" --arg postgis "$postgis_version" \
    --arg pgDump "$pg_dump_version" --arg sha256 "$sha" --argjson size "$size" \
    --argjson duration "$duration" --argjson tables "$tables" --argjson drill "$drill" \
    --argjson uploads "$uploads_json" --arg host "$(hostname)" '{
      key: $key, tier: $tier, created: $created, host: $host, database: $database,
      postgresVersion: $postgres, postgisVersion: (if $postgis == "" then null else $postgis end),
      pgDumpVersion: $pgDump, format: "pg_dump directory format (uncompressed) in tar, zstd, age",
      tables: $tables, sizeBytes: $size, sha256: $sha256, durationSeconds: $duration,
      drillRecipient: $drill, uploads: $uploads
    }' >"$scratch/manifest.json"
  rcl "$scratch/rclone-manifest.log" rcat "$remote/$manifest_key" <"$scratch/manifest.json" ||
    fail "cannot upload the manifest: $(log_tail "$scratch/rclone-manifest.log")"

  step="pointer"
  rcl "$scratch/rclone-manifest.log" rcat "$remote/$LATEST_OBJECT" <"$scratch/manifest.json" ||
    fail "cannot move $LATEST_OBJECT: $(log_tail "$scratch/rclone-manifest.log")"

  if [ -n "${BACKUP_PRE_MIGRATION_DIR:-}" ]; then remove_pre_migration_dumps "$BACKUP_PRE_MIGRATION_DIR" "$stamp"; fi

  local line
  line="$program: ok: $key $(human_bytes "$size") sha256=${sha:0:16} in ${duration}s (PostgreSQL $server_version${postgis_version:+, PostGIS $postgis_version}, $tables tables$uploads_note)"
  printf '%s\n' "$line"
  send_ping success "$line"
}

prefix_of() {
  case "$1" in
  daily) printf '%s\n' "${BACKUP_PREFIX_DAILY:-daily/}" ;;
  weekly) printf '%s\n' "${BACKUP_PREFIX_WEEKLY:-weekly/}" ;;
  monthly) printf '%s\n' "${BACKUP_PREFIX_MONTHLY:-monthly/}" ;;
  *) fail "BACKUP_TIER must be auto, daily, weekly or monthly (got '$1')" ;;
  esac
}

# auto: monthly when the month has no monthly backup yet, weekly when the ISO week has no weekly
# one, else daily. Deciding from what the bucket holds (not from the date alone) means a run that
# failed on the 1st is made up by the next good one.
choose_tier() {
  local stamp="$1" tier="${BACKUP_TIER:-auto}" logfile="$scratch/rclone-list.log" names
  # Listing the bucket also proves early that it is reachable with these credentials.
  names="$(rcl "$logfile" lsf --files-only "$remote/$(prefix_of monthly)")" ||
    fail "cannot list the backups bucket at $BACKUP_S3_ENDPOINT: $(log_tail "$logfile")"
  [ "$tier" = auto ] || {
    prefix_of "$tier" >/dev/null
    printf '%s\n' "$tier"
    return
  }
  if ! grep -q -- "-${stamp:0:6}[0-9][0-9]T[0-9]*Z$BACKUP_SUFFIX\$" <<<"$names"; then
    printf 'monthly\n'
    return
  fi
  names="$(rcl "$logfile" lsf --files-only "$remote/$(prefix_of weekly)")" ||
    fail "cannot list the backups bucket: $(log_tail "$logfile")"
  local week day
  week="$(date -u -d "${stamp:0:8}" +%G-W%V)"
  while IFS= read -r day; do
    [ -n "$day" ] || continue
    if [ "$(date -u -d "$day" +%G-W%V)" = "$week" ]; then
      printf 'daily\n'
      return
    fi
  done < <(sed -n "s/.*-\([0-9]\{8\}\)T[0-9]*Z${BACKUP_SUFFIX//./\\.}\$/\1/p" <<<"$names")
  printf 'weekly\n'
}

# Pack with the command given (a tar writing to stdout), compress, encrypt and stream into the
# bucket while hashing. tar's exit status up to the third argument counts as success.
#   upload_encrypted KEY RECIPIENTS_FILE MAX_TAR_STATUS COMMAND...
upload_encrypted() {
  local key="$1" recipients="$2" tar_ok="$3" fifo="$scratch/upload.fifo"
  shift 3
  rm -f "$fifo" "$fifo.size"
  mkfifo "$fifo" "$fifo.size"
  sha256sum <"$fifo" | cut -d' ' -f1 >"$scratch/sha" &
  local sha_pid=$!
  wc -c <"$fifo.size" | tr -d ' ' >"$scratch/size" &
  local size_pid=$!
  set +e
  "$@" 2>"$scratch/tar.log" |
    zstd --quiet --threads=0 "-${BACKUP_ZSTD_LEVEL:-3}" --stdout 2>"$scratch/zstd.log" |
    age --encrypt --recipients-file "$recipients" 2>"$scratch/age.log" |
    tee "$fifo" "$fifo.size" |
    rcl "$scratch/rclone-upload.log" rcat "$remote/$key"
  local status=("${PIPESTATUS[@]}")
  set -e
  wait "$sha_pid" "$size_pid" || true
  [ "${status[0]}" -le "$tar_ok" ] || fail "cannot pack $key: $(log_tail "$scratch/tar.log")"
  [ "${status[1]}" -eq 0 ] || fail "zstd cannot compress: $(log_tail "$scratch/zstd.log")"
  [ "${status[2]}" -eq 0 ] || fail "age cannot encrypt: $(log_tail "$scratch/age.log")"
  [ "${status[4]}" -eq 0 ] || fail "upload of $key failed: $(log_tail "$scratch/rclone-upload.log")"
}

# The object must be in the bucket with the size (and, by default, the sha256) that was sent.
verify_object() {
  local key="$1" sha="$2" size="$3" logfile="$scratch/rclone-verify.log" remote_size
  remote_size="$(rcl "$logfile" lsjson "$remote/$key" | jq -r '.[0].Size // empty')" ||
    fail "cannot stat $key after upload: $(log_tail "$logfile")"
  [ "$remote_size" = "$size" ] || fail "$key has $remote_size bytes in the bucket, $size were sent"
  if [ "${BACKUP_VERIFY:-full}" = full ]; then
    hash_object "$key" || fail "cannot read $key back: $(log_tail "$scratch/rclone-fetch.log")"
    [ "$object_sha" = "$sha" ] || fail "$key reads back with sha256 $object_sha, $sha was sent"
  fi
}

# The dumps the deploy made before migrations (<db>-<UTC stamp>.dump) that are older than this
# backup: it holds what they hold, or later. Failing to remove them is only a warning.
remove_pre_migration_dumps() {
  local dir="$1" stamp="$2" removed
  # shellcheck disable=SC2016 # expanded by the shell where PG_EXEC runs
  removed="$(pg sh -c 'for f in "$1"/*.dump; do
      [ -e "$f" ] || continue
      s="$(printf %s "${f##*-}" | tr -d TZ)"; s="${s%.dump}"
      case "$s" in *[!0-9]* | "") continue ;; esac
      if [ "$s" -lt "$(printf %s "$2" | tr -d TZ)" ]; then rm -f "$f" && echo "$f"; fi
    done' sh "$dir" "$stamp" 2>"$scratch/cleanup.log")" ||
    log "warning: cannot remove the dumps made before migrations in $dir: $(log_tail "$scratch/cleanup.log")"
  [ -z "$removed" ] || log "removed the dumps made before migrations, which this backup supersedes: $(tr '\n' ' ' <<<"$removed")"
}

# The uploads directories in one encrypted archive beside the dump; prints its manifest entry.
# The app keeps writing meanwhile: a file that changes or goes while tar reads it is a warning
# (tar's status 1; the next backup has it whole), anything else fails the backup.
backup_uploads() {
  local key="$1" recipients="$2" listed dir dirs=() relative=()
  IFS=: read -r -a listed <<<"$BACKUP_UPLOADS_DIRS"
  for dir in "${listed[@]}"; do
    [ -n "$dir" ] || continue
    case "$dir" in /*) ;; *) fail "uploads directory $dir is not an absolute path" ;; esac
    [ -d "$dir" ] || fail "uploads directory $dir does not exist"
    dirs+=("$dir")
    relative+=("${dir#/}")
  done
  [ "${#dirs[@]}" -gt 0 ] || fail "BACKUP_UPLOADS_DIRS names no directory"
  local files
  files="$(find "${dirs[@]}" -type f | wc -l)"
  upload_encrypted "$key" "$recipients" 1 \
    tar --acls --numeric-owner --warning=no-file-changed --warning=no-file-removed -C / -cf - "${relative[@]}"
  local sha size
  sha="$(cat "$scratch/sha")"
  size="$(cat "$scratch/size")"
  verify_object "$key" "$sha" "$size"
  jq -cn --arg key "$key" --arg sha256 "$sha" --argjson size "$size" --argjson files "$files" \
    --args '{key: $key, sha256: $sha256, sizeBytes: $size, files: $files, dirs: $ARGS.positional}' "${dirs[@]}"
}

main "$@"
