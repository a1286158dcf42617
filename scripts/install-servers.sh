#!/usr/bin/env bash
# Builds the real servers that tests start on loopback into the gitignored .cache/bin, through the
# machine's Go client (the Go module proxy is the only source that works here). Idempotent: each
# binary is rebuilt only when it is missing or its version differs from the pinned one, and the
# installed versions are recorded in .cache/bin/versions.txt so a warm machine skips every build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.cache/bin"
STAMP="$BIN/versions.txt"
LIVEKIT_VERSION="v1.13.5"
LK_VERSION="v2.16.3"
FERRETDB_VERSION="v1.24.2"

mkdir -p "$BIN"
touch "$STAMP"
export GOBIN="$BIN"
# Builds must not depend on a .git directory (clones in CI, module cache copies).
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

log() { printf '[install-servers] %s\n' "$*"; }

stamped() { # name version -> true when the stamp says so and the binary is there
  [[ -x "$BIN/$1" ]] && grep -qx "$1=$2" "$STAMP"
}

stamp() { # name version
  local tmp
  tmp="$(mktemp "$STAMP.XXXXXX")"
  { grep -v "^$1=" "$STAMP" || true; echo "$1=$2"; } >"$tmp"
  mv "$tmp" "$STAMP"
}

# Another job (or engineer) may already be running the same `go install`; a duplicate would race
# on the same output file, so wait for it instead.
wait_for_go_install() { # pattern
  local waited=0
  # ps output goes through a variable: with pipefail, `ps | grep -q` can fail on SIGPIPE.
  while grep -q "^go install .*$1" <<<"$(ps -eo args=)"; do
    if (( waited % 30 == 0 )); then log "waiting for a running 'go install' of $1"; fi
    sleep 2
    waited=$((waited + 2))
  done
}

install_livekit() {
  if stamped livekit-server "$LIVEKIT_VERSION"; then
    log "livekit-server $LIVEKIT_VERSION already installed"
    return
  fi
  wait_for_go_install 'livekit-server/cmd/server'
  # The module's main package is cmd/server, so go install names the binary `server`.
  if [[ ! -x "$BIN/server" ]] || [[ "$("$BIN/server" --version 2>/dev/null)" != *" ${LIVEKIT_VERSION#v}" ]]; then
    log "building livekit-server $LIVEKIT_VERSION"
    go install "github.com/livekit/livekit-server/cmd/server@$LIVEKIT_VERSION"
  fi
  mv -f "$BIN/server" "$BIN/livekit-server"
  [[ "$("$BIN/livekit-server" --version)" == *" ${LIVEKIT_VERSION#v}" ]]
  stamp livekit-server "$LIVEKIT_VERSION"
  log "livekit-server $LIVEKIT_VERSION installed"
}

# FerretDB cannot come from `go install ...@version` here: the proxy refuses the module's version
# list, which go install reads for its deprecation check, and a module build leaves
# build/version/version.txt empty, which makes the binary panic at start-up. So build it from the
# downloaded module source with the version file written, the way its own release task does.
install_ferretdb() {
  if stamped ferretdb "$FERRETDB_VERSION"; then
    log "ferretdb $FERRETDB_VERSION already installed"
    return
  fi
  wait_for_go_install 'FerretDB/cmd/ferretdb'
  log "building ferretdb $FERRETDB_VERSION from module source"
  local dir src
  dir="$(cd "$ROOT" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || { log "go mod download gave no source directory for FerretDB"; return 1; }
  src="$(mktemp -d)"
  cp -R "$dir/." "$src/"
  chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  (cd "$src" && go build -trimpath -o "$BIN/ferretdb" ./cmd/ferretdb)
  rm -rf "$src"
  [[ "$("$BIN/ferretdb" --version)" == "version: $FERRETDB_VERSION"* ]]
  stamp ferretdb "$FERRETDB_VERSION"
  log "ferretdb $FERRETDB_VERSION installed"
}

# lk is a convenience for people (publish a speech file into a room by hand); no test needs it, so
# a failure here is a warning. This machine's Go proxy currently answers 403 for every lk version.
install_lk() {
  if stamped lk "$LK_VERSION"; then
    log "lk $LK_VERSION already installed"
    return
  fi
  wait_for_go_install 'livekit-cli/v2/cmd/lk'
  log "building lk $LK_VERSION"
  if go install "github.com/livekit/livekit-cli/v2/cmd/lk@$LK_VERSION" 2>"$BIN/lk-install.err"; then
    stamp lk "$LK_VERSION"
    log "lk $LK_VERSION installed"
  else
    log "WARNING: lk $LK_VERSION could not be installed (not needed by tests): $(head -c 300 "$BIN/lk-install.err" | tr '\n' ' ')"
  fi
}

command -v go >/dev/null || { log "go is not installed (needed to build the test servers)"; exit 1; }
install_livekit
install_ferretdb
install_lk
