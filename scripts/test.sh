#!/usr/bin/env bash
# `npm test`: installs what is missing (Node 24, pnpm, node modules, Kafka jars), then lint, typecheck, tests.
# The tests start the local Kafka broker themselves when no KAFKA_BROKERS is given and no Docker engine answers,
# and stop it again at the end; the trap below makes sure of that even when the run is interrupted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
sy_bootstrap
cd "$SY_ROOT"

broker_was_running=false
if node infra/dist/kafka-cli.js status 2>/dev/null | grep -q '^running'; then broker_was_running=true; fi
cleanup() {
  if [ "$broker_was_running" = false ] && [ -f infra/dist/kafka-cli.js ]; then
    node infra/dist/kafka-cli.js stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

sy_log "lint"
pnpm run --silent lint
sy_log "typecheck (and build)"
pnpm run --silent typecheck
sy_log "tests"
pnpm exec vitest run "$@"
