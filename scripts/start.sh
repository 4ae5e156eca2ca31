#!/usr/bin/env bash
# `npm start`: installs what is missing (Node 24, pnpm, node modules, Kafka jars), builds, and runs the local stack
# (infra/src/launch.ts): Kafka, the database and topics, the GitHub simulator and the four services. Ctrl-C stops
# it all. `npm start -- --help` lists the settings (KAFKA_BROKERS, DATABASE_URL, ports, …).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
sy_bootstrap
cd "$SY_ROOT"
sy_log "building"
pnpm run --silent build
exec node infra/dist/launch.js "$@"
