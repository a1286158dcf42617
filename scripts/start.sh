#!/usr/bin/env bash
# From a fresh clone to a running engine: installs what is missing (npm packages, the Debian tools the
# offline stand-ins and simulated callers use, the models), then runs `npm start`, which builds the
# local LiveKit server on first use. Everything else (store, stand-ins) is embedded. Arguments and
# environment variables pass through to `npm start` (see server/SETTINGS.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[start.sh] %s\n' "$*"; }

# espeak-ng speaks for the offline TTS stand-in and the simulated callers; sox converts its output.
missing=()
for tool in espeak-ng sox; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]} > 0)); then
  if ((EUID == 0)); then
    log "installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  elif command -v sudo >/dev/null; then
    log "installing ${missing[*]} (sudo)"
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    log "WARNING: ${missing[*]} missing and no root: the offline stand-ins cannot speak (apt-get install -y ${missing[*]})"
  fi
fi

# Same stamp as .ci/run: reinstall only when package-lock.json changed.
stamp=.cache/npm-ci.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -d node_modules || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "installing npm packages"
  mkdir -p .cache
  # onnxruntime-node's postinstall downloads from a host that may be unreachable; its CPU binaries
  # are inside the npm tarball anyway.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
fi

log "checking the models"
npm run --silent setup:models

exec npm start -- "$@"
