#!/usr/bin/env bash
# The whole test suite: `npm test`. Installs the real tools the tests use (first run only), then
# runs every vitest suite: renderers, the resource graph under mocks, and the real validators.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-tools.sh
export WEBSTACK_CACHE="${WEBSTACK_CACHE:-/var/cache/webstack}"

npx tsc --noEmit
npx biome check .
npx vitest run "$@"
