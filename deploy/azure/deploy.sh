#!/usr/bin/env bash
# Deploys entra-webapp to Azure App Service from nothing, or updates it: idempotent, run it again
# after every change. In order: resource group, container registry, image, Linux App Service plan,
# a user-assigned managed identity with AcrPull on the registry (and Key Vault Secrets User on a
# vault, when settings reference one), a wait until those grants are effective, and only then the
# web app, already pulling with that identity; then its settings and, for the default
# managed-identity credential, a federated credential on the app registration: no secret exists
# anywhere. Finally the site's redirect URI joins the registration's (keeping the ones it has) and
# its front-channel logout URL is set.
#
# Every flag can also come from the environment variable named in --help.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: deploy/azure/deploy.sh [options]

  --resource-group NAME     resource group (env RESOURCE_GROUP)               required
  --location NAME           Azure region, e.g. westeurope (env LOCATION)      required
  --registry NAME           container registry name (env REGISTRY)            required
  --app NAME                web app name (env APP_NAME)                       required
  --tag TAG                 image tag (env IMAGE_TAG)                         default: git short hash, else "latest"
  --plan NAME               App Service plan (env PLAN)                       default: <app>-plan
  --sku SKU                 plan size (env SKU)                               default: B1
  --tenant-id ID            Directory (tenant) ID (env TENANT_ID)             required
  --client-id ID            Application (client) ID (env CLIENT_ID)           required
  --credential MODE         how the app proves itself to Entra (env CREDENTIAL):
                              managed-identity  the site's identity as a federated credential of
                                                the app registration: no secret (the default
                                                unless a secret is given)
                              certificate       a certificate loaded by App Service (--certificate-thumbprint)
                              secret            --client-secret or --client-secret-ref
  --certificate-thumbprint T  certificate already uploaded to the web app and to the app
                            registration (env CERTIFICATE_THUMBPRINT)
  --client-secret VALUE     client secret value (env CLIENT_SECRET)
  --client-secret-ref URI   Key Vault secret URI instead (env CLIENT_SECRET_REF); stored as a
                            @Microsoft.KeyVault(SecretUri=...) reference
  --session-store URL       redis:// or rediss:// URL, without password, for several instances
                            (env SESSION_STORE)
  --redis-password VALUE    its password / access key (env REDIS_PASSWORD)
  --redis-password-ref URI  Key Vault secret URI instead (env REDIS_PASSWORD_REF)
  --session-secret-ref URI  SESSION_SECRET from Key Vault (env SESSION_SECRET_REF); else one is
                            generated once and kept across runs
  --key-vault NAME          the vault the *-ref secrets live in: the identity gets Key Vault
                            Secrets User on it (env KEY_VAULT)
  --local-build             build with local Docker (buildx, linux/amd64) and push, instead of
                            az acr build (env LOCAL_BUILD=true)
  --dry-run                 print every command a real run would execute, in order, instead of
                            running it; needs neither az nor a secret (env DRY_RUN=true)
  -h, --help                this help

Creating role assignments needs Owner, User Access Administrator or Role Based Access Control
Administrator on the resource group; the federated credential needs to own the app registration
(or Application Administrator). See docs/DEPLOY.md.
USAGE
}

resource_group=${RESOURCE_GROUP:-}
location=${LOCATION:-}
registry=${REGISTRY:-}
app=${APP_NAME:-}
tag=${IMAGE_TAG:-}
plan=${PLAN:-}
sku=${SKU:-B1}
tenant_id=${TENANT_ID:-}
client_id=${CLIENT_ID:-}
credential=${CREDENTIAL:-}
certificate_thumbprint=${CERTIFICATE_THUMBPRINT:-}
client_secret=${CLIENT_SECRET:-}
client_secret_ref=${CLIENT_SECRET_REF:-}
session_store=${SESSION_STORE:-}
redis_password=${REDIS_PASSWORD:-}
redis_password_ref=${REDIS_PASSWORD_REF:-}
session_secret_ref=${SESSION_SECRET_REF:-}
key_vault=${KEY_VAULT:-}
local_build=${LOCAL_BUILD:-false}
dry_run=${DRY_RUN:-false}
# How long to let new role assignments propagate before anything relies on them.
propagation_wait=${ROLE_PROPAGATION_SECONDS:-60}

while (($#)); do
  case $1 in
    --resource-group) resource_group=$2; shift 2 ;;
    --location) location=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --app) app=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --plan) plan=$2; shift 2 ;;
    --sku) sku=$2; shift 2 ;;
    --tenant-id) tenant_id=$2; shift 2 ;;
    --client-id) client_id=$2; shift 2 ;;
    --credential) credential=$2; shift 2 ;;
    --certificate-thumbprint) certificate_thumbprint=$2; shift 2 ;;
    --client-secret) client_secret=$2; shift 2 ;;
    --client-secret-ref) client_secret_ref=$2; shift 2 ;;
    --session-store) session_store=$2; shift 2 ;;
    --redis-password) redis_password=$2; shift 2 ;;
    --redis-password-ref) redis_password_ref=$2; shift 2 ;;
    --session-secret-ref) session_secret_ref=$2; shift 2 ;;
    --key-vault) key_vault=$2; shift 2 ;;
    --local-build) local_build=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

fail() {
  echo "deploy.sh: $*" >&2
  exit 2
}

missing=()
[[ -n $resource_group ]] || missing+=(--resource-group)
[[ -n $location ]] || missing+=(--location)
[[ -n $registry ]] || missing+=(--registry)
[[ -n $app ]] || missing+=(--app)
[[ -n $tenant_id ]] || missing+=(--tenant-id)
[[ -n $client_id ]] || missing+=(--client-id)
((${#missing[@]} == 0)) || fail "missing ${missing[*]} (see --help)"
[[ -z $client_secret || -z $client_secret_ref ]] || fail "give --client-secret or --client-secret-ref, not both"
[[ -z $redis_password || -z $redis_password_ref ]] || fail "give --redis-password or --redis-password-ref, not both"
if [[ -z $credential ]]; then
  if [[ -n $client_secret || -n $client_secret_ref ]]; then credential=secret; else credential=managed-identity; fi
fi
case $credential in
  managed-identity | certificate | secret) ;;
  *) fail "--credential must be managed-identity, certificate or secret, not '$credential'" ;;
esac
[[ $credential != certificate || -n $certificate_thumbprint ]] || fail "--credential certificate needs --certificate-thumbprint"
[[ $credential == secret || (-z $client_secret && -z $client_secret_ref) ]] ||
  fail "--credential $credential takes no client secret"
if [[ $session_store == *://*@* ]]; then
  fail "--session-store must not hold the password (Azure Redis keys contain '/' and break the URL): give it with --redis-password or --redis-password-ref"
fi
if [[ -n $client_secret_ref || -n $redis_password_ref || -n $session_secret_ref ]] && [[ -z $key_vault ]]; then
  fail "Key Vault references need --key-vault (the identity must be granted access to read them)"
fi
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z $tag ]]; then
  tag=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo latest)
fi
plan=${plan:-$app-plan}
identity=$app-identity
image="$registry.azurecr.io/entra-webapp:$tag"
port=8080
federated_credential_name=entra-webapp-$app

# A dry run lists commands on fd 3 (the terminal), so a command whose answer is captured with
# $(...) is listed too and its listing never leaks into the captured value.
exec 3>&1

# az, or in a dry run its command line.
az_run() {
  if [[ $dry_run == true ]]; then
    {
      printf 'az'
      printf ' %q' "$@"
      printf '\n'
    } >&3
    return 0
  fi
  az "$@"
}

# az whose answer we need; a dry run lists it and answers with a placeholder.
az_read() {
  local placeholder=$1
  shift
  if [[ $dry_run == true ]]; then
    az_run "$@"
    printf '%s\n' "$placeholder"
    return 0
  fi
  az "$@"
}

# Whether a resource exists (az ... show succeeds); a dry run assumes it does not.
az_exists() {
  if [[ $dry_run == true ]]; then
    az_run "$@" --output none
    return 1
  fi
  az "$@" --output none 2>/dev/null
}

# Grants `role` on `scope` to the identity unless it has it; records whether anything was new.
granted_new=false
grant() {
  local role=$1 scope=$2 count
  count=$(az_read 0 role assignment list --assignee-object-id "$principal_id" --scope "$scope" --role "$role" \
    --query "length(@)" --output tsv)
  if [[ $count == 0 ]]; then
    az_run role assignment create --assignee-object-id "$principal_id" --assignee-principal-type ServicePrincipal \
      --role "$role" --scope "$scope" --output none
    granted_new=true
  fi
}

# Waits until a grant is listed (role assignments are eventually consistent).
await_grant() {
  local role=$1 scope=$2 count attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    count=$(az_read 1 role assignment list --assignee-object-id "$principal_id" --scope "$scope" --role "$role" \
      --query "length(@)" --output tsv)
    [[ $count != 0 ]] && return 0
    echo "    waiting for $role to be listed (attempt $attempt)"
    sleep 6
  done
  echo "deploy.sh: the $role assignment is still not listed; run deploy.sh again in a few minutes" >&2
  exit 1
}

if [[ $dry_run != true ]] && ! command -v az >/dev/null; then
  echo "deploy.sh: the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli" >&2
  exit 1
fi

echo "==> resource group $resource_group ($location)"
az_run group create --name "$resource_group" --location "$location" --output none

echo "==> container registry $registry"
if ! az_exists acr show --name "$registry" --resource-group "$resource_group"; then
  az_run acr create --name "$registry" --resource-group "$resource_group" --sku Basic --admin-enabled false --output none
fi

echo "==> image $image"
if [[ $local_build == true ]]; then
  az_run acr login --name "$registry"
  if [[ $dry_run == true ]]; then
    echo "docker buildx build --platform linux/amd64 -t $image --push $repo_root" >&3
  else
    docker buildx build --platform linux/amd64 -t "$image" --push "$repo_root"
  fi
else
  az_run acr build --registry "$registry" --image "entra-webapp:$tag" --platform linux/amd64 "$repo_root"
fi

echo "==> App Service plan $plan ($sku, Linux)"
if ! az_exists appservice plan show --name "$plan" --resource-group "$resource_group"; then
  az_run appservice plan create --name "$plan" --resource-group "$resource_group" --is-linux --sku "$sku" --output none
fi

echo "==> managed identity $identity, granted before the site exists"
if ! az_exists identity show --name "$identity" --resource-group "$resource_group"; then
  az_run identity create --name "$identity" --resource-group "$resource_group" --location "$location" --output none
fi
principal_id=$(az_read "<principal-id>" identity show --name "$identity" --resource-group "$resource_group" \
  --query principalId --output tsv)
identity_client_id=$(az_read "<identity-client-id>" identity show --name "$identity" --resource-group "$resource_group" \
  --query clientId --output tsv)
identity_id=$(az_read "<identity-resource-id>" identity show --name "$identity" --resource-group "$resource_group" \
  --query id --output tsv)
registry_id=$(az_read "<registry-id>" acr show --name "$registry" --resource-group "$resource_group" --query id --output tsv)
grant AcrPull "$registry_id"
if [[ -n $key_vault ]]; then
  vault_id=$(az_read "<vault-id>" keyvault show --name "$key_vault" --query id --output tsv)
  grant "Key Vault Secrets User" "$vault_id"
fi
if [[ $granted_new == true ]]; then
  await_grant AcrPull "$registry_id"
  [[ -z $key_vault ]] || await_grant "Key Vault Secrets User" "$vault_id"
  echo "    letting the new grants propagate (${propagation_wait} s)"
  if [[ $dry_run == true ]]; then echo "sleep $propagation_wait" >&3; else sleep "$propagation_wait"; fi
fi

echo "==> web app $app, pulling with $identity"
if ! az_exists webapp show --name "$app" --resource-group "$resource_group"; then
  az_run webapp create --name "$app" --resource-group "$resource_group" --plan "$plan" \
    --container-image-name "$image" --assign-identity "$identity_id" \
    --acr-use-identity --acr-identity "$identity_id" --output none
else
  az_run webapp identity assign --name "$app" --resource-group "$resource_group" --identities "$identity_id" --output none
  az_run webapp config set --name "$app" --resource-group "$resource_group" \
    --generic-configurations "{\"acrUseManagedIdentityCreds\": true, \"acrUserManagedIdentityID\": \"$identity_client_id\"}" \
    --output none
  az_run webapp config set --name "$app" --resource-group "$resource_group" --linux-fx-version "DOCKER|$image" --output none
fi
if [[ -n $key_vault ]]; then
  # Key Vault references resolve with this identity, not a system-assigned one.
  az_run webapp update --name "$app" --resource-group "$resource_group" --set "keyVaultReferenceIdentity=$identity_id" --output none
fi

# The site's real host name: new sites may get <app>-<hash>.<region>.azurewebsites.net.
host=$(az_read "$app.azurewebsites.net" webapp show --name "$app" --resource-group "$resource_group" \
  --query defaultHostName --output tsv)
site="https://$host"

if [[ $credential == managed-identity ]]; then
  echo "==> federated credential: the app registration trusts $identity"
  federations=$(az_read 0 ad app federated-credential list --id "$client_id" \
    --query "[?name=='$federated_credential_name'] | length(@)" --output tsv)
  if [[ $federations == 0 ]]; then
    federation_file=$(mktemp)
    printf '{"name": "%s", "issuer": "https://login.microsoftonline.com/%s/v2.0", "subject": "%s", "audiences": ["api://AzureADTokenExchange"], "description": "entra-webapp on %s"}\n' \
      "$federated_credential_name" "$tenant_id" "$principal_id" "$app" >"$federation_file"
    az_run ad app federated-credential create --id "$client_id" --parameters "@$federation_file" --output none
    rm -f "$federation_file"
  fi
fi

echo "==> app settings ($credential credential)"
if [[ -n $session_secret_ref ]]; then
  session_secret="@Microsoft.KeyVault(SecretUri=$session_secret_ref)"
else
  existing_secret=$(az_read "" webapp config appsettings list --name "$app" --resource-group "$resource_group" \
    --query "[?name=='SESSION_SECRET'].value | [0]" --output tsv)
  if [[ -n $existing_secret ]]; then
    session_secret=$existing_secret # kept: regenerating it would sign every user out
  else
    session_secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
  fi
fi
case $credential in
  secret)
    if [[ -n $client_secret_ref ]]; then
      credential_settings=(CLIENT_SECRET "@Microsoft.KeyVault(SecretUri=$client_secret_ref)")
    else
      credential_settings=(CLIENT_SECRET "$client_secret")
    fi
    ;;
  certificate) credential_settings=(CLIENT_CERTIFICATE_THUMBPRINT "$certificate_thumbprint" WEBSITE_LOAD_CERTIFICATES "$certificate_thumbprint") ;;
  managed-identity) credential_settings=(MANAGED_IDENTITY_CLIENT_ID "$identity_client_id") ;;
esac
if [[ -n $redis_password_ref ]]; then
  redis_password="@Microsoft.KeyVault(SecretUri=$redis_password_ref)"
fi

# JSON string escaping for values we did not choose (secrets may hold any character).
json_escape() {
  local value=$1
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  printf '%s' "$value"
}

settings_file=$(mktemp)
chmod 600 "$settings_file"
trap 'rm -f "$settings_file"' EXIT
{
  printf '{\n'
  printf '  "WEBSITES_PORT": "%s",\n  "PORT": "%s",\n' "$port" "$port"
  printf '  "TENANT_ID": "%s",\n  "CLIENT_ID": "%s",\n' "$tenant_id" "$client_id"
  # The callback is where Entra returns after sign-out too (the app sends the browser on from
  # there): one redirect URI to register. Set, so that a site deployed before keeps no other.
  printf '  "REDIRECT_URI": "%s/callback",\n  "POST_LOGOUT_REDIRECT_URI": "%s/callback",\n' "$site" "$site"
  printf '  "TRUST_FORWARDED_HEADERS": "true",\n  "LOG_FORMAT": "json",\n'
  for ((i = 0; i < ${#credential_settings[@]}; i += 2)); do
    printf '  "%s": "%s",\n' "${credential_settings[i]}" "$(json_escape "${credential_settings[i + 1]}")"
  done
  if [[ -n $session_store ]]; then
    printf '  "SESSION_STORE": "%s",\n' "$(json_escape "$session_store")"
  fi
  if [[ -n $redis_password ]]; then
    printf '  "REDIS_PASSWORD": "%s",\n' "$(json_escape "$redis_password")"
  fi
  printf '  "SESSION_SECRET": "%s"\n}\n' "$(json_escape "$session_secret")"
} >"$settings_file"
if [[ $dry_run == true ]]; then
  az_run webapp config appsettings set --name "$app" --resource-group "$resource_group" --settings "@$settings_file" --output none
  echo "    with:"
  sed -E 's/("(CLIENT_SECRET|SESSION_SECRET|REDIS_PASSWORD)": )"[^"]*"/\1"***"/' "$settings_file"
else
  az webapp config appsettings set --name "$app" --resource-group "$resource_group" --settings "@$settings_file" --output none
fi
# One credential only: the app refuses to start with two. Drop the other modes' settings.
stale=()
for name in CLIENT_SECRET CLIENT_CERTIFICATE_THUMBPRINT MANAGED_IDENTITY_CLIENT_ID; do
  [[ " ${credential_settings[*]} " == *" $name "* ]] || stale+=("$name")
done
az_run webapp config appsettings delete --name "$app" --resource-group "$resource_group" --setting-names "${stale[@]}" --output none

echo "==> HTTPS only, health check, Always On"
az_run webapp update --name "$app" --resource-group "$resource_group" --https-only true --output none
az_run webapp config set --name "$app" --resource-group "$resource_group" --always-on true \
  --generic-configurations '{"healthCheckPath": "/healthz"}' --output none

echo "==> app registration $client_id: redirect URIs and front-channel logout URL"
# --web-redirect-uris REPLACES the whole list: read it (a failed read stops here, so the
# registration is never rewritten from an empty list), add ours, write the union.
current_uris=$(az_read "" ad app show --id "$client_id" --query "web.redirectUris[]" --output tsv)
redirect_uris=()
while IFS= read -r uri; do
  [[ -n $uri ]] && redirect_uris+=("$uri")
done <<<"$current_uris"
wanted=("$site/callback")
changed=false
for uri in "${wanted[@]}"; do
  found=false
  for existing in "${redirect_uris[@]+"${redirect_uris[@]}"}"; do
    [[ $existing == "$uri" ]] && found=true
  done
  if [[ $found == false ]]; then
    redirect_uris+=("$uri")
    changed=true
  fi
done
if [[ $changed == true ]]; then
  az_run ad app update --id "$client_id" --web-redirect-uris "${redirect_uris[@]}"
fi
az_run rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications(appId='$client_id')" \
  --headers "Content-Type=application/json" --body "{\"web\":{\"logoutUrl\":\"$site/logout\"}}"

echo
echo "Deployed: $site"
echo "Check the registration at $site/setup, sign in at $site/"
