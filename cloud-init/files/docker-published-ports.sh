#!/bin/sh
# Installed as /usr/local/sbin/docker-published-ports; run by Docker's unit (ExecStartPre,
# drop-in 20-published-ports.conf) before the daemon starts any container, and by the host
# configuration step when the exposure mode changes on a running server.
# Usage: docker-published-ports [PORT/PROTO...]
# Ports Docker publishes are forwarded to containers before ufw sees the packets, so ufw's
# "deny incoming" does not cover them. This fills Docker's DOCKER-USER chain (which Docker keeps
# across restarts and consults first) so that connections from outside reach a container only on
# the ports given (the exposure mode's public ports: none with the tunnel, 80 and 443 direct).
# Traffic between containers, from containers outwards and replies pass. The chain is replaced in
# one iptables-restore transaction: at no moment is it empty while containers run.
set -eu

rules() {
  echo "*filter"
  echo ":DOCKER-USER - [0:0]"
  echo "-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
  echo "-A DOCKER-USER -i docker0 -j RETURN"
  echo "-A DOCKER-USER -i br-+ -j RETURN"
  for spec in "$@"; do
    port="${spec%/*}"
    proto="${spec#*/}"
    echo "-A DOCKER-USER -p $proto -m conntrack --ctorigdstport $port -j RETURN"
  done
  echo "-A DOCKER-USER -j DROP"
  echo "COMMIT"
}

rules "$@" | iptables-restore -w --noflush
echo "docker-published-ports: from outside, containers are reachable on: ${*:-no port}"
