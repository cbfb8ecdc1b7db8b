#!/usr/bin/env bash
# The stack's health, checked every minute by webstack-health.timer (as root). Bash 5.
# Installed as /usr/local/lib/webstack-alerts/health-check.sh by components/alerts.ts.
#
# What it watches, and what it does:
#   - a container that is unhealthy: Docker does not restart those, so it restarts it and says so;
#     one still unhealthy after ALERT_RESTART_LIMIT restarts in ALERT_RESTART_WINDOW_SECONDS is
#     left as it is, and that is an open problem;
#   - a container restarting in a loop (Docker's restart policy), exited or dead: open problem;
#   - the tunnel connector (ALERT_TUNNEL_SERVICE) not running or unhealthy: open problem;
#   - a disk (ALERT_DISK_PATHS) fuller than ALERT_DISK_PERCENT: open problem;
#   - processes killed for lack of memory (the kernel's oom_kill counter rose): one alert;
#   - a reboot pending for longer than ALERT_REBOOT_GRACE_HOURS (the nightly one did not happen):
#     open problem.
# An open problem alerts when it opens, again every ALERT_REMIND_SECONDS while it lasts, and once
# more when it is resolved. Each is a file in ALERT_STATE_DIR/open; an alert that could not be
# sent leaves no file, so the next run tries again. Containers are not judged while a deploy holds
# the app directory's lock (deploy.sh takes it): a deploy replaces containers on purpose.
#
# Environment (all optional; the service's EnvironmentFile sets them on the server):
#   ALERT_STATE_DIR (/var/lib/webstack-alerts), ALERT_SCRIPT (alert.sh beside this script),
#   ALERT_COMPOSE_FILE (/srv/data/app/compose.yaml), ALERT_DISK_PATHS ("/ /srv/data"),
#   ALERT_DISK_PERCENT (85), ALERT_REBOOT_FILE (/var/run/reboot-required),
#   ALERT_REBOOT_GRACE_HOURS (26), ALERT_TUNNEL_SERVICE (empty: no tunnel), ALERT_RESTART_LIMIT
#   (3), ALERT_RESTART_WINDOW_SECONDS (1800), ALERT_REMIND_SECONDS (86400), ALERT_VMSTAT
#   (/proc/vmstat), DOCKER (docker)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
state_dir="${ALERT_STATE_DIR:-/var/lib/webstack-alerts}"
alert="${ALERT_SCRIPT:-$here/alert.sh}"
compose_file="${ALERT_COMPOSE_FILE:-/srv/data/app/compose.yaml}"
docker="${DOCKER:-docker}"
read -r -a disk_paths <<<"${ALERT_DISK_PATHS:-/ /srv/data}"
disk_percent="${ALERT_DISK_PERCENT:-85}"
reboot_file="${ALERT_REBOOT_FILE:-/var/run/reboot-required}"
reboot_grace_hours="${ALERT_REBOOT_GRACE_HOURS:-26}"
tunnel_service="${ALERT_TUNNEL_SERVICE:-}"
restart_limit="${ALERT_RESTART_LIMIT:-3}"
restart_window="${ALERT_RESTART_WINDOW_SECONDS:-1800}"
remind_seconds="${ALERT_REMIND_SECONDS:-86400}"
vmstat="${ALERT_VMSTAT:-/proc/vmstat}"
# Restarts counted by Docker within this many seconds make a loop.
readonly LOOP_SECONDS=600

export ALERT_STATE_DIR="$state_dir"
mkdir -p "$state_dir/open" "$state_dir/closing" "$state_dir/containers"
now="$(date +%s)"
declare -A opened=()

log() { printf 'webstack-health: %s\n' "$*" >&2; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
send() { "$alert" --kind "$1" "$2" "${3:-}"; }

# problem KEY TITLE BODY: the problem is there on this run.
problem() {
  local key="$1" title="$2" body="$3" file="$state_dir/open/$1" since last
  opened[$key]=1
  if [ ! -f "$file" ]; then
    send alert "$title" "$body" && printf '%s %s\n%s\n' "$now" "$now" "$title" >"$file"
    return
  fi
  read -r since last <"$file"
  if ((now - last >= remind_seconds)); then
    send alert "still: $title (since $(iso "$since"))" "$body" && printf '%s %s\n%s\n' "$since" "$now" "$title" >"$file"
  fi
}

# Problems open from earlier runs that this run did not see again are resolved.
resolve_the_rest() {
  local file key since title
  for file in "$state_dir"/open/*; do
    [ -f "$file" ] || continue
    key="$(basename "$file")"
    [ -z "${opened[$key]:-}" ] || continue
    # Out of open/ first: the healthchecks channel pings success only when nothing is left open.
    mv "$file" "$state_dir/closing/$key"
    read -r since _ <"$state_dir/closing/$key"
    title="$(sed -n 2p "$state_dir/closing/$key")"
    if send resolved "resolved: $title" "It lasted from $(iso "$since") to $(iso "$now")."; then
      rm -f "$state_dir/closing/$key"
    else
      mv "$state_dir/closing/$key" "$file"
    fi
  done
}

# The last health check's output of a container, on one line.
health_output() {
  "$docker" inspect --format '{{with .State.Health}}{{range .Log}}{{.Output}}{{end}}{{end}}' "$1" 2>/dev/null |
    tr '\n' ' ' | tail -c 400
}

# An unhealthy container is restarted, up to the limit within the window.
restart_unhealthy() {
  local name="$1" id="$2" file="$state_dir/containers/$1.restarts" recent
  touch "$file"
  recent="$(awk -v since="$((now - restart_window))" '$1 >= since' "$file")"
  local count
  count="$(grep -c . <<<"$recent")"
  local output
  output="$(health_output "$id")"
  if ((count >= restart_limit)); then
    problem "container-$name" "$name stays unhealthy: restarted $count times in $((restart_window / 60)) minutes, now left as it is" \
      "Its last health check said: $output"$'\n'"See: docker logs $name; docker inspect $name"
    return
  fi
  log "restarting $name: it is unhealthy"
  printf '%s\n' "$recent" "$now" | grep . >"$file"
  "$docker" restart --time 30 "$id" >/dev/null
  send alert "restarted $name: it was unhealthy" \
    "Docker does not restart an unhealthy container; the health check did (restart $((count + 1)) of at most $restart_limit in $((restart_window / 60)) minutes). Its last health check said: $output"
}

check_containers() {
  local lines service name id state health exit_code count file rises_text
  [ -f "$compose_file" ] || return 0
  # A deploy replaces containers on purpose: leave them to it, and their problems as they are.
  exec 8<"$(dirname "$compose_file")"
  if ! flock -n 8; then
    log "a deploy is running: containers are not judged this time"
    for file in "$state_dir"/open/container-* "$state_dir"/open/tunnel; do
      [ -f "$file" ] && opened[$(basename "$file")]=1
    done
    return 0
  fi
  lines="$("$docker" compose -f "$compose_file" ps -a --format '{{.Service}}|{{.Name}}|{{.ID}}|{{.State}}|{{.Health}}')" ||
    {
      log "cannot list the stack's containers"
      return 0
    }
  while IFS='|' read -r service name id state health; do
    [ -n "$name" ] || continue
    # Docker's own restarts (the restart policy's): the times the count rose, per container id
    # (a deploy's new container starts from 0); two within LOOP_SECONDS, or one and the container
    # waiting to start again, make a loop.
    file="$state_dir/containers/$name.count"
    # State and exit code read together: compose's listing may be a restart old already.
    read -r count state exit_code < <("$docker" inspect --format '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}' "$id" 2>/dev/null || echo 0 "$state" "?")
    local last_id="" last_count="" rises=()
    read -r last_id last_count rises_text 2>/dev/null <"$file" || true
    [ "$last_id" = "$id" ] || last_count="$count" rises_text=""
    read -r -a rises <<<"${rises_text:-}"
    [ "$count" = "$last_count" ] || rises+=("$now")
    local recent=() t
    for t in "${rises[@]}"; do ((now - t < LOOP_SECONDS)) && recent+=("$t"); done
    printf '%s %s %s\n' "$id" "$count" "${recent[*]}" >"$file"
    local what=""
    if ((${#recent[@]} >= 2)) || { [ "$state" = restarting ] && ((${#recent[@]} >= 1)); }; then
      # A running container's exit code is 0 again: the last one is known only between two runs.
      what="is restarting in a loop (restarted by Docker $count times$([ "$state" = running ] || printf '; exit code %s' "$exit_code"))"
    elif [ "$state" = exited ] || [ "$state" = dead ]; then
      what="is not running ($state, exit code $exit_code)"
    elif [ "$health" = unhealthy ]; then
      restart_unhealthy "$name" "$id"
      [ "$service" != "$tunnel_service" ] || what="is unhealthy: it is not connected to Cloudflare"
    fi
    [ -n "$what" ] || continue
    local logs
    logs="$("$docker" logs --tail 15 "$id" 2>&1 | tail -c 1500)"
    if [ -n "$tunnel_service" ] && [ "$service" = "$tunnel_service" ]; then
      problem tunnel "the tunnel connector is down: $name $what; the site is unreachable through Cloudflare" \
        "Its last log lines:"$'\n'"$logs"
    else
      problem "container-$name" "$name $what" "Its last log lines:"$'\n'"$logs"
    fi
  done <<<"$lines"
}

check_disks() {
  local path used size avail key
  for path in "${disk_paths[@]}"; do
    [ -d "$path" ] || continue
    read -r used size avail < <(df -P -BM "$path" | awk 'NR == 2 { sub(/%/, "", $5); print $5, $2, $4 }')
    if [ -z "$used" ] || ((used <= disk_percent)); then continue; fi
    key="disk-$(tr -c 'a-zA-Z0-9\n' '-' <<<"$path" | sed 's/^-*//; s/^$/root/')"
    problem "$key" "disk $path is $used% full (above $disk_percent%)" \
      "$avail free of $size. The database, the backups' spool and the uploads live on /srv/data; the root disk holds Docker's images and the journal. See: du -xsh $path/* | sort -h"
  done
}

check_oom_kills() {
  local count file="$state_dir/oom-kills" last killed
  count="$(awk '$1 == "oom_kill" { print $2 }' "$vmstat" 2>/dev/null)"
  [ -n "$count" ] || return 0
  last="$(cat "$file" 2>/dev/null || true)"
  # First run, or a reboot reset the counter: start from here.
  if [ -z "$last" ] || ((count < last)); then
    printf '%s\n' "$count" >"$file"
    return 0
  fi
  ((count > last)) || return 0
  # The kernel's own lines name the cgroup of each killed task: a container's holds its id.
  local lines line id task who killed=""
  lines="$(journalctl -k -o cat --no-pager 2>/dev/null | grep 'oom-kill:')"
  [ -n "$lines" ] || lines="$(dmesg 2>/dev/null | grep 'oom-kill:')"
  lines="$(tail -n "$((count - last))" <<<"$lines")"
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    task="$(sed -nE 's/.*[,:]task=([^,]*),pid=([0-9]+).*/\1 (pid \2)/p' <<<"$line")"
    id="$(sed -nE 's/.*task_memcg=[^,]*([0-9a-f]{64}).*/\1/p' <<<"$line")"
    who="the host"
    if [ -n "$id" ]; then
      who="$("$docker" inspect --format '{{.Name}}' "$id" 2>/dev/null | sed 's#^/##')"
      who="container ${who:-${id:0:12}}"
    fi
    killed+=$'\n'"- ${task:-a process} in $who"
  done <<<"$lines"
  send alert "$((count - last)) process(es) killed for lack of memory" \
    "The kernel's OOM killer ran:${killed:- (its lines are gone from the kernel log)}"$'\n'"A service that keeps hitting its memory limit needs a bigger memoryShare or tier (docs/change-tier.md); see journalctl -k -g 'Killed process'." &&
    printf '%s\n' "$count" >"$file"
}

check_reboot() {
  local since hours packages
  [ -f "$reboot_file" ] || return 0
  since="$(stat -c %Y "$reboot_file")"
  hours="$(((now - since) / 3600))"
  ((hours >= reboot_grace_hours)) || return 0
  packages="$({ tr '\n' ' ' <"$reboot_file.pkgs"; } 2>/dev/null)"
  problem reboot "a reboot has been pending for $hours hours: the nightly automatic reboot did not happen" \
    "Security updates need it${packages:+ ($packages)}. Reboot in a quiet hour: sudo systemctl reboot (the stack starts again by itself)."
}

check_containers
check_disks
check_oom_kills
check_reboot
resolve_the_rest
