#!/usr/bin/env bash
# The VM suite: `npm run test:vm`. Boots the rendered cloud-init in a Debian 13 VM under qemu,
# deploys the app stack into it and audits it from outside (tests/vm/server.vmtest.ts). Installs
# what it needs on first run; the Debian image is cached under $WEBSTACK_CACHE/vm, the stand-in
# app images under $WEBSTACK_CACHE/stack-images, the packages the VMs install under
# $WEBSTACK_CACHE/apt-proxy. Most of an hour on two cores (qemu's TCG).
# `npm run test:vm:host` (WEBSTACK_VM_SCOPE=host, what CI runs) is the part without the app stack
# and lynis: one VM, about half as long.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash scripts/install-test-tools.sh
export WEBSTACK_CACHE="${WEBSTACK_CACHE:-/var/cache/webstack}"
npx vitest run --config tests/vm/vitest.config.mts "$@"
