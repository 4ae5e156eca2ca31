#!/usr/bin/env bash
# `npm run bench [-- <name>…] [--<option> <value>…]`: installs what is missing (Node 24, pnpm, node modules, Kafka
# jars), builds, and runs the benchmarks (bench/run.ts). Reports go to bench/reports/<timestamp>-<name>.{json,md}.
# `npm run bench -- --list` lists them; bench/README.md describes each one's options.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
sy_bootstrap
cd "$SY_ROOT"
sy_log "building"
pnpm run --silent build
exec node bench/dist/run.js "$@"
