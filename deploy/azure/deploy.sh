#!/usr/bin/env bash
# Deploys entra-webapp to Azure App Service from nothing, or updates it: idempotent, run it again
# after every change. Creates or updates the resource group, the container registry, the image,
# the Linux App Service plan, the web app (pulling with its managed identity: AcrPull), its app
# settings, HTTPS only, the health check and Always On; then adds the site's redirect URI to the
# app registration (keeping the ones it has) and sets its front-channel logout URL.
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
  --client-secret VALUE     client secret value (env CLIENT_SECRET)
  --client-secret-ref URI   Key Vault secret URI instead (env CLIENT_SECRET_REF); stored as a
                            @Microsoft.KeyVault(SecretUri=...) reference
  --session-store URL       redis:// or rediss:// URL for several instances (env SESSION_STORE)
  --local-build             build with local Docker (buildx, linux/amd64) and push, instead of
                            az acr build (env LOCAL_BUILD=true)
  --dry-run                 print every command instead of running it; needs neither az nor a
                            secret (env DRY_RUN=true)
  -h, --help                this help

One of --client-secret or --client-secret-ref is required unless the app already has the setting.
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
client_secret=${CLIENT_SECRET:-}
client_secret_ref=${CLIENT_SECRET_REF:-}
session_store=${SESSION_STORE:-}
local_build=${LOCAL_BUILD:-false}
dry_run=${DRY_RUN:-false}

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
    --client-secret) client_secret=$2; shift 2 ;;
    --client-secret-ref) client_secret_ref=$2; shift 2 ;;
    --session-store) session_store=$2; shift 2 ;;
    --local-build) local_build=true; shift ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "deploy.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

missing=()
[[ -n $resource_group ]] || missing+=(--resource-group)
[[ -n $location ]] || missing+=(--location)
[[ -n $registry ]] || missing+=(--registry)
[[ -n $app ]] || missing+=(--app)
[[ -n $tenant_id ]] || missing+=(--tenant-id)
[[ -n $client_id ]] || missing+=(--client-id)
if ((${#missing[@]})); then
  echo "deploy.sh: missing ${missing[*]} (see --help)" >&2
  exit 2
fi
if [[ -n $client_secret && -n $client_secret_ref ]]; then
  echo "deploy.sh: give --client-secret or --client-secret-ref, not both" >&2
  exit 2
fi
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -z $tag ]]; then
  tag=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null || echo latest)
fi
plan=${plan:-$app-plan}
image="$registry.azurecr.io/entra-webapp:$tag"
port=8080

# az, or in a dry run its command line (secret values masked).
az_run() {
  if [[ $dry_run == true ]]; then
    printf 'az'
    printf ' %q' "$@"
    printf '\n'
    return 0
  fi
  az "$@"
}

# az whose answer we need; a dry run answers with a placeholder.
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
    az_run "$@"
    return 1
  fi
  az "$@" --output none 2>/dev/null
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
    echo "docker buildx build --platform linux/amd64 -t $image --push $repo_root"
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

echo "==> web app $app"
if ! az_exists webapp show --name "$app" --resource-group "$resource_group"; then
  az_run webapp create --name "$app" --resource-group "$resource_group" --plan "$plan" \
    --container-image-name "$image" --output none
fi

echo "==> managed identity pulls from the registry (AcrPull)"
principal_id=$(az_read "<principal-id>" webapp identity assign --name "$app" --resource-group "$resource_group" --query principalId --output tsv)
registry_id=$(az_read "<registry-id>" acr show --name "$registry" --resource-group "$resource_group" --query id --output tsv)
assignments=$(az_read 0 role assignment list --assignee "$principal_id" --scope "$registry_id" --role AcrPull --query "length(@)" --output tsv)
if [[ $assignments == 0 ]]; then
  az_run role assignment create --assignee-object-id "$principal_id" --assignee-principal-type ServicePrincipal \
    --role AcrPull --scope "$registry_id" --output none
fi
az_run webapp config set --name "$app" --resource-group "$resource_group" \
  --generic-configurations '{"acrUseManagedIdentityCreds": true}' --output none
az_run webapp config container set --name "$app" --resource-group "$resource_group" \
  --container-image-name "$image" --container-registry-url "https://$registry.azurecr.io" --output none

# The site's real host name: new sites may get <app>-<hash>.<region>.azurewebsites.net.
host=$(az_read "$app.azurewebsites.net" webapp show --name "$app" --resource-group "$resource_group" --query defaultHostName --output tsv)
site="https://$host"

echo "==> app settings"
existing_secret=$(az_read "" webapp config appsettings list --name "$app" --resource-group "$resource_group" \
  --query "[?name=='SESSION_SECRET'].value | [0]" --output tsv)
if [[ -n $existing_secret ]]; then
  session_secret=$existing_secret # kept: regenerating it would sign every user out
else
  session_secret=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
fi
if [[ -n $client_secret_ref ]]; then
  client_secret_setting="@Microsoft.KeyVault(SecretUri=$client_secret_ref)"
else
  client_secret_setting=$client_secret
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
  printf '  "REDIRECT_URI": "%s/callback",\n  "POST_LOGOUT_REDIRECT_URI": "%s/",\n' "$site" "$site"
  printf '  "TRUST_FORWARDED_HEADERS": "true",\n  "LOG_FORMAT": "json",\n'
  if [[ -n $client_secret_setting ]]; then
    printf '  "CLIENT_SECRET": "%s",\n' "$(json_escape "$client_secret_setting")"
  fi
  if [[ -n $session_store ]]; then
    printf '  "SESSION_STORE": "%s",\n' "$(json_escape "$session_store")"
  fi
  printf '  "SESSION_SECRET": "%s"\n}\n' "$session_secret"
} >"$settings_file"
if [[ $dry_run == true ]]; then
  echo "az webapp config appsettings set --name $app --resource-group $resource_group --settings @<file> with:"
  sed -E 's/("(CLIENT_SECRET|SESSION_SECRET|SESSION_STORE)": )"[^"]*"/\1"***"/' "$settings_file"
else
  az webapp config appsettings set --name "$app" --resource-group "$resource_group" --settings "@$settings_file" --output none
fi

echo "==> HTTPS only, health check, Always On"
az_run webapp update --name "$app" --resource-group "$resource_group" --https-only true --output none
az_run webapp config set --name "$app" --resource-group "$resource_group" --always-on true \
  --generic-configurations '{"healthCheckPath": "/healthz"}' --output none

echo "==> app registration $client_id: redirect URIs and front-channel logout URL"
# --web-redirect-uris REPLACES the whole list: read it, add ours, write the union.
mapfile -t redirect_uris < <(az_read "" ad app show --id "$client_id" --query "web.redirectUris[]" --output tsv | sed '/^$/d')
wanted=("$site/callback" "$site/")
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
