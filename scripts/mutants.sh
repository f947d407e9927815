#!/usr/bin/env bash
# Mutation testing of the security core with cargo-mutants: every mutant of the files that decide
# who is signed in and where they go must be caught by a test, or be listed as an equivalent in
# docs/TESTING.md. Too slow for CI on 2 cores: run it by hand, one slice at a time.
#
#   ./scripts/mutants.sh            every slice, one after the other
#   ./scripts/mutants.sh auth       entra-auth's files, against entra-auth's own tests (fast)
#   ./scripts/mutants.sh sessions   the session stores (and when a proxied WebSocket's session has
#                                   ended), against the session-store contract and those tests
#   ./scripts/mutants.sh web        entra-auth's axum routes, extractors, session buckets, the
#                                   decoded-user cache, tokens for other resources and
#                                   front-channel logout, against the sign-in integration tests
#   ./scripts/mutants.sh client     the sign-in, refresh, sign-out and front-channel parts of
#                                   EntraClient, the app's own and on-behalf-of tokens, and
#                                   Graph's membership paging, likewise
#   ./scripts/mutants.sh proxy      proxy mode's identity headers, header stripping, anonymous
#                                   paths, forwarding (its dedicated upstream connections
#                                   included) and Easy Auth's routes, against the proxy
#                                   tests over TCP (nginx's forward auth included) and unit tests
#   ./scripts/mutants.sh front      what every request crosses first: header limits, request ids,
#                                   error pages (and the 503 of a store outage), the server's
#                                   connection cap and the hand-over of connections to the serving
#                                   threads, and who may read /metrics, likewise
#
# Each slice runs only the tests that can kill a mutant of its files (test package and filter).
# Results land in target/mutants/<slice>/mutants.out (missed.txt lists the survivors).
# MUTANTS_ITERATE=1 tests only what the slice's last run missed (after adding tests).
# MUTANTS_IN_PLACE=1 mutates this checkout itself (use a git worktree nobody edits meanwhile).
# MUTANTS_SINCE=<commit> tests only the mutants on lines of the slice's files changed since that
# commit (the code of the slice's last complete run), e.g. after a session's changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
target_dir=${CARGO_TARGET_DIR:-target}
slices=("$@")
((${#slices[@]})) || slices=(auth sessions web client proxy front)

run() {
  local slice=$1
  shift
  echo "==> mutants: $slice"
  mkdir -p "$target_dir/mutants/$slice"
  # cargo-mutants exits 2 when mutants were missed: report and go on to the next slice.
  local options=()
  [[ ${MUTANTS_ITERATE:-0} == 1 ]] && options+=(--iterate)
  # In a dedicated checkout (a git worktree nobody edits), mutating in place reuses its target/
  # instead of building a fresh copy of the tree first.
  [[ ${MUTANTS_IN_PLACE:-0} == 1 ]] && options+=(--in-place)
  if [[ -n ${MUTANTS_SINCE:-} ]]; then
    local args=("$@") files=() i
    for ((i = 0; i < ${#args[@]} - 1; i++)); do
      [[ ${args[i]} == --file ]] && files+=("${args[i + 1]}")
    done
    git diff "$MUTANTS_SINCE" -- "${files[@]}" >"$target_dir/mutants/$slice/since.diff"
    if [[ ! -s $target_dir/mutants/$slice/since.diff ]]; then
      echo "    nothing changed in the slice's files since $MUTANTS_SINCE"
      return
    fi
    options+=(--in-diff "$target_dir/mutants/$slice/since.diff")
  fi
  cargo mutants --no-shuffle --test-tool nextest --output "$target_dir/mutants/$slice" "${options[@]}" "$@" || true
  echo "    missed: $(wc -l <"$target_dir/mutants/$slice/mutants.out/missed.txt") (see $target_dir/mutants/$slice/mutants.out/missed.txt)"
}

for slice in "${slices[@]}"; do
  case $slice in
    auth)
      run auth --package entra-auth --test-package entra-auth \
        --file crates/entra-auth/src/id_token.rs --file crates/entra-auth/src/jwks.rs \
        --file crates/entra-auth/src/authority.rs --file crates/entra-auth/src/return_to.rs \
        --file crates/entra-auth/src/secret.rs --file crates/entra-auth/src/keys.rs \
        --file crates/entra-auth/src/axum/pending.rs --file crates/entra-auth/src/memberships.rs \
        --file crates/entra-auth/src/sign_in_options.rs --file crates/entra-auth/src/jwt.rs \
        --file crates/entra-auth/src/bearer.rs --file crates/entra-auth/src/app_tokens.rs \
        --file crates/entra-auth/src/on_behalf_of.rs --file crates/entra-auth/src/refresh.rs \
        --file crates/entra-auth/src/axum/after_sign_out.rs --file crates/entra-auth/src/axum/own_cookies.rs
      ;;
    sessions)
      run sessions --package entra-webapp --test-package entra-webapp --cargo-arg=--test=api \
        --file crates/entra-webapp/src/sessions/mod.rs --file crates/entra-webapp/src/sessions/memory_store.rs \
        --file crates/entra-webapp/src/sessions/redis_store.rs --file crates/entra-webapp/src/sessions/record.rs \
        -- -E 'binary_id(entra-webapp::api) & (test(/^(session_store|lifecycle|front_channel)::/) | test(/^proxy::a_websocket_closes/) | test(/^scale_out::(a_redis_outage|a_websocket)/))'
      ;;
    web)
      # The files are entra-auth's; the tests that can kill their mutants are the app's, the
      # library's examples and its axum unit tests: no --package (it would also restrict the tests
      # to entra-auth's).
      # Only the test binaries the filter runs are built for each mutant (--test), not all of them.
      # cargo-mutants' baseline would build entra-auth's alone, which has no `api` test: it is
      # skipped (./scripts/test.sh is the baseline), so the timeout is set rather than measured.
      run web --test-workspace=true --baseline=skip --timeout 180 --cargo-arg=--test=api --cargo-arg=--test=examples \
        --cargo-arg=--test=routes --cargo-arg=--lib \
        --file crates/entra-auth/src/axum/session.rs --file crates/entra-auth/src/axum/routes.rs \
        --file crates/entra-auth/src/axum/route_config.rs --file crates/entra-auth/src/axum/sign_in_routes.rs \
        --file crates/entra-auth/src/axum/sign_out_routes.rs \
        --file crates/entra-auth/src/axum/extract.rs --file crates/entra-auth/src/axum/front_channel.rs \
        --file crates/entra-auth/src/axum/authorization.rs --file crates/entra-auth/src/axum/decoded.rs \
        --file crates/entra-auth/src/axum/resource_tokens.rs \
        -- -E '(binary_id(entra-webapp::api) & test(/^(sign_in|failures|lifecycle|front_channel|hardening|refresh|authorization|downstream|proxy|api_callers|passed_tokens)::/)) | binary_id(entra-auth::examples) | binary_id(entra-auth::routes) | (binary_id(entra-auth) & test(/^axum::/))'
      ;;
    client)
      run client --test-workspace=true --baseline=skip --timeout 180 --cargo-arg=--test=api --cargo-arg=--test=examples \
        --cargo-arg=--test=routes --cargo-arg=--test=graph_paging --cargo-arg=--test=app_tokens \
        --cargo-arg=--test=on_behalf_of --cargo-arg=--lib --file crates/entra-auth/src/client.rs \
        --file crates/entra-auth/src/client/sign_in.rs --file crates/entra-auth/src/client/token_requests.rs \
        --file crates/entra-auth/src/graph.rs \
        --re 'EntraClient::(begin_sign_in|finish_sign_in|memberships|refresh|fresh_tokens|tokens_for_scopes|front_channel_issuer|end_session_url|app_token|on_behalf_of|user_group_ids)|authorization_url|graph_resource|GraphClient::(member_group_ids|user_group_ids|group_ids_from|is_on_endpoint)' \
        -- -E '(binary_id(entra-webapp::api) & test(/^(sign_in|failures|front_channel|credentials|refresh|authorization|proxy|api_callers)::/)) | binary_id(entra-auth::examples) | binary_id(entra-auth::routes) | binary_id(entra-auth::graph_paging) | binary_id(entra-auth::app_tokens) | binary_id(entra-auth::on_behalf_of) | (binary_id(entra-auth) & test(/^client::/))'
      ;;
    proxy)
      run proxy --package entra-webapp --test-package entra-webapp --timeout 180 --cargo-arg=--lib --cargo-arg=--test=api --cargo-arg=--test=logs \
        --file crates/entra-webapp/src/proxy/identity.rs --file crates/entra-webapp/src/proxy/forward.rs \
        --file crates/entra-webapp/src/proxy/handler.rs --file crates/entra-webapp/src/proxy/easy_auth.rs \
        --file crates/entra-webapp/src/proxy/dedicated.rs --file crates/entra-webapp/src/proxy/dispatch.rs \
        --file crates/entra-webapp/src/proxy/cross_origin.rs --file crates/entra-webapp/src/proxy/request_body.rs \
        --file crates/entra-webapp/src/proxy/bearer.rs --file crates/entra-webapp/src/proxy/shared_caches.rs \
        --file crates/entra-webapp/src/proxy/redirects.rs --file crates/entra-webapp/src/config/proxy.rs \
        --file crates/entra-webapp/src/proxy/passed_tokens.rs --file crates/entra-webapp/src/proxy/caller_groups.rs \
        --file crates/entra-webapp/src/proxy/upstream_tls.rs --file crates/entra-webapp/src/config/upstream_tls.rs \
        --file crates/entra-webapp/src/proxy/client_certificate.rs --file crates/entra-webapp/src/proxy/multiplexed.rs \
        --file crates/entra-webapp/src/proxy/websocket_over_http2.rs --file crates/entra-webapp/src/proxy/renewed.rs \
        --file crates/entra-webapp/src/proxy/trusted_cas.rs --file crates/entra-webapp/src/config/path_rules.rs \
        -- -E 'binary_id(entra-webapp::logs) | (binary_id(entra-webapp::api) & test(/^(proxy|proxy_connections|proxy_tls|proxy_http2|python_upstream|http2|nginx_forward_auth|many_groups|shared_cache|api_callers|passed_tokens)::/)) | (binary_id(entra-webapp) & test(/^(proxy::|config::proxy::|config::path_rules::|config::tests::(proxy_|an_upstream_|the_principals_|bearer_callers_|the_scopes_of_the_passed_))/))'
      ;;
    front)
      run front --package entra-webapp --test-package entra-webapp --timeout 180 --cargo-arg=--lib --cargo-arg=--test=api \
        --file crates/entra-webapp/src/guard.rs --file crates/entra-webapp/src/error.rs \
        --file crates/entra-webapp/src/request_id.rs --file crates/entra-webapp/src/startup.rs \
        --file crates/entra-webapp/src/workers.rs --file crates/entra-webapp/src/server.rs \
        --file crates/entra-webapp/src/metrics.rs --file crates/entra-webapp/src/config/metrics.rs \
        --file crates/entra-webapp/src/bearer_header.rs \
        --re 'src/(guard|error|request_id|workers|server|metrics|config/metrics|bearer_header)\.rs|limit_headers' \
        -- -E '(binary_id(entra-webapp::api) & (test(/^(hardening|server_limits|failures|platform|http2|scale_out|refresh|downstream)::/) | test(/^proxy::(websockets_count|another_origins|metrics_)/))) | (binary_id(entra-webapp) & test(/^(guard|error|request_id|workers|bearer_header)::|^config::tests::a_metrics_token/))'
      ;;
    *)
      echo "unknown slice $slice (auth, sessions, web, client, proxy, front)" >&2
      exit 2
      ;;
  esac
done
