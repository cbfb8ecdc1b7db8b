# shellcheck shell=bash
# Shared by backup.sh, restore.sh and drill.sh (sourced, never run). Bash 5.
#
# Environment (all optional unless a script says otherwise):
#   BACKUP_S3_ENDPOINT          S3 endpoint, e.g. https://<account>.r2.cloudflarestorage.com
#   BACKUP_S3_BUCKET            the backups bucket
#   BACKUP_S3_ACCESS_KEY_ID     credentials of the bucket (read from the environment only: the
#   BACKUP_S3_SECRET_ACCESS_KEY   systemd EnvironmentFile on the server, never a command line)
#   BACKUP_S3_PROVIDER          rclone's S3 provider name (default Cloudflare; "Other" for test servers)
#   BACKUP_S3_REGION            default "auto" (what R2 expects)
#   BACKUP_RCLONE_RETRIES       rclone --retries (default 3)
#   PG_EXEC                     command prefix that runs the PostgreSQL tools (psql, pg_dump,
#                               pg_restore) and tar where the database is reachable, split on spaces.
#                               Empty (default): run them on this host, connecting with the usual
#                               libpq variables (PGHOST, PGPORT, PGPASSWORD or PGPASSFILE).
#                               Production: "docker compose -f /srv/data/app/compose.yaml exec -T postgres".
#   PGUSER, PGDATABASE          role and database, passed to the tools as options so that they
#                               also reach tools run through PG_EXEC
#   BACKUP_WORK_DIR             scratch directory for dump directories, as PG_EXEC sees it
#                               (default ${TMPDIR:-/tmp}/webstack-backup)
#   BACKUP_JOBS                 parallel pg_dump / pg_restore jobs (default: number of CPUs)
#   BACKUP_PING_URL             monitoring URL pinged on success (healthchecks.io style)
#   BACKUP_PING_FAIL_URL        pinged on failure (default: BACKUP_PING_URL + "/fail")

# The object names: <name>-<UTC stamp>.tar.zst.age (an uncompressed pg_dump directory in a tar,
# compressed with zstd, encrypted with age), with <name>.manifest.json beside each, and the
# pointer to the newest verified backup at the bucket's root.
readonly BACKUP_SUFFIX=".tar.zst.age"
# The uploads directories of the same run, beside it: <name>-<stamp>.uploads.tar.zst.age (a tar
# of the directories relative to /, with ACLs and numeric owners); the manifest's "uploads" entry.
# shellcheck disable=SC2034 # used by the scripts that source this file
readonly UPLOADS_SUFFIX=".uploads$BACKUP_SUFFIX"
readonly MANIFEST_SUFFIX=".manifest.json"
readonly LATEST_OBJECT="latest.json"

# Which program is speaking (set by each script) and the step it is in, for the failure line.
program="${program:-webstack-backup}"
step="start"
scratch=""
pg_exec=()

log() { printf '%s: %s\n' "$program" "$*" >&2; }

# One line for the journal, the ping and the caller; then exit 1.
fail() {
  local message="$program: FAILED at $step: $*"
  printf '%s\n' "$message" >&2
  send_ping fail "$message"
  exit 1
}

# The gist of a tool's log in one line: rclone's final "Failed to ..." summary when there is one,
# else the last few lines, without rclone's timestamps.
log_tail() {
  [ -s "$1" ] || return 0
  local text
  text="$(grep -v '^[[:space:]]*$' "$1" | sed -E 's#^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9:]{8} (ERROR : )?##; s#[[:space:]]+# #g')"
  if grep -q '^Failed to ' <<<"$text"; then
    # From rclone's last summary to the end: the summary and its "caused by" lines.
    awk '/^Failed to / { out = "" } { out = out (out == "" ? "" : " ") $0 } END { sub(/ +$/, "", out); print out }' <<<"$text"
  else
    tail -n "${2:-3}" <<<"$text" | tr '\n' ' ' | sed 's/ *$//'
  fi
}

# Ping the monitoring URL: success or fail. The URL may hold a token, so it goes to curl through
# its config on stdin, never the command line. A failing ping never fails the job.
send_ping() {
  local kind="$1" body="$2" url
  if [ "$kind" = fail ]; then
    url="${BACKUP_PING_FAIL_URL:-${BACKUP_PING_URL:+${BACKUP_PING_URL%/}/fail}}"
  else
    url="${BACKUP_PING_URL:-}"
  fi
  [ -n "$url" ] || return 0
  printf 'url = "%s"\n' "$url" |
    curl --silent --show-error --fail --max-time 10 --retry 2 --config - \
      --data-binary "$body" --output /dev/null 2>/dev/null ||
    printf '%s: warning: the %s ping did not go through\n' "$program" "$kind" >&2
}

# Read an environment file as systemd does for these files (KEY="value" lines with \" and \\
# escaped, as render.ts writes them; comments and other lines ignored) and export its variables.
# Lets an operator run restore.sh with the server's /etc/webstack/backup/backup.env.
load_env_file() {
  local line key value
  [ -r "$1" ] || {
    printf '%s: cannot read the environment file %s\n' "$program" "$1" >&2
    exit 2
  }
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    if [[ "$value" =~ ^\"(.*)\"$ ]]; then
      value="$(printf '%s' "${BASH_REMATCH[1]}" | sed -E 's/\\(["\\])/\1/g')"
    fi
    export "$key=$value"
  done <"$1"
}

require_env() {
  local missing=() name
  for name in "$@"; do
    [ -n "${!name:-}" ] || missing+=("$name")
  done
  [ "${#missing[@]}" -eq 0 ] || fail "missing environment: ${missing[*]}"
}

# Every run opens the same way: its start time and UTC stamp (the globals `started` and `stamp`),
# the scratch directory, and the name of the first step for failure messages.
begin_run() {
  # shellcheck disable=SC2034 # read by the script that sources this file
  started="$(date +%s)" stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  make_scratch
  step="config"
}

# A host-side scratch directory for logs and hashes, removed on exit.
make_scratch() {
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/$program.XXXXXX")"
  trap cleanup EXIT
}

# Scripts add their own cleanup by defining extra_cleanup.
cleanup() {
  local rc=$?
  if declare -F extra_cleanup >/dev/null; then extra_cleanup || true; fi
  [ -n "$scratch" ] && rm -rf "$scratch"
  return "$rc"
}

# rclone reads a remote from the environment: RCLONE_CONFIG_<NAME>_<OPTION>. The credentials stay
# in this process's environment and never reach a command line. Every remote is on the same S3
# endpoint; only the keys may differ.
#   rclone_remote NAME ACCESS_KEY_ID SECRET_ACCESS_KEY
rclone_remote() {
  local name="$1"
  export "RCLONE_CONFIG_${name}_TYPE=s3"
  export "RCLONE_CONFIG_${name}_PROVIDER=${BACKUP_S3_PROVIDER:-Cloudflare}"
  export "RCLONE_CONFIG_${name}_ENDPOINT=$BACKUP_S3_ENDPOINT"
  export "RCLONE_CONFIG_${name}_REGION=${BACKUP_S3_REGION:-auto}"
  export "RCLONE_CONFIG_${name}_ACCESS_KEY_ID=$2"
  export "RCLONE_CONFIG_${name}_SECRET_ACCESS_KEY=$3"
  # R2 tokens scoped to objects cannot HeadBucket/CreateBucket: never check the bucket.
  export "RCLONE_CONFIG_${name}_NO_CHECK_BUCKET=true"
  export "RCLONE_CONFIG_${name}_CHUNK_SIZE=16M"
}

# The backups remote; `remote` names the bucket on it.
setup_rclone() {
  require_env BACKUP_S3_ENDPOINT BACKUP_S3_BUCKET BACKUP_S3_ACCESS_KEY_ID BACKUP_S3_SECRET_ACCESS_KEY
  rclone_remote BACKUPS "$BACKUP_S3_ACCESS_KEY_ID" "$BACKUP_S3_SECRET_ACCESS_KEY"
  # rclone misbehaves with a CA bundle meant for the AWS CLI.
  unset AWS_CA_BUNDLE
  remote="backups:$BACKUP_S3_BUCKET"
}

# rclone with quiet, bounded retries; its messages go to the log file named first.
rcl() {
  local logfile="$1"
  shift
  rclone --retries "${BACKUP_RCLONE_RETRIES:-3}" --low-level-retries 3 --contimeout 15s --timeout 5m \
    --log-level ERROR "$@" 2>>"$logfile"
}

setup_pg() {
  # Split on spaces on purpose: PG_EXEC is a command prefix such as "docker exec -i db".
  read -r -a pg_exec <<<"${PG_EXEC:-}"
  require_env PGDATABASE
  case "$PGDATABASE" in
  *[!A-Za-z0-9_]* | [0-9]*) fail "PGDATABASE '$PGDATABASE' must be letters, digits and '_'" ;;
  esac
}

# Run a PostgreSQL tool (or tar) where the database is reachable.
pg() { "${pg_exec[@]}" "$@"; }

# Connection options for the tools: the role, when one is set.
pg_user_opts() {
  if [ -n "${PGUSER:-}" ]; then printf '%s\n' "--username=$PGUSER"; fi
}

# One value (or rows, '|'-separated) from a query in database $1.
psql_value() {
  local db="$1" sql="$2"
  local opts
  mapfile -t opts < <(pg_user_opts)
  pg psql -X -A -t -q -v ON_ERROR_STOP=1 "${opts[@]}" --dbname="$db" -c "$sql"
}

jobs_default() {
  local n="${BACKUP_JOBS:-}"
  [ -n "$n" ] || n="$(nproc 2>/dev/null || echo 2)"
  printf '%s\n' "$n"
}

human_bytes() {
  numfmt --to=iec-i --suffix=B --format='%.1f' "$1" 2>/dev/null || printf '%sB\n' "$1"
}

# The key of a backup: "latest", a full key (daily/x.tar.zst.age) or a bare object name.
# Prints the object key and leaves its manifest in the file named second.
resolve_backup() {
  local wanted="$1" manifest_file="$2" logfile="$scratch/rclone-resolve.log" key matches
  if [ "$wanted" = latest ]; then
    rcl "$logfile" cat "$remote/$LATEST_OBJECT" >"$manifest_file" ||
      fail "cannot read $LATEST_OBJECT from the bucket: $(log_tail "$logfile")"
    [ -s "$manifest_file" ] || fail "there is no backup yet ($LATEST_OBJECT is missing)"
    key="$(jq -er .key "$manifest_file")" || fail "$LATEST_OBJECT is not a backup manifest"
  else
    key="$wanted"
    case "$key" in */*) ;; *)
      # The whole listing, never `| head`: closing the pipe while rclone still writes fails the
      # pipeline (pipefail) with no message. Two backups made in the same second share a name.
      matches="$(rcl "$logfile" lsf -R --files-only --include "/*/$key" --include "/*/$key$BACKUP_SUFFIX" "$remote")" ||
        fail "cannot list the bucket: $(log_tail "$logfile")"
      [ "$(grep -c . <<<"$matches")" -le 1 ] ||
        fail "the name '$wanted' matches $(tr '\n' ' ' <<<"$matches")- give one of them in full"
      key="$matches"
      [ -n "$key" ] || fail "no backup named '$wanted' in the bucket (see: restore.sh list)"
      ;;
    esac
    case "$key" in *"$BACKUP_SUFFIX") ;; *) key="$key$BACKUP_SUFFIX" ;; esac
    if ! rcl "$logfile" cat "$remote/${key%"$BACKUP_SUFFIX"}$MANIFEST_SUFFIX" >"$manifest_file" || ! [ -s "$manifest_file" ]; then
      log "warning: no manifest for $key; its checksum cannot be checked (age still authenticates it)"
      : >"$manifest_file"
    fi
  fi
  printf '%s\n' "$key"
}

# Read an object from the bucket and hash it on the way: sets object_sha and object_size.
hash_object() {
  local fifo="$scratch/hash.fifo"
  rm -f "$fifo"
  mkfifo "$fifo"
  sha256sum <"$fifo" | cut -d' ' -f1 >"$scratch/hash.sha" &
  local sha_pid=$!
  set +e
  rcl "$scratch/rclone-fetch.log" cat "$remote/$1" | tee "$fifo" | wc -c | tr -d ' ' >"$scratch/hash.size"
  local status=("${PIPESTATUS[@]}")
  set -e
  wait "$sha_pid" || true
  [ "${status[0]}" -eq 0 ] || return 1
  # shellcheck disable=SC2034 # results for the scripts that source this file
  object_sha="$(cat "$scratch/hash.sha")" object_size="$(cat "$scratch/hash.size")"
}

# Stream an encrypted backup from the bucket, check it against its manifest (a JSON file with
# sha256 and sizeBytes), decrypt it with an age identity file and unpack it under $3: a directory
# where PG_EXEC runs (where "pg", the default), a directory of this host ("host": the uploads,
# with their ACLs and numeric owners), or only list it, `tar -tv`, into the file $3 ("list").
# Fails, with the reason, on a missing, truncated or corrupted object or a wrong key.
fetch_and_unpack() {
  local key="$1" manifest_file="$2" dest="$3" identity="$4" where="${5:-pg}"
  local fifo="$scratch/sha.fifo" expected actual size_expected size_actual
  rm -f "$fifo" "$fifo.size" "$scratch/sha" "$scratch/size"
  mkfifo "$fifo" "$fifo.size"
  sha256sum <"$fifo" | cut -d' ' -f1 >"$scratch/sha" &
  local sha_pid=$!
  wc -c <"$fifo.size" | tr -d ' ' >"$scratch/size" &
  local size_pid=$!
  case "$where" in
  pg) pg mkdir -p "$dest" 2>>"$scratch/tar.log" || fail "cannot create $dest: $(log_tail "$scratch/tar.log")" ;;
  host) mkdir -p "$dest" 2>>"$scratch/tar.log" || fail "cannot create $dest: $(log_tail "$scratch/tar.log")" ;;
  esac
  set +e
  rcl "$scratch/rclone-fetch.log" cat "$remote/$key" |
    tee "$fifo" "$fifo.size" |
    age --decrypt --identity "$identity" 2>"$scratch/age.log" |
    zstd --decompress --quiet --stdout 2>"$scratch/zstd.log" |
    untar "$where" "$dest" 2>>"$scratch/tar.log"
  local status=("${PIPESTATUS[@]}")
  set -e
  wait "$sha_pid" "$size_pid" || true
  expected="$(jq -r '.sha256 // empty' "$manifest_file" 2>/dev/null || true)"
  size_expected="$(jq -r '.sizeBytes // empty' "$manifest_file" 2>/dev/null || true)"
  actual="$(cat "$scratch/sha")"
  size_actual="$(cat "$scratch/size")"
  # rclone and tee end with SIGPIPE (141) when age stops reading early.
  if [ "${status[0]}" -ne 0 ] && [ "${status[0]}" -ne 141 ]; then
    fail "cannot download $key: $(log_tail "$scratch/rclone-fetch.log")"
  fi
  if [ "${status[2]}" -ne 0 ]; then
    # Tell a damaged object from a wrong key: hash the whole object against the manifest.
    if [ -n "$expected" ] && hash_object "$key" && [ "$object_sha" != "$expected" ]; then
      fail "$key is corrupted or truncated: $object_size bytes with sha256 $object_sha, the manifest says $size_expected bytes with sha256 $expected ($(log_tail "$scratch/age.log"))"
    fi
    fail "cannot decrypt $key (not encrypted to this key, or damaged): $(log_tail "$scratch/age.log")"
  fi
  # age authenticates every chunk, so a whole decryption means whole data; the manifest must agree.
  if [ -n "$expected" ] && [ "$actual" != "$expected" ]; then
    fail "$key is corrupted or truncated: $size_actual bytes with sha256 $actual, the manifest says $size_expected bytes with sha256 $expected"
  fi
  [ "${status[3]}" -eq 0 ] || fail "cannot decompress $key: $(log_tail "$scratch/zstd.log")"
  [ "${status[4]}" -eq 0 ] || fail "cannot unpack $key: $(log_tail "$scratch/tar.log")"
}

# The last stage of fetch_and_unpack: tar reading the archive from stdin.
untar() {
  case "$1" in
  pg) pg tar -x -C "$2" ;;
  host) tar --acls --numeric-owner -x -C "$2" ;;
  list) tar -tv >"$2" ;;
  esac
}

# pg_restore, in parallel, from an unpacked dump directory into an existing database.
# Index builds dominate restores: give each session more sort memory, and skip waiting on WAL flushes.
parallel_restore() {
  local dumpdir="$1" db="$2" jobs="$3" extra=("${@:4}") opts
  mapfile -t opts < <(pg_user_opts)
  local session="-c maintenance_work_mem=${RESTORE_MAINTENANCE_WORK_MEM:-256MB} -c synchronous_commit=off"
  pg pg_restore --jobs="$jobs" --exit-on-error "${opts[@]}" "${extra[@]}" \
    --dbname="dbname=$db options='$session'" "$dumpdir" 2>>"$scratch/pg_restore.log"
}
