#!/usr/bin/env bash
# The whole test suite. On a fresh Debian machine it first installs what the tests need
# (as root: apt packages; always: throwaway Python virtualenvs with MSAL and the Azure CLI), then:
#   1. the gates: cargo fmt --check, cargo clippy -D warnings (every target), no import cycle,
#   2. shellcheck on every shell script; deploy.sh against a fake az, and every az line it runs
#      through the real Azure CLI's parser,
#   3. the MSAL interop matrix against `entra-emulator --tls-self-signed`: MSAL Python (web app),
#      MSAL Node (web app and desktop app), MSAL Browser (a SPA in headless Chromium),
#   4. the release build (the binary the container runs; its runtime contract is tested below),
#   5. the doc tests, entra-auth's docs without warnings, `cargo package` of both libraries, the
#      app without its demo feature (the criterion benchmarks are checked by clippy's
#      --all-targets in 1.; building them again in release, with every dev-dependency, took
#      several minutes of a cold CI run for no further check),
#   6. every Rust test of the workspace with cargo-nextest (unit, integration over TCP, Redis,
#      headless Chromium), no retries, hung tests terminated (.config/nextest.toml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each phase says when it starts, in seconds since the suite began: a phase creeping towards CI's
# budget (45 minutes from a cold start, installs included) shows in the log.
phase() {
  echo "==> [${SECONDS}s] $*"
}

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_packages+=(nginx)
command -v shellcheck >/dev/null || apt_packages+=(shellcheck)
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_packages+=(python3-venv)
command -v node >/dev/null || apt_packages+=(nodejs)
command -v npm >/dev/null || apt_packages+=(npm)
if ((${#apt_packages[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing packages: ${apt_packages[*]} (install them, or run this script as root)" >&2
    exit 1
  fi
  phase "installing ${apt_packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  phase "installing cargo-nextest (the suite's runner: its config sets timeouts and no retries)"
  cargo install --locked cargo-nextest
fi

phase "gates: rustfmt, clippy"
cargo fmt --all --check
cargo clippy --quiet --workspace --all-targets -- -D warnings

phase "gate: no import cycle between the files of a crate"
python3 scripts/import_cycles.py crates/entra-auth crates/entra-webapp crates/entra-emulator

phase "shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' .ci/run deploy/azure/tests/fake-az/az)
shellcheck "${scripts[@]}"

phase "deploy.sh against a fake az, and every az line it runs through the real Azure CLI's parser"
target_dir=${CARGO_TARGET_DIR:-target}
az_venv="$target_dir/az-venv"
if [[ ! -x $az_venv/bin/python ]]; then
  python3 -m venv "$az_venv"
fi
"$az_venv/bin/pip" install --quiet --disable-pip-version-check 'azure-cli==2.91.0'
AZ_REAL="$(cd "$az_venv" && pwd)/bin/az" deploy/azure/tests/deploy_test.sh

phase "MSAL Python interop (entra-emulator --tls-self-signed)"
venv="$target_dir/msal-venv"
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check 'msal==1.39.0' 'requests>=2.31'
cargo build --quiet -p entra-emulator --bin entra-emulator
"$venv/bin/python" -W ignore crates/entra-emulator/tests/interop/msal_sign_in.py "$target_dir/debug/entra-emulator"

phase "MSAL Node interop (@azure/msal-node, pinned in its package-lock.json)"
(cd crates/entra-emulator/tests/interop/msal-node && npm ci --no-audit --no-fund --silent)
node crates/entra-emulator/tests/interop/msal-node/sign_in.mjs "$target_dir/debug/entra-emulator"

phase "MSAL Browser interop (@azure/msal-browser in headless Chromium, pinned in its package-lock.json)"
(cd crates/entra-emulator/tests/interop/msal-browser && npm ci --no-audit --no-fund --silent)
node crates/entra-emulator/tests/interop/msal-browser/sign_in.mjs "$target_dir/debug/entra-emulator"

phase "release build (what the container runs)"
cargo build --quiet --release -p entra-webapp
ENTRA_WEBAPP_BIN="$(cd "$target_dir" && pwd)/release/entra-webapp"
export ENTRA_WEBAPP_BIN

phase "doc tests"
cargo test --quiet --workspace --doc

phase "library docs build without warnings; both libraries package; the app builds without the demo"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet -p entra-auth -p entra-emulator --no-deps
cargo package --quiet --allow-dirty -p entra-auth -p entra-emulator
cargo check --quiet -p entra-webapp --no-default-features

# Last, so that its summary closes the output.
phase "Rust tests ($(cargo nextest --version | head -n 1))"
cargo nextest run --workspace --no-fail-fast
