#!/usr/bin/env bash
# deploy.sh against a fake az (first on PATH): the expected commands, flags and order, idempotent
# re-runs, every credential mode, a failing read that must stop the script, and a dry run that
# lists exactly what a real run executes. With AZ_REAL=<path to a real az>, every distinct az
# command line of those runs is also replayed through the real Azure CLI's parser (logged out,
# behind a dead proxy: nothing reaches the network); parsed means it stops at "az login".
# Prints 'N passed, N failed'.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deploy="$here/../deploy.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ROLE_PROPAGATION_SECONDS=0

passed=0
failed=0
check() {
  local description=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $description" >&2
  fi
}
contains() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }
# The line number of the first line containing $2 (0 when absent).
line_of() { grep -nF -- "$2" "$1" | head -n 1 | cut -d: -f1 || true; }
before() {
  local a b
  a=$(line_of "$1" "$2")
  b=$(line_of "$1" "$3")
  [[ -n $a && -n $b && $a -lt $b ]]
}

# A fresh fake Azure: nothing exists; the registration has a URI from local development.
fresh_state() {
  export FAKE_AZ_STATE="$work/state-$1"
  mkdir -p "$FAKE_AZ_STATE"
  echo "http://localhost:5001/callback" >"$FAKE_AZ_STATE/redirect_uris"
}
run() { PATH="$here/fake-az:$PATH" "$deploy" "$@"; }
# Every az line of all runs, quoted, for the real parser.
all_calls=$work/all-calls.log
: >"$all_calls"
keep_calls() { cat "$FAKE_AZ_STATE/calls.quoted.log" >>"$all_calls"; }

site=https://app-test-h4sh.westeurope-01.azurewebsites.net
principal=11111111-2222-3333-4444-555555555555
identity_client=66666666-7777-8888-9999-000000000000
common=(--resource-group rg-test --location westeurope --registry regtest --app app-test --tag v1
  --tenant-id 7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90 --client-id 3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41)

# 1. From nothing, no secret given: the managed identity is the credential.
fresh_state main
run "${common[@]}" >"$work/run1.out"
keep_calls
cp "$FAKE_AZ_STATE/calls.log" "$work/run1.log"
log=$work/run1.log
check "resource group" contains "$log" "az group create --name rg-test --location westeurope"
check "registry created" contains "$log" "az acr create --name regtest --resource-group rg-test --sku Basic --admin-enabled false"
check "image built in the cloud" contains "$log" "az acr build --registry regtest --image entra-webapp:v1 --platform linux/amd64"
check "Linux plan" contains "$log" "az appservice plan create --name app-test-plan --resource-group rg-test --is-linux --sku B1"
check "user-assigned identity created" contains "$log" "az identity create --name app-test-identity --resource-group rg-test"
role_create=$(grep -F "az role assignment create" "$log" || true)
check "AcrPull names the principal and the registry" grep -qE -- "--assignee-object-id $principal .*--role AcrPull --scope /subscriptions/.*/registries/regtest" <<<"$role_create"
check "role assignments are listed by object id (no Graph lookup)" lacks "$log" "list --assignee "
check "identity before the site" before "$log" "az identity create" "az webapp create"
check "AcrPull granted before the site" before "$log" "az role assignment create" "az webapp create"
check "the grant is seen before the site" before "$log" "--role AcrPull --query length(@)" "az webapp create"
check "the site pulls with the identity from its creation" contains "$log" "--container-image-name regtest.azurecr.io/entra-webapp:v1 --assign-identity /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-test-identity --acr-use-identity --acr-identity"
check "no registry credentials written" lacks "$log" "config container set"
check "federated credential: issuer of the tenant" contains "$log" '"issuer": "https://login.microsoftonline.com/7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90/v2.0"'
check "federated credential: the identity as subject, token exchange audience" contains "$log" "\"subject\": \"$principal\", \"audiences\": [\"api://AzureADTokenExchange\"]"
check "MANAGED_IDENTITY_CLIENT_ID" contains "$log" "\"MANAGED_IDENTITY_CLIENT_ID\": \"$identity_client\""
check "no client secret anywhere" lacks "$FAKE_AZ_STATE/settings.json" "CLIENT_SECRET"
check "other credential settings removed" contains "$log" "appsettings delete --name app-test --resource-group rg-test --setting-names CLIENT_SECRET CLIENT_CERTIFICATE_THUMBPRINT"
check "WEBSITES_PORT" contains "$log" '"WEBSITES_PORT": "8080"'
check "REDIRECT_URI from defaultHostName" contains "$log" "\"REDIRECT_URI\": \"$site/callback\""
check "back to the callback after sign-out" contains "$log" "\"POST_LOGOUT_REDIRECT_URI\": \"$site/callback\""
check "forwarded headers trusted" contains "$log" '"TRUST_FORWARDED_HEADERS": "true"'
check "HTTPS only" contains "$log" "--https-only true"
check "health check" contains "$log" '"healthCheckPath": "/healthz"'
check "Always On" contains "$log" "--always-on true"
check "redirect URIs: union, old one kept" contains "$log" "az ad app update --id 3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41 --web-redirect-uris http://localhost:5001/callback $site/callback"
check "front-channel logout URL" contains "$log" "\"logoutUrl\":\"$site/logout\""
check "prints the site" contains "$work/run1.out" "Deployed: $site"
secret1=$(sed -n 's/.*"SESSION_SECRET": "\(.*\)".*/\1/p' "$FAKE_AZ_STATE/settings.json")
check "a session secret was generated" test "${#secret1}" -ge 32

# The dry run from nothing lists exactly the az commands the real run executed, in order.
mkdir -p "$work/tripwire"
printf '#!/bin/sh\ntouch %s/az-was-called\nexit 99\n' "$work" >"$work/tripwire/az"
chmod +x "$work/tripwire/az"
PATH="$work/tripwire:$PATH" "$deploy" "${common[@]}" --dry-run >"$work/dry.out"
# A command's shape: its subcommand and flags, without the values Azure answered (ids, host name).
shape() {
  grep '^az ' "$1" | awk '{ out = ""; flags = 0
    for (i = 1; i <= NF; i++) { if ($i ~ /^--/) flags = 1; if (!flags || $i ~ /^--/) out = out " " $i }
    print out }'
}
check "dry run calls no az" test ! -e "$work/az-was-called"
check "dry run lists every az command the real run executes, in order, with the same flags" \
  diff <(shape "$work/dry.out") <(shape "$FAKE_AZ_STATE/calls.quoted.log")
check "dry run lists as many commands as the real run" test "$(grep -c '^az ' "$work/dry.out")" -eq "$(wc -l <"$FAKE_AZ_STATE/calls.quoted.log")"
check "captured values stay clean in a dry run" contains "$work/dry.out" '"REDIRECT_URI": "https://app-test.azurewebsites.net/callback"'
check "dry run masks secrets" contains "$work/dry.out" '"SESSION_SECRET": "***"'

# 2. Everything exists; a client secret from Key Vault instead.
: >"$FAKE_AZ_STATE/calls.log"
: >"$FAKE_AZ_STATE/calls.quoted.log"
run "${common[@]}" --client-secret-ref https://kv-test.vault.azure.net/secrets/client-secret --key-vault kv-test >"$work/run2.out"
keep_calls
log=$FAKE_AZ_STATE/calls.log
check "registry not recreated" lacks "$log" "az acr create"
check "plan not recreated" lacks "$log" "az appservice plan create"
check "identity not recreated" lacks "$log" "az identity create"
check "web app not recreated" lacks "$log" "az webapp create"
check "the existing site gets the identity" contains "$log" "az webapp identity assign --name app-test --resource-group rg-test --identities"
check "the existing site pulls the new image with the identity" contains "$log" "--linux-fx-version DOCKER|regtest.azurecr.io/entra-webapp:v1"
check "AcrPull not assigned twice" test "$(grep -c " AcrPull$" "$FAKE_AZ_STATE/roles")" -eq 1
check "Key Vault Secrets User for the identity" grep -qE "^$principal /subscriptions/.*/vaults/kv-test Key Vault Secrets User$" "$FAKE_AZ_STATE/roles"
check "Key Vault references resolve with the identity" contains "$log" "--set keyVaultReferenceIdentity=/subscriptions/"
check "Key Vault reference" contains "$log" '"CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv-test.vault.azure.net/secrets/client-secret)"'
check "the managed identity setting is dropped" contains "$log" "--setting-names CLIENT_CERTIFICATE_THUMBPRINT MANAGED_IDENTITY_CLIENT_ID"
check "redirect URIs not rewritten" lacks "$log" "az ad app update"
secret2=$(sed -n 's/.*"SESSION_SECRET": "\(.*\)".*/\1/p' "$FAKE_AZ_STATE/settings.json")
check "session secret kept across runs" test "$secret1" == "$secret2"
check "redirect URIs: nothing lost, no duplicates" test "$(sort "$FAKE_AZ_STATE/redirect_uris" | uniq | wc -l)" -eq 2 -a "$(wc -l <"$FAKE_AZ_STATE/redirect_uris")" -eq 2

# 3. A certificate App Service loads; Redis with its key apart from the URL; a local build.
: >"$FAKE_AZ_STATE/calls.log"
: >"$FAKE_AZ_STATE/calls.quoted.log"
run "${common[@]}" --credential certificate --certificate-thumbprint 0123456789ABCDEF0123456789ABCDEF01234567 \
  --session-store rediss://cache-test.redis.cache.windows.net:6380 --redis-password 'k3y/with+slash==' >"$work/run3.out"
keep_calls
log=$FAKE_AZ_STATE/calls.log
check "certificate thumbprint setting" contains "$log" '"CLIENT_CERTIFICATE_THUMBPRINT": "0123456789ABCDEF0123456789ABCDEF01234567"'
check "App Service loads the certificate" contains "$log" '"WEBSITE_LOAD_CERTIFICATES": "0123456789ABCDEF0123456789ABCDEF01234567"'
check "Redis URL without the key" contains "$log" '"SESSION_STORE": "rediss://cache-test.redis.cache.windows.net:6380"'
check "Redis key as REDIS_PASSWORD" contains "$log" '"REDIS_PASSWORD": "k3y/with+slash=="'
set +e
run "${common[@]}" --session-store 'rediss://:k3y/x@cache-test.redis.cache.windows.net:6380' >"$work/bad-redis.out" 2>&1
status=$?
set -e
check "a Redis URL with the key is refused" test "$status" -eq 2
check "and says how to give it" contains "$work/bad-redis.out" "--redis-password"
: >"$FAKE_AZ_STATE/calls.quoted.log"
run "${common[@]}" --local-build --dry-run >/dev/null # the docker push itself is not an az command
PATH="$here/fake-az:$PATH" run "${common[@]}" --client-secret 'fake"secret\value' >/dev/null
keep_calls
check "secret JSON-escaped" contains "$FAKE_AZ_STATE/calls.log" '"CLIENT_SECRET": "fake\"secret\\value"'

# 4. The registration's redirect URIs cannot be read: stop before rewriting them.
fresh_state unreadable
touch "$FAKE_AZ_STATE/fail_ad_app_show"
set +e
run "${common[@]}" >"$work/run4.out" 2>&1
status=$?
set -e
check "a failed read of the redirect URIs stops the script" test "$status" -ne 0
check "the registration is not rewritten" lacks "$FAKE_AZ_STATE/calls.log" "az ad app update"
check "its URIs are intact" test "$(cat "$FAKE_AZ_STATE/redirect_uris")" == "http://localhost:5001/callback"

# Bad input: a clear message and exit code 2.
set +e
run --app only >"$work/bad.out" 2>&1
status=$?
run "${common[@]}" --credential certificate >"$work/bad-cert.out" 2>&1
status_cert=$?
set -e
check "missing flags exit 2" test "$status" -eq 2
check "missing flags are named" contains "$work/bad.out" "missing --resource-group --location --registry --tenant-id --client-id"
check "certificate mode needs a thumbprint" test "$status_cert" -eq 2

# The fake itself refuses what the real az would answer differently.
set +e
"$here/fake-az/az" webapp config appsettings list --name app-test >/dev/null 2>&1
status_list=$?
"$here/fake-az/az" role assignment delete --ids x >/dev/null 2>&1
status_unknown=$?
set -e
check "the fake refuses an unfiltered appsettings list" test "$status_list" -eq 64
check "the fake refuses unknown subcommands" test "$status_unknown" -eq 64

# Every distinct az command line through the real Azure CLI's parser.
if [[ -n ${AZ_REAL:-} ]]; then
  echo '{}' >"$work/params.json"
  sed -E "s#@/[^ ]*#@$work/params.json#g" "$all_calls" | sort -u >"$work/distinct.log"
  export AZURE_CONFIG_DIR="$work/azure-config" AZURE_CORE_COLLECT_TELEMETRY=false \
    AZURE_EXTENSION_USE_DYNAMIC_INSTALL=no HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=
  replayed=0
  while IFS= read -r line; do
    eval "set -- ${line#az }"
    answer=$("$AZ_REAL" "$@" 2>&1 || true)
    replayed=$((replayed + 1))
    check "the real az parses: $line" grep -q "Please run 'az login'" <<<"$answer"
    grep -q "Please run 'az login'" <<<"$answer" || echo "    az answered: $answer" >&2
  done <"$work/distinct.log"
  echo "deploy.sh: $replayed distinct az command lines parsed by $("$AZ_REAL" version --query '"azure-cli"' --output tsv 2>/dev/null || echo az)"
fi

echo "deploy.sh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
