# shellcheck shell=sh
# Installed by cloud-init as /etc/profile.d/webstack-hardening.sh, read by login shells.
# An idle interactive shell ends after 15 minutes (a running command is not interrupted), and a
# shell writes no core dumps. Guarded, so that reading the file twice in one shell is no error.
if [ -z "${TMOUT:-}" ]; then
  TMOUT=900
  readonly TMOUT
  export TMOUT
fi
# dash and bash, the shells that read it, both have ulimit -c.
# shellcheck disable=SC3045
ulimit -c 0
