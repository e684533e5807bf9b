#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: container engine, uv, the locked Python packages, the images.
# Each step does nothing when its result is already there. Bounds are named variables below.
#
# Two kinds of machine, both supported:
# - root on a fresh Debian machine: what is missing is installed with apt (docker.io, python3-venv, and the
#   build tools below) and dockerd is started;
# - a user in the docker group with an engine already running (a hosted CI runner): nothing is installed
#   with apt and nothing needs sudo. When something cannot be done without root, the script stops before
#   building anything, with one message naming everything that is missing and the command that installs it.
# The image build tools (debootstrap, Maven, Go) are needed only by the steps of the local image build that
# will actually run: debootstrap when the Debian base image is missing, Maven when the Kafka image is missing
# and Kafka's jars are not in the cache, Go when the Toxiproxy image is missing and its binary is not cached.
# With the official images (a registry answers) none of them is needed. The pipelines' own images are built
# for each adapter in SETUP_PIPELINES (default: this repository's two, the reference pipeline and the Java
# orders example, whose build needs Maven); `python -m chaos.images plan` says what each build needs.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.8"
SETUP_PIPELINES="${SETUP_PIPELINES:-system_under_test.adapter:PIPELINE examples.orders.adapter:PIPELINE}"
DOCKERD_START_TIMEOUT_S="${DOCKERD_START_TIMEOUT_S:-60}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/pipeline-chaos-dockerd.log}"
UV_VENV="${XDG_DATA_HOME:-$HOME/.local/share}/pipeline-chaos/uv-venv"  # where uv goes when it is absent
CALLER_PATH="$PATH"
export PATH="$PATH:/usr/local/bin:/usr/local/go/bin:$HOME/.local/bin"

log() { echo "[setup] $*"; }
die() { echo "error: $*" >&2; exit 2; }
is_root() { [ "$(id -u)" = 0 ]; }
USER_NAME="$(id -un 2>/dev/null)" || USER_NAME=""  # empty for a uid without an account
WHO="${USER_NAME:-uid $(id -u)}"  # in messages
USER_ARG="${USER_NAME:-<user>}"  # in the commands they suggest
can_apt() { is_root && command -v apt-get >/dev/null 2>&1; }
apt_install() {
  can_apt || die "need $* but cannot install it (not root, or no apt): install it and run again"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# ------------------------------------------------------------------------------------------------------
# The container engine

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }
# Why the engine does not answer, in one line (`docker info` of some clients prints it on stdout, amid the rest).
engine_error() { timeout 10 docker version --format '{{.Server.Version}}' 2>&1 >/dev/null | grep -v '^$' | tail -n 1; }

ensure_engine() {
  engine_answers && return 0
  if [ -n "${DOCKER_HOST:-}" ]; then
    die "no container engine answers at DOCKER_HOST=$DOCKER_HOST: start it, or unset DOCKER_HOST to use a local one"
  fi
  if ! is_root; then
    local why
    why="$(engine_error || true)"
    if ! command -v docker >/dev/null 2>&1; then
      die "no container engine is installed, and only root can install one: 'sudo apt-get install -y docker.io'" \
          "(Debian/Ubuntu), 'sudo usermod -aG docker $USER_ARG', log in again, and run this again"
    elif [[ "$why" == *"permission denied"* ]]; then
      die "the container engine refuses $WHO ($why): add the user to the engine's group" \
          "('sudo usermod -aG docker $USER_ARG', then log in again or run 'newgrp docker'), or run this as root"
    fi
    die "no container engine answers ($why), and only root can start one: 'sudo systemctl start docker'" \
        "(or 'sudo dockerd &'), then run this again"
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    log "installing Debian's container engine (docker.io)"
    apt_install docker.io
  fi
  engine_answers && return 0
  log "starting dockerd (log: $DOCKERD_LOG)"
  setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 < /dev/null &
  local deadline=$((SECONDS + DOCKERD_START_TIMEOUT_S))
  until engine_answers; do
    [ $SECONDS -lt $deadline ] || die "dockerd did not answer within ${DOCKERD_START_TIMEOUT_S} s; see $DOCKERD_LOG"
    sleep 0.5
  done
}

# ------------------------------------------------------------------------------------------------------
# uv and the locked Python packages
#
# uv, when it is not on PATH, goes into a private venv ($UV_VENV, installed there by the venv's own pip
# from PyPI) with a link to it in a bin directory. Why a venv and not `pip install [--user] uv`: an
# externally-managed Python (PEP 668: Debian 12, Ubuntu 23.04 and later, the hosted CI runners) refuses
# pip installs into the system and the user site, but a venv is never externally managed; the venv needs
# neither root nor --break-system-packages and touches nothing outside $UV_VENV. pipx would work too but
# is often absent, and it makes the same kind of venv. The standalone installer (astral.sh) is not used: it
# downloads from outside the package registries. The link goes to /usr/local/bin for root (on root's PATH,
# so `make test` finds uv after this script) and to ~/.local/bin for anyone else.

make_uv_venv() { rm -rf "$UV_VENV"; mkdir -p "$(dirname "$UV_VENV")"; python3 -m venv "$UV_VENV" >/dev/null 2>&1; }

ensure_uv() {
  command -v uv >/dev/null 2>&1 && return 0
  local bindir="$HOME/.local/bin"
  is_root && bindir=/usr/local/bin
  local have
  have="$("$UV_VENV/bin/uv" --version 2>/dev/null || true)"  # "uv 0.13.8 (x86_64-unknown-linux-gnu)"
  if [ "$have" != "uv $UV_VERSION" ] && [ "${have#"uv $UV_VERSION "}" = "$have" ]; then
    log "installing uv $UV_VERSION from PyPI into a private venv ($UV_VENV)"
    if ! command -v python3 >/dev/null 2>&1 || ! make_uv_venv; then
      can_apt || die "uv is not installed, and installing it needs python3 with its venv module, which" \
          "$(command -v python3 >/dev/null 2>&1 && echo "this python3 lacks" || echo "is missing"):" \
          "'sudo apt-get install -y python3-venv' (Debian/Ubuntu), then run this again;" \
          "or install uv $UV_VERSION yourself ('pipx install uv==$UV_VERSION')"
      log "installing python3-venv"
      apt_install python3-venv
      make_uv_venv || die "'python3 -m venv $UV_VENV' failed even with python3-venv installed; run it to see why"
    fi
    "$UV_VENV/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" \
      || die "could not install uv==$UV_VERSION from PyPI into $UV_VENV (pip's message is above)"
  fi
  mkdir -p "$bindir"
  ln -sfn "$UV_VENV/bin/uv" "$bindir/uv"
  hash -r
  command -v uv >/dev/null 2>&1 || die "uv was installed to $UV_VENV/bin/uv but cannot be run from $bindir/uv"
  case ":$CALLER_PATH:" in
    *":$bindir:"*) ;;
    *) log "note: uv is in $bindir, which is not on your PATH: add it ('export PATH=\"$bindir:\$PATH\"')" \
           "so that 'make test' and 'uv run' find it" ;;
  esac
}

ensure_python() {
  ensure_uv
  if [ -e .venv ] && [ ! -w .venv ]; then
    die "the project environment $PWD/.venv belongs to $(stat -c %U .venv) and $WHO cannot write it:" \
        "remove it ('sudo rm -rf $PWD/.venv') or run this as its owner"
  fi
  uv sync --frozen --quiet
}

# ------------------------------------------------------------------------------------------------------
# The images
#
# `python -m chaos.images status` (exit 0) means nothing is to be built. Otherwise `python -m chaos.images
# plan` says which source `ensure` would use (a registry is probed once, there, and `ensure` is then told
# the source) and which host tool each missing image's build runs (the pipeline's own images included).
# Output lines: "source <local|official>", "need <command> <Debian package> <what needs it>",
# "base_by_hand <command>" (the Debian base image, made without this script; debootstrap runs only as root).

images_plan() {
  uv run --frozen python -m chaos.images plan
}

ensure_images() {
  local pipeline
  for pipeline in $SETUP_PIPELINES; do
    CHAOS_PIPELINE="$pipeline" ensure_images_of
  done
}

ensure_images_of() {
  if uv run --frozen python -m chaos.images status >/dev/null 2>&1; then
    return 0
  fi
  local plan line tool pkg why source="" base_by_hand="" needs_root=""
  local -a lacking=() pkgs=()
  plan="$(images_plan)"
  while IFS= read -r line; do
    case "$line" in
      "source "*) source="${line#source }" ;;
      "base_by_hand "*) base_by_hand="${line#base_by_hand }" ;;
      "need "*)
        read -r _ tool pkg why <<<"$line"
        [ "$tool" = debootstrap ] && ! is_root && needs_root="$why"
        command -v "$tool" >/dev/null 2>&1 && continue
        lacking+=("  - $tool (Debian package $pkg), for $why")
        pkgs+=("$pkg") ;;
    esac
  done <<<"$plan"
  if [ ${#pkgs[@]} -gt 0 ] && can_apt; then
    log "installing what the image build needs: ${pkgs[*]}"
    apt_install "${pkgs[@]}"
    lacking=()
  fi
  if [ ${#lacking[@]} -gt 0 ] || [ -n "$needs_root" ]; then
    local msg="the missing images cannot be built on this machine as it is (nothing was built):"
    if [ ${#lacking[@]} -gt 0 ]; then
      msg+=$'\n'"tools missing, which this script cannot install ($(is_root && echo "no apt-get" || echo "not root")):"
      msg+=$'\n'"$(printf '%s\n' "${lacking[@]}")"
      msg+=$'\n'"install them: $(is_root || echo "sudo ")apt-get install -y ${pkgs[*]}"
    fi
    if [ -n "$needs_root" ]; then
      msg+=$'\n'"root: debootstrap runs only as root, and it makes $needs_root."
      msg+=$'\n'"make that image once by hand (debootstrap installed), then run this again as $WHO:"
      msg+=$'\n'"  $base_by_hand"
    fi
    msg+=$'\n'"or use images you have: CHAOS_IMAGE_SOURCE=official where a registry answers,"
    msg+=" CHAOS_IMAGE_<ROLE>=<image> for one role (README, settings)"
    die "$msg"
  fi
  CHAOS_IMAGE_SOURCE="$source" uv run --frozen python -m chaos.images ensure
}

ensure_engine
ensure_python
ensure_images
