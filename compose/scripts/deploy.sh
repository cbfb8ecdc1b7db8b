#!/usr/bin/env bash
# Deploys one release of the app stack on the server, with rollback. Run as the deploy user (a
# member of the docker group); the Pulumi AppStack runs it over SSH, the tests run it as is.
#
#   deploy.sh APP_DIR RELEASE_DIR
#
#   APP_DIR      the compose project directory (on the server: /srv/data/app). Its compose.yaml,
#                Caddyfile and .env are the running release.
#   RELEASE_DIR  a directory with the new compose.yaml, Caddyfile and .env (mode 0600), and
#                optionally .registries (mode 0600): one line per registry to log in to,
#                `server<TAB>username<TAB>base64(password)`.
#
# Environment (all optional):
#   DOCKER         docker CLI to use (default: docker)
#   WAIT_TIMEOUT   seconds to wait for every service to be healthy (default: 300)
#   KEEP_RELEASES  release directories to keep beside RELEASE_DIR, newest first (default: 3)
#   PLATFORM       the os/arch every image must have a variant for (default: the engine's, which
#                  on the server is linux/arm64)
#   DOCKER_CONFIG  where docker keeps the registry logins (default: ~/.docker)
#   UPLOADS_DIR    the uploads directory on the data volume, when the stack has one, and
#   UPLOADS_GID      the group its writer services get: the directory is made theirs (step 2b)
#   PRE_MIGRATION_DIR  where, inside the postgres container, the running database is dumped before
#                  a changed migration runs (step 1e); unset: no dump
#   DATA_DIR, POSTGRES_IMAGE, POSTGRES_MAJOR  the data volume's mount point and the release's
#                  PostgreSQL image and major version: checked against the clusters on the volume
#                  (step 1f); unset: no check
#   MAJOR_UPGRADE_DIR  where, inside the postgres containers, a major upgrade's dump goes (the
#                  backup spool on the data volume)
#   ALERT_SCRIPT   the alerts' sender (default /usr/local/lib/webstack-alerts/alert.sh, run with
#                  sudo -n): a failed release alerts through it when it is installed
#
# Steps: validate the release; log in to its registries; check that every image has a variant
# for the server's platform and pull the missing ones (a failure here exits before anything
# running is touched); dump the running database when the release's migration is a new one;
# remember the running files and image ids; give the uploads directory to the writers' group;
# install the release; start Postgres and Redis; set up the database roles (postgres-roles.sql,
# beside this script); run the migration one-off (when the release has a `migrate` service);
# `docker compose up -d --wait --remove-orphans`; prune superseded images.
# If a step after the install fails, the logs of every service that is not healthy go to stderr,
# the previous files and images come back, the previous release is started again (with the
# app role's password set back to its .env's), and the script exits 1. Re-running it with an
# unchanged release changes nothing (no container restarts).
#
# Exit status: 0 deployed, 1 failed (rolled back when there was a previous release), 2 usage.
set -euo pipefail

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

[ "$#" -eq 2 ] || usage
app_dir="$(cd "$1" && pwd)"
release_dir="$(cd "$2" && pwd)"
docker="${DOCKER:-docker}"
wait_timeout="${WAIT_TIMEOUT:-300}"
keep_releases="${KEEP_RELEASES:-3}"
files=(compose.yaml Caddyfile .env)
previous_dir="$app_dir/previous"
scripts_dir="$(dirname "$(readlink -f "$0")")"

log() { printf 'deploy: %s\n' "$*" >&2; }

compose() {
  "$docker" compose --project-directory "$app_dir" -f "$app_dir/compose.yaml" "$@"
}

# The health check (alerts/health-check.sh) leaves the containers alone while a deploy holds the
# app directory's lock: a deploy replaces them on purpose.
exec 9<"$app_dir"
flock 9

for f in "${files[@]}"; do
  [ -f "$release_dir/$f" ] || {
    log "$release_dir/$f is missing"
    exit 2
  }
done

release_compose() {
  "$docker" compose --project-directory "$release_dir" -f "$release_dir/compose.yaml" "$@"
}

# 1. A release that compose rejects never replaces the running one.
release_compose config -q

# 1b. Log in to the release's registries as this user. The password reaches `docker login` on
# its stdin, never on a command line; docker keeps it in $DOCKER_CONFIG/config.json, kept 0600.
docker_config="${DOCKER_CONFIG:-$HOME/.docker}"
registries_file="$release_dir/.registries"
logged_in_file="$app_dir/registries"
release_registries=()
if [ -f "$registries_file" ]; then
  while IFS=$'\t' read -r server user password64; do
    [ -n "$server" ] || continue
    if ! out="$(printf '%s' "$password64" | base64 -d | "$docker" login --username "$user" --password-stdin "$server" 2>&1 >/dev/null)"; then
      log "cannot log in to the registry $server as $user; nothing was changed. docker said: ${out##*$'\n'}"
      exit 1
    fi
    release_registries+=("$server")
  done <"$registries_file"
  [ ! -f "$docker_config/config.json" ] || chmod 0600 "$docker_config/config.json"
fi

# 1c. Every image must have a variant for the server's platform: an amd64-only image would
# otherwise fail only when its container starts, halfway through the deploy. An image already
# here for the platform is fine; any other is judged by its registry's manifest (python3 is on
# every Debian cloud image: cloud-init runs on it).
platform="${PLATFORM:-$("$docker" version --format '{{.Server.Os}}/{{.Server.Arch}}')}"
platforms_of_manifest='
import json, sys
entries = json.load(sys.stdin)
for entry in entries if isinstance(entries, list) else [entries]:
    p = entry.get("Descriptor", {}).get("platform") or {}
    if p.get("os") and p.get("architecture") and p["os"] != "unknown":
        print(p["os"] + "/" + p["architecture"])
'
release_images="$(release_compose --profile migrate config --images | sort -u)"
while read -r image; do
  [ -n "$image" ] || continue
  [ "$("$docker" image inspect --format '{{.Os}}/{{.Architecture}}' "$image" 2>/dev/null)" != "$platform" ] || continue
  if ! manifest="$("$docker" manifest inspect -v "$image" 2>&1)"; then
    log "cannot read the manifest of $image from its registry; nothing was changed. docker said: ${manifest##*$'\n'}"
    exit 1
  fi
  variants="$(python3 -c "$platforms_of_manifest" <<<"$manifest" | sort -u | paste -sd ' ')"
  if ! grep -qw -- "$platform" <<<"$variants"; then
    log "the image $image has no $platform variant (it has: ${variants:-none}); nothing was changed. Build it for $platform too (docker buildx build --platform linux/arm64,linux/amd64) or choose another image"
    exit 1
  fi
done <<<"$release_images"

# 1d. Images are pinned by tag or digest: pull only what is not here yet, before anything stops.
log "pulling images"
if ! release_compose pull --quiet --policy missing; then
  log "pulling the release's images failed; nothing was changed"
  exit 1
fi

# 1e. A backup right before the migration, the riskiest step of a deploy (the last nightly backup
# can be a day old). When the release's migration differs from the running release's (its image
# reference and image, command, environment), the running database is dumped while the old
# release still serves: pg_dump's custom format into PRE_MIGRATION_DIR, a directory of the
# postgres container on the data volume (the backup spool), as <db>-<UTC stamp>.dump. The next
# good backup removes it (backup.sh). No room for it, or a failed dump, stops the deploy here,
# before anything running is touched.
migration_definition() {
  # The migrate service as compose resolves it, with the id of the image its reference names.
  "$@" --profile migrate config --format json 2>/dev/null | python3 -c '
import json, subprocess, sys
service = json.load(sys.stdin).get("services", {}).get("migrate")
if service:
    image = subprocess.run([sys.argv[1], "image", "inspect", "--format", "{{.Id}}", service.get("image", "")],
                           capture_output=True, text=True).stdout.strip()
    print(json.dumps({"service": service, "imageId": image}, sort_keys=True))
' "$docker"
}
dump_before_migration() {
  local dir="$1" name
  name="$(date -u +%Y%m%dT%H%M%SZ).dump"
  # The running release's postgres container must see the spool (releases before the spool
  # mount did not): then a new container would, but the old one is the one that serves.
  if ! compose exec -T postgres test -d "${dir%/*}" 2>/dev/null; then
    log "warning: the running postgres container has no ${dir%/*} (a release before the backup spool): no dump before this migration"
    return 0
  fi
  log "dumping the database before the migration"
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  if ! out="$(compose exec -T postgres sh -c '
    set -eu
    mkdir -p "$1"
    need_kb=$(( $(psql -X -Atq -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT pg_database_size(current_database())") / 1024 ))
    set -- "$1" "$2" $(df -Pk "$1" | awk "NR == 2 { print \$2, \$4 }")
    reserve_kb=$(( $3 / 20 ))
    if [ "$4" -lt $(( need_kb + reserve_kb )) ]; then
      echo "not enough free space on the data volume for the dump before the migration: the database takes $(( need_kb / 1024 )) MiB and $(( reserve_kb / 1024 )) MiB must stay free; $(( $4 / 1024 )) MiB is free. Grow the data volume (webstack:volumeSizeGb)"
      exit 1
    fi
    pg_dump --format=custom -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$1/$POSTGRES_DB-$2.partial"
    mv "$1/$POSTGRES_DB-$2.partial" "$1/$POSTGRES_DB-$2"
    echo "$1/$POSTGRES_DB-$2"
  ' sh "$dir" "$name" 2>&1)"; then
    log "the dump before the migration failed; nothing was changed: ${out##*$'\n'}"
    compose exec -T postgres sh -c 'rm -f "$1"/*.partial' sh "$dir" 2>/dev/null || true
    exit 1
  fi
  log "dumped the database before the migration: ${out##*$'\n'}"
}
if [ -n "${PRE_MIGRATION_DIR:-}" ] && [ -f "$app_dir/compose.yaml" ]; then
  release_migration="$(migration_definition release_compose)"
  if [ -n "$release_migration" ] && [ "$release_migration" != "$(migration_definition compose)" ]; then
    dump_before_migration "$PRE_MIGRATION_DIR"
  fi
fi

# 1f. The release's PostgreSQL major version against the clusters on the data volume, which a
# throwaway container of the release's image lists (they are the postgres user's, 0700) as
# `<major> <dir>`. PostgreSQL reads no other major's files. A cluster newer than the release's
# image stops the deploy: PostgreSQL never goes back a major version. A release whose major has no
# cluster yet while an older one is there is a major upgrade: the running database is dumped with
# the apps stopped (below), the new major starts on a new, empty cluster in its own directory and
# the dump is restored into it (step 5b) before the migration; the old cluster stays untouched for
# a rollback, until the operator removes it.
upgrade_from=""
if [ -n "${POSTGRES_MAJOR:-}" ]; then
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  if ! clusters="$("$docker" run --rm --network none --user 0 --entrypoint sh -v "$DATA_DIR:/data:ro" "$POSTGRES_IMAGE" -c '
    for f in /data/postgres/PG_VERSION /data/postgresql/*/docker/PG_VERSION; do
      if [ -f "$f" ]; then echo "$(cat "$f") ${f%/PG_VERSION}"; fi
    done' 2>&1)"; then
    log "cannot read the PostgreSQL clusters on the data volume; nothing was changed: ${clusters##*$'\n'}"
    exit 1
  fi
  own="" older="" older_dir=""
  while read -r major dir; do
    [ -n "$major" ] || continue
    dir="$DATA_DIR/${dir#/data/}"
    if [ "$major" = "$POSTGRES_MAJOR" ]; then
      own="$dir"
    elif [ "$major" -gt "$POSTGRES_MAJOR" ]; then
      log "the database on the data volume is PostgreSQL $major ($dir), newer than this release's image $POSTGRES_IMAGE (PostgreSQL $POSTGRES_MAJOR), and PostgreSQL cannot go back a major version; nothing was changed. Set webstack:postgres.image to a PostgreSQL $major image"
      exit 1
    else
      older="$major" older_dir="$dir"
    fi
  done <<<"$clusters"
  if [ -n "$own" ] && [ -n "$older" ]; then
    log "note: the PostgreSQL $older cluster from before the upgrade is still in $older_dir; remove it once the upgrade has proved itself (docs/restore.md)"
  elif [ -n "$older" ]; then
    if [ "$POSTGRES_MAJOR" -lt 18 ]; then
      log "the database on the data volume is PostgreSQL $older and this release's image is PostgreSQL $POSTGRES_MAJOR: before 18 both keep their cluster in the same directory, so there is no upgrade in place; nothing was changed. Upgrade to PostgreSQL 18 or later, or through a backup and restore (docs/restore.md)"
      exit 1
    fi
    if [ ! -f "$app_dir/compose.yaml" ]; then
      log "the database on the data volume is PostgreSQL $older, this release's image is PostgreSQL $POSTGRES_MAJOR, and no release runs that could dump it; nothing was changed. Deploy a PostgreSQL $older image first, then upgrade"
      exit 1
    fi
    : "${MAJOR_UPGRADE_DIR:?MAJOR_UPGRADE_DIR must be set for a major upgrade}"
    upgrade_from="$older"
  fi
fi

# The running database for a major upgrade: roles (pg_dumpall) and the database (pg_dump's custom
# format) into MAJOR_UPGRADE_DIR, once the apps are stopped, so nothing is written after it. No
# room for the dump and the new cluster, or a failed dump, starts the running release again and
# stops the deploy here.
dump_for_upgrade() {
  local out apps
  log "PostgreSQL $upgrade_from to $POSTGRES_MAJOR: stopping the apps and dumping the database for the upgrade"
  apps="$(compose config --services | grep -vx -e postgres -e redis || true)"
  # shellcheck disable=SC2086 # one service name a word
  [ -z "$apps" ] || compose stop $apps >&2
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  if ! out="$(compose exec -T postgres sh -c '
    set -eu
    rm -rf "$1" && mkdir -p "$1"
    need_kb=$(( $(psql -X -Atq -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "SELECT pg_database_size(current_database())") / 1024 ))
    set -- "$1" $(df -Pk "$1" | awk "NR == 2 { print \$2, \$4 }")
    reserve_kb=$(( $2 / 20 ))
    if [ "$3" -lt $(( 2 * need_kb + reserve_kb )) ]; then
      echo "not enough free space on the data volume for the upgrade: its dump and the new cluster take twice the database size of $(( need_kb / 1024 )) MiB, and $(( reserve_kb / 1024 )) MiB must stay free; $(( $3 / 1024 )) MiB is free. Grow the data volume (webstack:volumeSizeGb)"
      exit 1
    fi
    pg_dumpall --roles-only -U "$POSTGRES_USER" -f "$1/roles.sql"
    pg_dump --format=custom -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$1/database.dump"
  ' sh "$MAJOR_UPGRADE_DIR" 2>&1)"; then
    log "the dump for the upgrade failed; nothing was changed, the running release starts again: ${out##*$'\n'}"
    compose exec -T postgres rm -rf "$MAJOR_UPGRADE_DIR" 2>/dev/null || true
    compose up -d --wait --wait-timeout "$wait_timeout" >&2 || true
    exit 1
  fi
}

# Step 5b of a major upgrade: the dump restored into the new, empty cluster. Every role but the
# administrator, which the new cluster has, comes from it; the database is made again from
# template0 and pg_restore fills it (the role setup that follows gives it to the app's role).
restore_for_upgrade() {
  log "restoring the database into PostgreSQL $POSTGRES_MAJOR"
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  compose exec -T postgres sh -c '
    set -eu
    grep -vx "CREATE ROLE $POSTGRES_USER;" "$1/roles.sql" | psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres
    psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
      -c "DROP DATABASE \"$POSTGRES_DB\"" -c "CREATE DATABASE \"$POSTGRES_DB\" TEMPLATE template0"
    pg_restore --exit-on-error -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$1/database.dump"
  ' sh "$MAJOR_UPGRADE_DIR" >&2
}

# A failed upgrade's cluster goes aside (postgresql-<major>-failed-<stamp>), so the next deploy
# upgrades again from the old one rather than starting on this one.
set_failed_upgrade_aside() {
  local aside
  aside="postgresql-$POSTGRES_MAJOR-failed-$(date -u +%Y%m%dT%H%M%SZ)"
  compose stop postgres >&2 || true
  "$docker" run --rm --network none --user 0 --entrypoint mv -v "$DATA_DIR:/data" "$POSTGRES_IMAGE" \
    "/data/postgresql/$POSTGRES_MAJOR" "/data/$aside" ||
    log "warning: cannot move the failed upgrade's cluster aside: remove $DATA_DIR/postgresql/$POSTGRES_MAJOR before the next deploy"
  log "the failed upgrade's cluster is kept as $DATA_DIR/$aside; the PostgreSQL $upgrade_from cluster was not touched"
}

if [ -n "$upgrade_from" ]; then dump_for_upgrade; fi

# 2. Remember what runs now: its files and the image id behind each image reference, so a
# re-pushed tag can be pointed back at the old image.
had_previous=0
if [ -f "$app_dir/compose.yaml" ]; then
  had_previous=1
  rm -rf "$previous_dir.new"
  mkdir -m 0700 "$previous_dir.new"
  for f in "${files[@]}"; do
    [ -f "$app_dir/$f" ] && cp -p "$app_dir/$f" "$previous_dir.new/$f"
  done
  compose ps -aq | while read -r container; do
    [ -n "$container" ] && "$docker" inspect --format '{{.Config.Image}} {{.Image}}' "$container"
  done | sort -u >"$previous_dir.new/images.txt"
  rm -rf "$previous_dir"
  mv "$previous_dir.new" "$previous_dir"
fi

install_files() {
  local from="$1"
  for f in "${files[@]}"; do
    [ -f "$from/$f" ] || continue
    cp -p "$from/$f" "$app_dir/.$f.new"
    mv "$app_dir/.$f.new" "$app_dir/$f"
  done
  chmod 0600 "$app_dir/.env"
}

# The services that are neither healthy nor (without a health check) running, one per line.
unhealthy_services() {
  local service state health
  { compose ps -a --format '{{.Service}} {{.State}} {{.Health}}' || true; } | sort -u | while read -r service state health; do
    if [ "$health" = "healthy" ] || { [ -z "$health" ] && [ "$state" = "running" ]; }; then continue; fi
    printf '%s %s\n' "$service" "${health:-$state}"
  done
}

# Logs of every service that is not healthy.
report_unhealthy() {
  local service status
  unhealthy_services | while read -r service status; do
    log "service $service is $status; its last log lines:"
    compose logs --no-color --tail 60 "$service" >&2 || true
  done
}

# The database's roles as the release's compose file names them (scripts/postgres-roles.sql says
# what it makes them): the administrator, the app's role (not a superuser) owning the database and
# the password in the installed .env, so a rotated password (a replaced RandomPassword) takes
# effect, and a rollback brings back the password its release logs in with. psql reads the values
# from the container's environment, never from a command line.
database_roles() {
  log "setting up the database roles"
  # A cluster initialised by a release before the administrator role has none: psql logs in as the
  # app's role, then its bootstrap superuser.
  # shellcheck disable=SC2016 # expanded by the shell inside the container
  compose exec -T postgres sh -c '
    role="$POSTGRES_USER"
    if [ -n "${POSTGRES_APP_USER:-}" ] && ! psql -X -q -U "$role" -d "$POSTGRES_DB" -c "SELECT 1" >/dev/null 2>&1; then
      role="$POSTGRES_APP_USER"
    fi
    exec psql -X -q -U "$role" -d "$POSTGRES_DB"' <"$scripts_dir/postgres-roles.sql"
}

# An alert through the stack's channel, when the alerts are installed (not yet on a first deploy).
alert() {
  local script="${ALERT_SCRIPT:-/usr/local/lib/webstack-alerts/alert.sh}"
  [ -x "$script" ] || return 0
  as_root "$script" --kind alert "$@" || log "warning: the alert did not go out"
}

rollback() {
  local failing
  failing="$(unhealthy_services | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
  report_unhealthy
  if [ "$had_previous" -eq 0 ]; then
    log "first release failed; nothing to roll back to"
    alert "deploy of release $(basename "$release_dir") failed (the first release: nothing to roll back to)" \
      "Not healthy: ${failing:-none}. The logs are in the output of pulumi up."
    exit 1
  fi
  log "rolling back to the previous release"
  alert "deploy of release $(basename "$release_dir") failed and was rolled back" \
    "Not healthy within ${wait_timeout} s: ${failing:-none}. The previous release is started again; the logs of the failing services are in the output of pulumi up."
  if [ -n "$upgrade_from" ]; then set_failed_upgrade_aside; fi
  install_files "$previous_dir"
  while read -r ref id; do
    # Digest references are immutable; a tag is pointed back at the image it named before.
    case "$ref" in *@*) ;; *) "$docker" tag "$id" "$ref" 2>/dev/null || true ;; esac
  done <"$previous_dir/images.txt"
  # Data services first, with the previous release's password, before its apps log in.
  if compose up -d --wait --wait-timeout "$wait_timeout" postgres redis && database_roles &&
    compose up -d --wait --wait-timeout "$wait_timeout" --remove-orphans; then
    log "previous release restored"
    if [ -n "$upgrade_from" ]; then compose exec -T postgres rm -rf "$MAJOR_UPGRADE_DIR" || true; fi
  else
    log "the previous release did not become healthy either"
    report_unhealthy
  fi
  exit 1
}

# Steps 5 to 7; any failure returns non-zero (errexit is off inside a function called by `if`).
start_release() {
  # 5. Data services first: the migration needs them.
  log "starting postgres and redis"
  compose up -d --wait --wait-timeout "$wait_timeout" postgres redis || return 1

  # 5a. A major upgrade's dump goes into the new cluster.
  if [ -n "$upgrade_from" ]; then restore_for_upgrade || return 1; fi

  # 5b. The database roles: the app's owns the database, is no superuser and has the .env's
  # password (a rotated password takes effect); the release's extensions exist.
  database_roles || return 1

  # 6. Migrations run once, before the new app containers start.
  # (Captured first: `grep -q` closing the pipe early would fail the pipeline under pipefail.)
  local services
  services="$(compose --profile migrate config --services)" || return 1
  if grep -qx migrate <<<"$services"; then
    log "running the migration"
    compose run --rm --no-TTY migrate || return 1
  fi

  # 7. Everything else; unchanged services are left alone.
  log "starting the stack"
  compose up -d --wait --wait-timeout "$wait_timeout" --remove-orphans || return 1
  # Compose 2.26 can return 0 when --wait-timeout runs out: check every service ourselves.
  [ -z "$(unhealthy_services)" ] || return 1
}

# 2b. The uploads directory (UPLOADS_DIR, when the stack has one) belongs to the writers' group
# UPLOADS_GID, which every writer service gets with group_add: setgid, so new files and
# directories get the group, and a default ACL, so they are group-writable whatever the app's
# umask. Writers running as any user, and as different users, can then all write; Caddy and the
# backups read it as root. A directory Docker created root-owned 0755 (earlier releases), and what
# was already in it, is converted once; later deploys only check.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}
prepare_uploads_dir() {
  local dir="$1" gid="$2"
  as_root mkdir -p "$dir"
  if ! command -v setfacl >/dev/null; then
    log "installing acl (setfacl) for the uploads directory"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends acl >/dev/null 2>&1 || true
  fi
  if command -v getfacl >/dev/null && getfacl -pn "$dir" 2>/dev/null | grep -qx "default:group:$gid:rwx"; then
    return 0
  fi
  log "uploads: giving $dir to the writers' group $gid"
  as_root chgrp -R "$gid" "$dir"
  as_root chmod -R g+rwX "$dir"
  as_root find "$dir" -type d -exec chmod g+s {} +
  if command -v setfacl >/dev/null; then
    as_root setfacl -R -m "g:$gid:rwX" "$dir"
    as_root find "$dir" -type d -exec setfacl -m "d:g:$gid:rwx,d:m::rwx" {} +
  else
    log "warning: setfacl is missing (apt-get install acl failed): files a writer creates with umask 022 stay read-only to the other writers"
  fi
}
if [ -n "${UPLOADS_DIR:-}" ]; then
  prepare_uploads_dir "$UPLOADS_DIR" "${UPLOADS_GID:?UPLOADS_GID must be set with UPLOADS_DIR}"
fi

# 3. Install the release, then start it.
install_files "$release_dir"
if ! start_release; then rollback; fi
if [ -n "$upgrade_from" ]; then
  compose exec -T postgres rm -rf "$MAJOR_UPGRADE_DIR" || log "warning: the upgrade's dump is left in $MAJOR_UPGRADE_DIR"
  log "upgraded PostgreSQL $upgrade_from to $POSTGRES_MAJOR; the PostgreSQL $upgrade_from cluster stays in $older_dir until you remove it (docs/restore.md)"
fi

# 8. Prune superseded images: those the previous release ran and this one no longer names, and
# dangling layers. Nothing else on the machine is touched.
if [ "$had_previous" -eq 1 ]; then
  current_images="$(compose config --images)"
  while read -r ref _; do
    grep -qxF "$ref" <<<"$current_images" || "$docker" image rm "$ref" >/dev/null 2>&1 || true
  done <"$previous_dir/images.txt"
fi
"$docker" image prune --force >/dev/null

# Old release directories beside this one (each holds a copy of .env).
parent="$(dirname "$release_dir")"
if [ "$(basename "$parent")" = "releases" ]; then
  find "$parent" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n "+$((keep_releases + 1))" |
    while read -r _ dir; do
      [ "$dir" = "$release_dir" ] || rm -rf "$dir"
    done
fi
# Registries the running release no longer names are logged out of (their credentials leave
# config.json); the list of those logged in to is kept for the next deploy.
if [ -f "$logged_in_file" ]; then
  while read -r server; do
    [ -n "$server" ] || continue
    case " ${release_registries[*]} " in *" $server "*) ;; *)
      log "logging out of the registry $server (no longer in the release)"
      "$docker" logout "$server" >/dev/null 2>&1 || true
      ;;
    esac
  done <"$logged_in_file"
fi
printf '%s\n' "${release_registries[@]}" >"$logged_in_file.new"
mv "$logged_in_file.new" "$logged_in_file"
log "release $(basename "$release_dir") is up"
