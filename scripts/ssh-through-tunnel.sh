#!/usr/bin/env bash
# SSH to the server through its own Cloudflare Tunnel, from a machine that no firewall lists (a
# GitHub-hosted runner): for stacks with `sshThroughTunnel: true`.
#
# `pulumi up` connects to the server's primary IPv4 on port 22, wherever it runs (the address is
# in every remote command's connection, and a changed connection would replace them all). So this
# leaves the address alone and changes the path: `cloudflared access tcp` listens on a local port
# and carries each connection to the stack's SSH name, through Cloudflare Access (the deploy
# service token) and the tunnel, to the host's sshd; an iptables rule sends this machine's
# connections to <server-ipv4>:22 to that port. Linux, as root (the runner's sudo).
#
#   TUNNEL_SERVICE_TOKEN_ID=… TUNNEL_SERVICE_TOKEN_SECRET=… ssh-through-tunnel.sh start <ssh-hostname> <server-ipv4>
#   ssh-through-tunnel.sh stop <server-ipv4>
#
# The token comes from the environment, which cloudflared reads itself: never on a command line.
# `start` returns once an SSH server has answered at <server-ipv4>:22 along that path, and fails
# (undoing what it did) when none does within a minute: a refused token, a tunnel that is down.
set -euo pipefail

port="${WEBSTACK_SSH_LOCAL_PORT:-22022}"
state_dir="${WEBSTACK_SSH_STATE_DIR:-${RUNNER_TEMP:-/tmp}/ssh-through-tunnel}"
wait_seconds="${WEBSTACK_SSH_WAIT_SECONDS:-60}"
comment="webstack-ssh-through-tunnel"

die() {
  echo "ssh-through-tunnel: $*" >&2
  exit 1
}

check_ipv4() {
  [[ "$1" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] || die "\"$1\" is not an IPv4 address (the stack output ipv4)"
  local octet
  for octet in "${BASH_REMATCH[@]:1}"; do
    [ "$octet" -le 255 ] || die "\"$1\" is not an IPv4 address (the stack output ipv4)"
  done
}

redirect_rule() {
  echo -p tcp -d "$1" --dport 22 -m comment --comment "$comment" -j REDIRECT --to-ports "$port"
}

# An SSH server's greeting at <ipv4>:22, as `pulumi up` will connect: "SSH-".
ssh_answers() {
  local greeting
  # shellcheck disable=SC2016 # $1 is the inner shell's argument
  greeting="$(timeout 10 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 4 <&3' _ "$1" 2>/dev/null || true)"
  [ "$greeting" = "SSH-" ]
}

stop() {
  local ipv4="$1"
  check_ipv4 "$ipv4"
  # shellcheck disable=SC2046 # the rule's words, split on purpose
  while iptables -t nat -C OUTPUT $(redirect_rule "$ipv4") 2>/dev/null; do
    # shellcheck disable=SC2046
    iptables -t nat -D OUTPUT $(redirect_rule "$ipv4")
  done
  if [ -f "$state_dir/cloudflared.pid" ]; then
    kill "$(cat "$state_dir/cloudflared.pid")" 2>/dev/null || true
    rm -f "$state_dir/cloudflared.pid"
  fi
}

start() {
  local hostname="$1" ipv4="$2"
  [[ "$hostname" =~ ^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$ ]] || die "\"$hostname\" is not a hostname (the stack output sshHostname)"
  check_ipv4 "$ipv4"
  [ -n "${TUNNEL_SERVICE_TOKEN_ID:-}" ] || die "TUNNEL_SERVICE_TOKEN_ID is not set (the stack output deployServiceTokenId)"
  [ -n "${TUNNEL_SERVICE_TOKEN_SECRET:-}" ] || die "TUNNEL_SERVICE_TOKEN_SECRET is not set (the stack output deployServiceTokenSecret)"
  command -v cloudflared >/dev/null || die "cloudflared is not installed (.github/workflows/deploy.yml shows how)"
  [ "$(id -u)" -eq 0 ] || die "must run as root (it adds an iptables rule)"

  mkdir -p "$state_dir"
  stop "$ipv4"
  export TUNNEL_SERVICE_TOKEN_ID TUNNEL_SERVICE_TOKEN_SECRET
  cloudflared access tcp --hostname "$hostname" --url "127.0.0.1:$port" >"$state_dir/cloudflared.log" 2>&1 &
  echo $! >"$state_dir/cloudflared.pid"
  # shellcheck disable=SC2046
  iptables -t nat -A OUTPUT $(redirect_rule "$ipv4")

  local deadline=$((SECONDS + wait_seconds))
  until ssh_answers "$ipv4"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      local log
      log="$(tail -n 20 "$state_dir/cloudflared.log" 2>/dev/null || true)"
      stop "$ipv4"
      echo "ssh-through-tunnel: no SSH server answered at $ipv4:22 through $hostname within ${wait_seconds}s:" \
        "Cloudflare Access refused the service token, or the server's tunnel connector is down. cloudflared said:" >&2
      echo "${log//"$TUNNEL_SERVICE_TOKEN_SECRET"/[secret]}" >&2
      exit 1
    fi
    sleep 1
  done
  echo "ssh-through-tunnel: $ipv4:22 now goes through $hostname (Cloudflare Access, the stack's tunnel)"
}

case "${1:-}" in
  start)
    [ "$#" -eq 3 ] || die "usage: ssh-through-tunnel.sh start <ssh-hostname> <server-ipv4>"
    start "$2" "$3"
    ;;
  stop)
    [ "$#" -eq 2 ] || die "usage: ssh-through-tunnel.sh stop <server-ipv4>"
    stop "$2"
    ;;
  *) die "usage: ssh-through-tunnel.sh start <ssh-hostname> <server-ipv4> | stop <server-ipv4>" ;;
esac
