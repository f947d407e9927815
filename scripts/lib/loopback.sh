# shellcheck shell=bash
# Helpers for the scripts that start the emulator and entra-webapp on loopback ports and load them
# (bench.sh, proxy_cost.sh). Sourced, not run: messages name the script that sourced it.

# install_missing COMMAND[:PACKAGE]...: apt-installs the package of each command not on PATH (as
# root), or stops with what to install.
install_missing() {
  local missing=() item
  for item in "$@"; do
    command -v "${item%%:*}" >/dev/null || missing+=("${item#*:}")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "${0##*/}: install ${missing[*]} first" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for URL [SECONDS]: until it answers 200 (default 10 s), or stop.
wait_for() {
  local url=$1 tenths=$((${2:-10} * 10))
  for _ in $(seq 1 "$tenths"); do
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]]; then return 0; fi
    sleep 0.1
  done
  echo "${0##*/}: $url never answered 200" >&2
  exit 1
}

# A scratch directory ($work) and the servers started ($pids), both gone when the script exits.
pids=()
work=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# emulator_settings EMULATOR_URL: sets `app_settings`, the environment every entra-webapp started
# against the emulator's default tenant and app shares (each adds its REDIRECT_URI and PORT).
emulator_settings() {
  local emulator=$1
  # shellcheck disable=SC2034 # read by the scripts that source this file
  app_settings=(TENANT_ID=7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90 CLIENT_ID=3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41
    CLIENT_SECRET=emulator-client-secret-not-for-production AUTHORITY_HOST="$emulator"
    GRAPH_ENDPOINT="$emulator/graph" BIND_ADDRESS=127.0.0.1 RUST_LOG=warn)
}
