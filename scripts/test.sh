#!/usr/bin/env bash
# `npm test`: installs what is missing (Node 24, pnpm, node modules, Kafka jars), then lint, typecheck, tests.
# The tests start the local Kafka broker themselves when no KAFKA_BROKERS is given and no Docker engine answers,
# and stop it again at the end; the trap below makes sure of that even when the run is interrupted.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
# The broker-failure tests run a local 3-node cluster whatever KAFKA_BROKERS says.
export SY_NEED_KAFKA_JARS=1
sy_bootstrap
cd "$SY_ROOT"

# The single broker most tests share, and the 3-node cluster the broker-failure tests kill nodes of. The tests
# give back their lease on each when they end; if the run is interrupted first, this stops whichever one the run
# started and nothing else of this checkout (npm start, another test run) still uses.
cleanup() {
  [ -f infra/dist/kafka-cli.js ] || return 0
  local port="${SWITCHYARD_KAFKA_PORT:-9092}" local_name=local
  [ "$port" = 9092 ] || local_name="local-$port"
  for name in "$local_name" test-cluster; do
    node infra/dist/kafka-cli.js stop-if-unused --name "$name" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

sy_log "lint"
pnpm run --silent lint
sy_log "typecheck (and build)"
pnpm run --silent typecheck
sy_log "tests"
pnpm exec vitest run "$@"
