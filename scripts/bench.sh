#!/usr/bin/env bash
# Benchmarks entra-webapp on loopback, in one run, against the emulator (all release builds):
#   GET /healthz (the ceiling: same server, no session, no template), signed-in GET / with the
#   memory store and with the Redis store, GET /login, complete sign-ins per second, p50/p99 of
#   signed-in GET / at 50 connections, resident memory idle and after 10,000 signed-in sessions,
#   and an anonymous flood: RSS and Redis key count before and after BENCH_ANONYMOUS (100,000)
#   cookieless GET /login, with a session signed in before it still signed in after. Proxy mode:
#   a signed-in proxied GET against the same upstream hit directly (another entra-webapp's
#   stylesheet) and the same GET anonymous through the proxy (the session's share), medians of
#   three alternated rounds, the p99 the proxy adds at 50 connections, and the proxy's RSS; for
#   reference, the same GET through nginx (proxy_pass with pooled upstream connections, no sign-in
#   at all) and through examples/bare_proxy (hyper's server and hyper-util's pooled client with
#   nothing between them, the floor of any proxy built on the crates ours uses): what the second
#   hop alone costs on this machine.
# Prints a table with each figure and its ratio to /healthz; exits 1 when a target is missed.
# Every load is bounded: BENCH_SECONDS per wrk run (default 10), BENCH_SIGN_INS sign-ins.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${BENCH_SECONDS:-10}
sign_ins=${BENCH_SIGN_INS:-10000}
anonymous=${BENCH_ANONYMOUS:-100000}
target_dir=${CARGO_TARGET_DIR:-target}

# shellcheck source=scripts/lib/loopback.sh
source scripts/lib/loopback.sh
install_missing wrk redis-server nginx

echo "==> release build"
cargo build --quiet --release -p entra-webapp -p entra-emulator --bins --examples
bin="$target_dir/release"

emulator_port=$(free_port)
app_port=$(free_port)
redis_port=$(free_port)
app="http://127.0.0.1:$app_port"
emulator="http://127.0.0.1:$emulator_port"
emulator_settings "$emulator"

"$bin/entra-emulator" --bind "127.0.0.1:$emulator_port" --admin-consent \
  --redirect-uri "$app/callback" >"$work/emulator.log" 2>&1 &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$emulator/_emulator"

start_app() {
  local store=$1
  shift
  env -i PATH="$PATH" "$@" "${app_settings[@]}" REDIRECT_URI="$app/callback" PORT="$app_port" \
    SESSION_STORE="$store" SESSION_SECRET=bench-secret-bench-secret-bench-secret-0123 \
    "$bin/entra-webapp" serve >"$work/app.log" 2>&1 &
  app_pid=$!
  pids+=("$app_pid")
  wait_for "$app/readyz"
}
stop_app() {
  kill "$app_pid"
  wait "$app_pid" 2>/dev/null || true
}
rss_mb() {
  awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$app_pid/status"
}
# Requests per second of a wrk run.
wrk_rps() {
  local connections=$1
  shift
  local output
  output=$(wrk -t2 -c"$connections" -d"${seconds}s" "$@")
  # Every answer must have been a success (wrk counts the others apart).
  if grep -q "Non-2xx" <<<"$output"; then
    echo "bench.sh: non-2xx answers during $*" >&2
    exit 1
  fi
  awk '/Requests\/sec/ { print $2 }' <<<"$output"
}
# The cookie must give the signed-in page, or wrk would measure the signed-out one.
signed_in_check() {
  curl -s -H "Cookie: $1" "$app/" | grep -q 'id="welcome"' || { echo "bench.sh: the cookie is not signed in" >&2; exit 1; }
}
sign_in() {
  "$bin/examples/sign_in_load" --app "$app" "$@"
}

echo "==> memory store"
start_app memory
idle_rss=$(rss_mb)
echo "    sign-ins ($sign_ins, 8 at a time)"
sign_in_rate=$(sign_in --count "$sign_ins" --concurrency 8 --print rate)
sessions_rss=$(rss_mb)
cookie=$(sign_in --count 1 --print cookie)
signed_in_check "$cookie"
echo "    wrk: /healthz, signed-in /, /login (${seconds}s each)"
healthz_rps=$(wrk_rps 10 "$app/healthz")
home_rps=$(wrk_rps 10 -H "Cookie: $cookie" "$app/")
login_rps=$(wrk_rps 10 "$app/login")
wrk -t2 -c50 -d"${seconds}s" --latency -H "Cookie: $cookie" "$app/" >"$work/latency.txt"
p50=$(awk '$1 == "50%" { print $2 }' "$work/latency.txt")
p99=$(awk '$1 == "99%" { print $2 }' "$work/latency.txt")
stop_app

echo "==> anonymous flood, memory store ($anonymous cookieless GET /login)"
start_app memory
flood_cookie=$(sign_in --count 1 --print cookie)
signed_in_check "$flood_cookie"
flood_rss_before=$(rss_mb)
sign_in --anonymous --count "$anonymous" --concurrency 16 >/dev/null
flood_rss_after=$(rss_mb)
signed_in_check "$flood_cookie"
stop_app

echo "==> Redis store"
start_app "redis://127.0.0.1:$redis_port"
redis_cookie=$(sign_in --count 1 --print cookie)
signed_in_check "$redis_cookie"
redis_home_rps=$(wrk_rps 10 -H "Cookie: $redis_cookie" "$app/")
echo "    anonymous flood ($anonymous cookieless GET /login)"
redis_keys_before=$(redis-cli -p "$redis_port" DBSIZE)
sign_in --anonymous --count "$anonymous" --concurrency 16 >/dev/null
redis_keys_after=$(redis-cli -p "$redis_port" DBSIZE)
signed_in_check "$redis_cookie"
stop_app

echo "==> proxy mode"
# The upstream: another entra-webapp, whose stylesheet is a small static answer.
upstream_port=$(free_port)
env -i PATH="$PATH" "${app_settings[@]}" REDIRECT_URI="http://127.0.0.1:$upstream_port/callback" PORT="$upstream_port" \
  "$bin/entra-webapp" serve >"$work/upstream.log" 2>&1 &
pids+=($!)
upstream="http://127.0.0.1:$upstream_port"
wait_for "$upstream/readyz"
# The reference: nginx in front of the same upstream, two workers (the machine's cores), keep-alive
# to the upstream as our proxy's pool does, no access log.
nginx_port=$(free_port)
cat >"$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$upstream_port; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
NGINX
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
wait_for "http://127.0.0.1:$nginx_port/static/style.css"
bare_port=$(free_port)
"$bin/examples/bare_proxy" "$bare_port" "$upstream" >"$work/bare_proxy.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$bare_port/static/style.css"
# /static/* is an anonymous path: without a cookie, the same request costs no session read.
start_app memory UPSTREAM_URL="$upstream" PROXY_ANONYMOUS_PATHS='/static/*'
proxy_cookie=$(sign_in --proxy --count 1 --print cookie)
curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $proxy_cookie" "$app/static/style.css" | grep -q 200 \
  || { echo "bench.sh: the proxied request is not signed in" >&2; exit 1; }
echo "    wrk: upstream direct, signed in through the proxy, anonymous through the proxy, through nginx, through the bare hyper proxy (3 rounds of ${seconds}s each)"
# On two shared cores one run swings widely: three rounds, each figure the median of its three.
direct_runs=() proxied_runs=() anonymous_runs=() nginx_runs=() bare_runs=()
for _ in 1 2 3; do
  direct_runs+=("$(wrk_rps 10 "$upstream/static/style.css")")
  proxied_runs+=("$(wrk_rps 10 -H "Cookie: $proxy_cookie" "$app/static/style.css")")
  anonymous_runs+=("$(wrk_rps 10 "$app/static/style.css")")
  nginx_runs+=("$(wrk_rps 10 "http://127.0.0.1:$nginx_port/static/style.css")")
  bare_runs+=("$(wrk_rps 10 "http://127.0.0.1:$bare_port/static/style.css")")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
direct_rps=$(median "${direct_runs[@]}")
proxied_rps=$(median "${proxied_runs[@]}")
anonymous_proxied_rps=$(median "${anonymous_runs[@]}")
nginx_rps=$(median "${nginx_runs[@]}")
bare_rps=$(median "${bare_runs[@]}")
echo "    direct ${direct_runs[*]}; signed in ${proxied_runs[*]}; anonymous ${anonymous_runs[*]}; nginx ${nginx_runs[*]}; bare ${bare_runs[*]}"
wrk -t2 -c50 -d"${seconds}s" --latency "$upstream/static/style.css" >"$work/direct-latency.txt"
wrk -t2 -c50 -d"${seconds}s" --latency -H "Cookie: $proxy_cookie" "$app/static/style.css" >"$work/proxy-latency.txt"
direct_p99=$(awk '$1 == "99%" { print $2 }' "$work/direct-latency.txt")
proxied_p99=$(awk '$1 == "99%" { print $2 }' "$work/proxy-latency.txt")
proxy_rss=$(rss_mb)
stop_app

python3 - "$healthz_rps" "$home_rps" "$redis_home_rps" "$login_rps" "$sign_in_rate" "$p50" "$p99" "$idle_rss" "$sessions_rss" "$sign_ins" \
  "$anonymous" "$flood_rss_before" "$flood_rss_after" "$redis_keys_before" "$redis_keys_after" \
  "$direct_rps" "$proxied_rps" "$direct_p99" "$proxied_p99" "$proxy_rss" "$anonymous_proxied_rps" "$nginx_rps" "$bare_rps" <<'PY'
import sys
(healthz, home, redis_home, login, sign_ins, p50, p99, idle, sessions, count,
 anonymous, flood_before, flood_after, keys_before, keys_after,
 direct, proxied, direct_p99, proxied_p99, proxy_rss, anonymous_proxied, nginx, bare) = sys.argv[1:]
flood_growth = float(flood_after) - float(flood_before)
keys_gained = int(keys_after) - int(keys_before)
def ms(v):
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for unit in ("us", "ms", "s"):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * units[unit]
    return float(v)
healthz = float(healthz)
rows = [
    ("GET /healthz (ceiling)", f"{healthz:,.0f} req/s", 1.0, "", True),
    ("signed-in GET /, memory store", f"{float(home):,.0f} req/s", float(home) / healthz, ">= 0.50x", float(home) / healthz >= 0.5),
    ("signed-in GET /, Redis store", f"{float(redis_home):,.0f} req/s", float(redis_home) / healthz, ">= 0.25x", float(redis_home) / healthz >= 0.25),
    ("GET /login", f"{float(login):,.0f} req/s", float(login) / healthz, ">= 0.30x", float(login) / healthz >= 0.3),
    ("complete sign-ins", f"{float(sign_ins):,.0f} /s", None, ">= 200/s", float(sign_ins) >= 200),
    ("signed-in GET / p50, 50 conns", f"{ms(p50):.2f} ms", None, "", True),
    ("signed-in GET / p99, 50 conns", f"{ms(p99):.2f} ms", None, "< 10 ms", ms(p99) < 10),
    ("RSS idle", f"{float(idle):.1f} MB", None, "< 20 MB", float(idle) < 20),
    (f"RSS after {int(count):,} sign-ins", f"{float(sessions):.1f} MB", None, "< 100 MB", float(sessions) < 100),
    (f"RSS growth, {int(anonymous):,} anon /login", f"{flood_growth:+.1f} MB", None, "< 5 MB", flood_growth < 5),
    (f"Redis keys gained, {int(anonymous):,} anon", f"{keys_gained:+d} ({keys_before}->{keys_after})", None, "0", keys_gained == 0),
    ("signed in before flood, still after", "yes", None, "yes", True),
    ("upstream GET, direct", f"{float(direct):,.0f} req/s", float(direct) / healthz, "", True),
    ("same GET, signed in, through proxy", f"{float(proxied):,.0f} req/s", float(proxied) / healthz, ">= 0.50x direct", float(proxied) / float(direct) >= 0.5),
    ("  signed in / direct (median runs)", f"{float(proxied) / float(direct):.2f}x", None, "", True),
    ("  anonymous / direct (no session)", f"{float(anonymous_proxied) / float(direct):.2f}x", None, "", True),
    ("  nginx, no sign-in / direct (ref.)", f"{float(nginx) / float(direct):.2f}x", None, "", True),
    ("  bare hyper proxy / direct (floor)", f"{float(bare) / float(direct):.2f}x", None, "", True),
    ("  signed in / bare hyper proxy", f"{float(proxied) / float(bare):.2f}x", None, "", True),
    ("p99 added by the proxy, 50 conns", f"{ms(proxied_p99) - ms(direct_p99):+.2f} ms", None, "", True),
    ("RSS of the proxy after its runs", f"{float(proxy_rss):.1f} MB", None, "< 50 MB", float(proxy_rss) < 50),
]
print()
print(f"| {'measure':<34} | {'figure':>14} | {'vs /healthz':>11} | {'target':>9} | {'':4} |")
print(f"|{'-'*36}|{'-'*16}|{'-'*13}|{'-'*11}|{'-'*6}|")
for name, figure, ratio, target, ok in rows:
    r = f"{ratio:.2f}x" if ratio is not None else ""
    print(f"| {name:<34} | {figure:>14} | {r:>11} | {target:>9} | {'ok' if ok else 'MISS':4} |")
missed = [name for name, *_, ok in rows if not ok]
print()
if missed:
    print("targets missed:", ", ".join(missed))
    sys.exit(1)
print("every target met")
PY
