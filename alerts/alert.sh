#!/usr/bin/env bash
# Sends one alert to the stack's channel (webstack:alerts), and always to the journal. Bash 5.
# Installed as /usr/local/lib/webstack-alerts/alert.sh by components/alerts.ts.
#
#   alert.sh [--kind alert|resolved|info] TITLE [BODY]
#   alert.sh --unit UNIT          a unit failed (OnFailure= of the backup and the drill): its
#                                 last journal lines are the body
#
# Environment (from ALERT_ENV_FILE, default /etc/webstack/alerts/alerts.env, when it is readable
# and ALERT_CHANNEL is not set already):
#   ALERT_CHANNEL   ntfy | slack | healthchecks; empty: the journal only
#   ALERT_URL       the channel's URL (a secret: it reaches curl through its config on stdin)
#   ALERT_EMAIL     ntfy only: ntfy mails the alert there too
#   ALERT_STACK     the stack's name in every title, e.g. shop-prod
#   ALERT_STATE_DIR where health-check.sh keeps the problems still open (healthchecks: a resolved
#                   problem pings success only when none is left)
#
# The formats are the Worker's (alerts/dead-mans-switch.js): ntfy gets the body with Title,
# Priority and Tags headers; slack gets {"text": ...}; healthchecks gets alerts on /fail,
# resolutions on the URL itself and notes on /log.
#
# Exit status: 0 sent (or no channel), 1 the channel refused or could not be reached, 2 usage.
set -euo pipefail

program="webstack-alert"
usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

env_file="${ALERT_ENV_FILE:-/etc/webstack/alerts/alerts.env}"
# KEY="value" lines with \" and \\ escaped, as systemd reads them (alerts/render.ts writes them);
# read, never sourced: a value is data, whatever characters the URL holds.
if [ -z "${ALERT_CHANNEL+set}" ] && [ -r "$env_file" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^(ALERT_[A-Z_]+)=\"(.*)\"$ ]] || continue
    export "${BASH_REMATCH[1]}=$(sed -E 's/\\(["\\])/\1/g' <<<"${BASH_REMATCH[2]}")"
  done <"$env_file"
fi

kind="alert"
unit=""
while [ "$#" -gt 0 ]; do
  case "$1" in
  --kind)
    kind="${2:-}"
    shift 2 || usage
    ;;
  --unit)
    unit="${2:-}"
    shift 2 || usage
    ;;
  --) shift && break ;;
  -*) usage ;;
  *) break ;;
  esac
done
case "$kind" in alert | resolved | info) ;; *) usage ;; esac

if [ -n "$unit" ]; then
  # The failure line the scripts print ("... FAILED at <step>: ...") leads, then the journal.
  journal="$(journalctl -u "$unit" -n 20 -o cat --no-pager 2>/dev/null || true)"
  failed="$(grep -m1 'FAILED at' <<<"$journal" || true)"
  title="$unit failed${failed:+: ${failed#*FAILED at }}"
  body="The last lines of its journal (journalctl -u $unit):"$'\n'"$journal"
else
  [ "$#" -ge 1 ] || usage
  title="$1"
  body="${2:-}"
fi
title="[${ALERT_STACK:-webstack}] $(tr '\r\n\t' '   ' <<<"$title" | sed 's/ *$//')"

printf '%s: %s: %s\n' "$program" "${kind^^}" "$title" >&2
[ -z "$body" ] || printf '%s\n' "$body" | sed "s/^/$program:   /" >&2

channel="${ALERT_CHANNEL:-}"
if [ -z "$channel" ] || [ -z "${ALERT_URL:-}" ]; then
  printf '%s: no alerts channel is configured (webstack:alerts): the journal only\n' "$program" >&2
  exit 0
fi

# curl's config syntax: a double-quoted value with \ and " escaped.
quoted() {
  local v="${1//\\/\\\\}"
  printf '"%s"' "${v//\"/\\\"}"
}

payload="$(mktemp)"
trap 'rm -f "$payload"' EXIT
url="${ALERT_URL%/}"
headers=()
case "$channel" in
ntfy)
  url="$ALERT_URL"
  printf '%s' "${body:-$title}" >"$payload"
  case "$kind" in
  alert) headers+=("Priority: high" "Tags: rotating_light") ;;
  resolved) headers+=("Priority: default" "Tags: white_check_mark") ;;
  info) headers+=("Priority: default" "Tags: information_source") ;;
  esac
  headers+=("Title: $title")
  [ -z "${ALERT_EMAIL:-}" ] || headers+=("Email: $ALERT_EMAIL")
  ;;
slack)
  url="$ALERT_URL"
  case "$kind" in alert) emoji=":rotating_light:" ;; resolved) emoji=":white_check_mark:" ;; info) emoji=":information_source:" ;; esac
  jq -n --arg text "$emoji $title${body:+$'\n'$body}" '{text: $text}' >"$payload"
  headers+=("Content-Type: application/json")
  ;;
healthchecks)
  printf '%s%s' "$title" "${body:+$'\n'$body}" >"$payload"
  case "$kind" in
  alert) url="$url/fail" ;;
  resolved)
    # The check goes back up only when no other problem is still open.
    if [ -n "$(find "${ALERT_STATE_DIR:-/var/lib/webstack-alerts}/open" -type f 2>/dev/null | head -n 1)" ]; then
      url="$url/log"
    fi
    ;;
  info) url="$url/log" ;;
  esac
  ;;
*)
  printf '%s: ALERT_CHANNEL is "%s"; it must be ntfy, slack or healthchecks\n' "$program" "$channel" >&2
  exit 1
  ;;
esac

config="url = $(quoted "$url")"
for header in "${headers[@]}"; do config+=$'\n'"header = $(quoted "$header")"; done
if ! curl --globoff --silent --show-error --fail --max-time 15 --retry 3 --retry-all-errors --config - \
  --data-binary "@$payload" --output /dev/null 2>"$payload.err" <<<"$config"; then
  # curl's message names the host at most; the URL's path (its token) is not in it.
  printf '%s: the %s channel did not take the alert: %s\n' "$program" "$channel" \
    "$(sed 's#https\?://[^ ]*#<the alerts URL>#g' "$payload.err" | tail -n 1)" >&2
  rm -f "$payload.err"
  exit 1
fi
rm -f "$payload.err"
