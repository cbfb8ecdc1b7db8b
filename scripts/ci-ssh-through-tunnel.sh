#!/usr/bin/env bash
# The deploy workflow's step before `pulumi up`: when the stack has `sshThroughTunnel: true`, reach
# its server through the stack's tunnel (scripts/ssh-through-tunnel.sh), with the name and the
# deploy service token read from the stack's own outputs, so nothing is copied into GitHub by
# hand. A stack without it (or not yet created: its first `pulumi up` comes from an admin network)
# is left to SSH straight to the server, and the step says so; outputs it cannot read fail it.
#
#   ci-ssh-through-tunnel.sh <org>/<stack>      (PULUMI_ACCESS_TOKEN in the environment)
set -euo pipefail
stack="${1:?usage: ci-ssh-through-tunnel.sh <org>/<stack>}"
here="$(cd "$(dirname "$0")" && pwd)"

# The outputs without secrets, as JSON. A stack that does not exist yet is not an error (its first
# `pulumi up` comes from an admin network); any other failure (a refused token, the backend not
# answering) is, with pulumi's own words: going on would leave `pulumi up` to time out on SSH.
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
if ! outputs="$(pulumi stack output --stack "$stack" --json 2>"$errors")"; then
  if grep -q "no stack named" "$errors"; then
    echo "ci-ssh-through-tunnel: $stack does not exist yet: its first pulumi up must reach the server from an admin network (docs/going-live.md)"
    exit 0
  fi
  echo "ci-ssh-through-tunnel: cannot read the outputs of $stack: $(tail -n 3 "$errors" | tr '\n' ' ')" >&2
  exit 1
fi
output() { jq -r --arg name "$1" '.[$name] // empty' <<<"$outputs"; }

hostname="$(output sshHostname)"
if [ -z "$hostname" ]; then
  echo "ci-ssh-through-tunnel: $stack has no sshHostname output (sshThroughTunnel is off): SSH goes straight to the server"
  exit 0
fi
ipv4="$(output ipv4)"
TUNNEL_SERVICE_TOKEN_ID="$(output deployServiceTokenId)"
TUNNEL_SERVICE_TOKEN_SECRET="$(pulumi stack output --stack "$stack" --show-secrets deployServiceTokenSecret 2>"$errors")" || {
  echo "ci-ssh-through-tunnel: cannot read the deployServiceTokenSecret output of $stack: $(tail -n 3 "$errors" | tr '\n' ' ')" >&2
  exit 1
}
[ -n "$TUNNEL_SERVICE_TOKEN_SECRET" ] || {
  echo "ci-ssh-through-tunnel: $stack has no deployServiceTokenSecret output" >&2
  exit 1
}
# GitHub masks registered secrets only: this one was read at run time.
echo "::add-mask::$TUNNEL_SERVICE_TOKEN_SECRET"
export TUNNEL_SERVICE_TOKEN_ID TUNNEL_SERVICE_TOKEN_SECRET

if ! command -v cloudflared >/dev/null; then
  # Cloudflare's own package repository, signed with its key (developers.cloudflare.com, "Downloads").
  sudo mkdir -p --mode=0755 /usr/share/keyrings
  curl -fsSL https://pkg.cloudflare.com/cloudflare-main.gpg | sudo tee /usr/share/keyrings/cloudflare-main.gpg >/dev/null
  echo "deb [signed-by=/usr/share/keyrings/cloudflare-main.gpg] https://pkg.cloudflare.com/cloudflared any main" |
    sudo tee /etc/apt/sources.list.d/cloudflared.list >/dev/null
  sudo apt-get update -qq
  sudo apt-get install -y -qq cloudflared >/dev/null
fi

sudo --preserve-env=TUNNEL_SERVICE_TOKEN_ID,TUNNEL_SERVICE_TOKEN_SECRET,RUNNER_TEMP \
  bash "$here/ssh-through-tunnel.sh" start "$hostname" "$ipv4"
