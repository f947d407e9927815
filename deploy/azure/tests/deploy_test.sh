#!/usr/bin/env bash
# deploy.sh against a fake az (first on PATH): the expected commands and flags, and a second run
# that changes nothing it should not. Prints 'N passed, N failed'.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
deploy="$here/../deploy.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export FAKE_AZ_STATE="$work/state"
mkdir -p "$FAKE_AZ_STATE"
# The registration already has a URI from local development: it must survive.
echo "http://localhost:5001/callback" >"$FAKE_AZ_STATE/redirect_uris"

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

site=https://app-test-h4sh.westeurope-01.azurewebsites.net
common=(--resource-group rg-test --location westeurope --registry regtest --app app-test --tag v1
  --tenant-id 7e6b1c4a-2f0d-4a8e-9c3b-5d1e8f2a6b90 --client-id 3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41)

# First run: from nothing.
PATH="$here/fake-az:$PATH" "$deploy" "${common[@]}" --client-secret 'fake"secret\value' >"$work/run1.out"
cp "$FAKE_AZ_STATE/calls.log" "$work/run1.log"
log=$work/run1.log
check "resource group" contains "$log" "az group create --name rg-test --location westeurope"
check "registry created" contains "$log" "az acr create --name regtest --resource-group rg-test --sku Basic --admin-enabled false"
check "image built in the cloud" contains "$log" "az acr build --registry regtest --image entra-webapp:v1 --platform linux/amd64"
check "Linux plan" contains "$log" "az appservice plan create --name app-test-plan --resource-group rg-test --is-linux --sku B1"
check "web app from the image" contains "$log" "az webapp create --name app-test --resource-group rg-test --plan app-test-plan --container-image-name regtest.azurecr.io/entra-webapp:v1"
check "managed identity" contains "$log" "az webapp identity assign --name app-test"
role_create=$(grep -F "az role assignment create" "$log" || true)
check "AcrPull for the identity, on the registry" test -n "$role_create"
check "AcrPull names the principal and the registry" grep -qE -- "--assignee-object-id 11111111-2222-3333-4444-555555555555 .*--role AcrPull --scope /subscriptions/.*/registries/regtest" <<<"$role_create"
check "pull with managed identity" contains "$log" '"acrUseManagedIdentityCreds": true'
check "WEBSITES_PORT" contains "$log" '"WEBSITES_PORT": "8080"'
check "REDIRECT_URI from defaultHostName" contains "$log" "\"REDIRECT_URI\": \"$site/callback\""
check "secret JSON-escaped" contains "$log" '"CLIENT_SECRET": "fake\"secret\\value"'
check "forwarded headers trusted" contains "$log" '"TRUST_FORWARDED_HEADERS": "true"'
check "HTTPS only" contains "$log" "--https-only true"
check "health check" contains "$log" '"healthCheckPath": "/healthz"'
check "Always On" contains "$log" "--always-on true"
check "redirect URIs: union, old one kept" contains "$log" "az ad app update --id 3f1c9a2e-8b4d-4c6f-a1e7-0d5b2c8e9f41 --web-redirect-uris http://localhost:5001/callback $site/callback $site/"
check "front-channel logout URL" contains "$log" "\"logoutUrl\":\"$site/logout\""
check "prints the site" contains "$work/run1.out" "Deployed: $site"
secret1=$(sed -n 's/.*"SESSION_SECRET": "\(.*\)".*/\1/p' "$FAKE_AZ_STATE/settings.json")
check "a session secret was generated" test "${#secret1}" -ge 32

# Second run: everything exists; a Key Vault reference instead of the secret.
: >"$FAKE_AZ_STATE/calls.log"
PATH="$here/fake-az:$PATH" "$deploy" "${common[@]}" \
  --client-secret-ref https://kv-test.vault.azure.net/secrets/client-secret >"$work/run2.out"
log=$FAKE_AZ_STATE/calls.log
check "registry not recreated" lacks "$log" "az acr create"
check "plan not recreated" lacks "$log" "az appservice plan create"
check "web app not recreated" lacks "$log" "az webapp create"
check "role not assigned twice" lacks "$log" "az role assignment create"
check "one assignment in all" test "$(wc -l <"$FAKE_AZ_STATE/roles")" -eq 1
check "redirect URIs not rewritten" lacks "$log" "az ad app update"
secret2=$(sed -n 's/.*"SESSION_SECRET": "\(.*\)".*/\1/p' "$FAKE_AZ_STATE/settings.json")
check "session secret kept across runs" test "$secret1" == "$secret2"
check "Key Vault reference" contains "$log" '"CLIENT_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv-test.vault.azure.net/secrets/client-secret)"'
check "redirect URIs: nothing lost, no duplicates" test "$(sort "$FAKE_AZ_STATE/redirect_uris" | uniq | wc -l)" -eq 3 -a "$(wc -l <"$FAKE_AZ_STATE/redirect_uris")" -eq 3
check "old redirect URI still there" contains "$FAKE_AZ_STATE/redirect_uris" "http://localhost:5001/callback"

# Dry run: no az (a tripwire az that records being called), no secret.
mkdir -p "$work/tripwire"
printf '#!/bin/sh\ntouch %s/az-was-called\nexit 99\n' "$work" >"$work/tripwire/az"
chmod +x "$work/tripwire/az"
PATH="$work/tripwire:$PATH" "$deploy" "${common[@]}" --dry-run >"$work/dry.out"
check "dry run calls no az" test ! -e "$work/az-was-called"
check "dry run prints the commands" contains "$work/dry.out" "az webapp create --name app-test"
check "dry run masks secrets" contains "$work/dry.out" '"SESSION_SECRET": "***"'

# Bad input: a clear message and exit code 2.
set +e
PATH="$here/fake-az:$PATH" "$deploy" --app only >"$work/bad.out" 2>&1
status=$?
set -e
check "missing flags exit 2" test "$status" -eq 2
check "missing flags are named" contains "$work/bad.out" "missing --resource-group --location --registry --tenant-id --client-id"

# The fake itself refuses what the real az would answer differently: a deploy.sh that asked for
# every app setting (and so every secret), or ran an unknown subcommand, would fail here.
set +e
FAKE_AZ_STATE=$FAKE_AZ_STATE "$here/fake-az/az" webapp config appsettings list --name app-test >/dev/null 2>&1
status_list=$?
FAKE_AZ_STATE=$FAKE_AZ_STATE "$here/fake-az/az" role assignment delete --ids x >/dev/null 2>&1
status_unknown=$?
set -e
check "the fake refuses an unfiltered appsettings list" test "$status_list" -eq 64
check "the fake refuses unknown subcommands" test "$status_unknown" -eq 64

echo "deploy.sh: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
