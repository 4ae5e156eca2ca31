#!/usr/bin/env bash
# Sourced by the top-level commands. Makes the toolchain present on a fresh machine:
#   - Node >= 22 (installs Node 24 from the npm registry's node-<os>-<arch> package into .tools when the system Node is older)
#   - pnpm 10 (installed with npm into .tools; corepack is not relied on)
#   - the workspace's node modules
#   - the Apache Kafka jars from Maven Central (into .cache/kafka, driven by infra/kafka/pom.xml)
# Everything lands in ignored folders of the repository; nothing global is touched.

SY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SY_TOOLS="$SY_ROOT/.tools"
export SY_ROOT

sy_log() { printf '\033[2m[switchyard]\033[0m %s\n' "$*" >&2; }

sy_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

sy_ensure_node() {
  local os arch pkg dir
  if [ -x "$SY_TOOLS/node/bin/node" ]; then export PATH="$SY_TOOLS/node/bin:$PATH"; fi
  if [ "$(sy_node_major)" -ge 22 ]; then return 0; fi
  case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) sy_log "unsupported OS $(uname -s)"; return 1 ;; esac
  case "$(uname -m)" in x86_64|amd64) arch=x64 ;; aarch64|arm64) arch=arm64 ;; *) sy_log "unsupported CPU $(uname -m)"; return 1 ;; esac
  pkg="node-$os-$arch@$(cat "$SY_ROOT/.nvmrc")"
  dir="$SY_TOOLS/node-pkg"
  sy_log "system Node is $(node -v 2>/dev/null || echo missing); installing $pkg into .tools"
  rm -rf "$dir" && mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --loglevel=error "$pkg" >&2
  mkdir -p "$SY_TOOLS/node/bin"
  ln -sf "$dir/node_modules/node-$os-$arch/bin/node" "$SY_TOOLS/node/bin/node"
  export PATH="$SY_TOOLS/node/bin:$PATH"
  sy_log "using Node $(node -v)"
}

sy_ensure_pnpm() {
  if [ -x "$SY_TOOLS/pnpm/node_modules/.bin/pnpm" ]; then export PATH="$SY_TOOLS/pnpm/node_modules/.bin:$PATH"; fi
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null | cut -d. -f1)" = "10" ]; then return 0; fi
  sy_log "installing pnpm 10 into .tools"
  mkdir -p "$SY_TOOLS/pnpm"
  npm install --prefix "$SY_TOOLS/pnpm" --no-save --no-package-lock --loglevel=error pnpm@10 >&2
  export PATH="$SY_TOOLS/pnpm/node_modules/.bin:$PATH"
}

sy_ensure_modules() {
  local stamp="$SY_ROOT/node_modules/.sy-lock-stamp"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$SY_ROOT/pnpm-lock.yaml"; then return 0; fi
  sy_log "installing node modules"
  (cd "$SY_ROOT" && pnpm install --frozen-lockfile --reporter=append-only >&2)
  cp "$SY_ROOT/pnpm-lock.yaml" "$stamp"
}

sy_kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$SY_ROOT/infra/kafka/pom.xml"; }

sy_ensure_kafka_jars() {
  # With KAFKA_BROKERS the local broker is not needed, except by the tests that kill nodes of a local cluster.
  if [ -n "${KAFKA_BROKERS:-}" ] && [ -z "${SY_NEED_KAFKA_JARS:-}" ]; then return 0; fi
  local version libs
  version="$(sy_kafka_version)"
  libs="$SY_ROOT/.cache/kafka/$version/libs"
  if [ -f "$libs/.complete" ]; then return 0; fi
  command -v java >/dev/null 2>&1 || { sy_log "Java 17+ is needed to run the local Kafka broker (or set KAFKA_BROKERS)"; return 1; }
  command -v mvn >/dev/null 2>&1 || { sy_log "Maven is needed to fetch the Kafka jars (or set KAFKA_BROKERS)"; return 1; }
  sy_log "fetching Apache Kafka $version jars from Maven Central"
  rm -rf "$libs"
  mvn -q -B -f "$SY_ROOT/infra/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

sy_bootstrap() {
  sy_ensure_node && sy_ensure_pnpm && sy_ensure_modules && sy_ensure_kafka_jars
}
