#!/usr/bin/env bash
# What one proxied request costs the proxy, in CPU instructions (valgrind's callgrind): a figure
# that does not move with the machine's load or speed, unlike requests per second on two shared
# cores. Runs the release proxy under callgrind in front of another entra-webapp, signs in against
# the emulator, then counts the proxy's instructions over PROXY_COST_SECONDS (default 10) of wrk
# for: the upstream's stylesheet signed in, the same anonymous (an anonymous path: no session
# read). The counters are zeroed after start-up and warm-up, so only the requests are counted.
# Prints instructions per request for each, and the signed-in premium.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${PROXY_COST_SECONDS:-10}
target_dir=${CARGO_TARGET_DIR:-target}
# shellcheck source=scripts/lib/loopback.sh
source scripts/lib/loopback.sh
install_missing wrk valgrind

cargo build --quiet --release -p entra-webapp -p entra-emulator --bins --examples
bin="$target_dir/release"

emulator_port=$(free_port) upstream_port=$(free_port) proxy_port=$(free_port)
proxy="http://127.0.0.1:$proxy_port"
emulator="http://127.0.0.1:$emulator_port"
"$bin/entra-emulator" --bind "127.0.0.1:$emulator_port" --admin-consent \
  --redirect-uri "$proxy/callback" >"$work/emulator.log" 2>&1 &
pids+=($!)
emulator_settings "$emulator"
env -i PATH="$PATH" "${app_settings[@]}" REDIRECT_URI="http://127.0.0.1:$upstream_port/callback" PORT="$upstream_port" \
  "$bin/entra-webapp" serve >"$work/upstream.log" 2>&1 &
pids+=($!)
env -i PATH="$PATH" "${app_settings[@]}" REDIRECT_URI="$proxy/callback" PORT="$proxy_port" \
  SESSION_SECRET=bench-secret-bench-secret-bench-secret-0123 UPSTREAM_URL="http://127.0.0.1:$upstream_port" \
  PROXY_ANONYMOUS_PATHS='/static/*' \
  valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p" "$bin/entra-webapp" serve >"$work/proxy.log" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
# Under callgrind the proxy starts many times slower.
wait_for "$proxy/readyz" 60
cookie=$("$bin/examples/sign_in_load" --app "$proxy" --proxy --count 1 --print cookie 2>/dev/null)

# Instructions per request of a wrk run with these extra arguments.
per_request() {
  local name=$1
  shift
  curl -s -o /dev/null "$@" "$proxy/static/style.css"
  callgrind_control --zero "$proxy_pid" >/dev/null 2>&1
  local output requests
  output=$(wrk -t1 -c4 -d"${seconds}s" "$@" "$proxy/static/style.css")
  if grep -q "Non-2xx" <<<"$output"; then
    echo "proxy_cost.sh: non-2xx answers ($name)" >&2
    exit 1
  fi
  requests=$(awk '/requests in/ { print $1 }' <<<"$output")
  callgrind_control --dump="$name" "$proxy_pid" >/dev/null 2>&1
  local dump=""
  for _ in $(seq 1 50); do
    dump=$(grep -l "^desc: Trigger: .*dump $name\$" "$work"/callgrind.* 2>/dev/null | head -1 || true)
    [[ -n $dump ]] && break
    sleep 0.2
  done
  [[ -n $dump ]] || { echo "proxy_cost.sh: no callgrind dump for $name" >&2; exit 1; }
  awk -v requests="$requests" '/^(summary|totals):/ { printf "%.0f", $2 / requests; exit }' "$dump"
}
signed_in=$(per_request signed-in -H "Cookie: $cookie")
anonymous=$(per_request anonymous)
python3 - "$signed_in" "$anonymous" <<'PY'
import sys
signed_in, anonymous = (int(v) for v in sys.argv[1:])
print(f"proxy instructions per request: signed in {signed_in:,}, anonymous {anonymous:,}, "
      f"signed-in premium {signed_in - anonymous:,} ({signed_in / anonymous:.2f}x)")
PY
