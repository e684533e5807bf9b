#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: container engine, uv, the locked Python packages, the images.
# Each step does nothing when its result is already there. Bounds are named variables below.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.8"
DOCKERD_START_TIMEOUT_S="${DOCKERD_START_TIMEOUT_S:-60}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/pipeline-chaos-dockerd.log}"
export PATH="$PATH:/usr/local/go/bin:$HOME/.local/bin"

log() { echo "[setup] $*"; }
die() { echo "error: $*" >&2; exit 2; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  is_root && command -v apt-get >/dev/null 2>&1 || die "need $* but cannot install it (not root, or no apt): install it and run again"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_engine() {
  engine_answers && return 0
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "no container engine answers at DOCKER_HOST=$DOCKER_HOST: start it, or unset DOCKER_HOST to use a local one"
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing Debian's container engine (docker.io)"
    apt_install docker.io
  fi
  engine_answers && return 0
  is_root || die "dockerd is installed but not running, and only root can start it: run 'sudo dockerd &' or start the docker service"
  log "starting dockerd (log: $DOCKERD_LOG)"
  setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
  local deadline=$((SECONDS + DOCKERD_START_TIMEOUT_S))
  until engine_answers; do
    [ $SECONDS -lt $deadline ] || die "dockerd did not answer within ${DOCKERD_START_TIMEOUT_S} s; see $DOCKERD_LOG"
    sleep 0.5
  done
}

ensure_python() {
  if ! command -v uv >/dev/null 2>&1; then
    log "installing uv $UV_VERSION"
    python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>/dev/null \
      || python3 -m pip install -q --user --disable-pip-version-check "uv==$UV_VERSION"
  fi
  uv sync --frozen --quiet
}

ensure_images() {
  if uv run --frozen python -m chaos.images status >/dev/null 2>&1; then
    return 0
  fi
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  command -v mvn >/dev/null 2>&1 || apt_install maven
  command -v go >/dev/null 2>&1 || apt_install golang-go
  uv run --frozen python -m chaos.images ensure
}

ensure_engine
ensure_python
ensure_images
