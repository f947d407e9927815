// entra-webapp on Azure App Service (Linux container), image in Azure Container Registry pulled
// with a user-assigned managed identity that is granted AcrPull *before* the site exists, optional
// Azure Cache for Redis for sessions across instances.
// Deploy: az deployment group create -g <rg> -f deploy/azure/main.bicep \
//   -p @deploy/azure/main.parameters.json -p sessionSecret="$(openssl rand -base64 48)"
// The image must exist in the registry first (deploy.sh builds it with az acr build). With
// credential=managed-identity (no secret anywhere) the app registration must trust the identity:
// az ad app federated-credential create (see docs/DEPLOY.md; deploy.sh does it).

@description('Web app name; other resources are named after it.')
param appName string

@description('Region of every resource.')
param location string = resourceGroup().location

@description('Container registry name: globally unique, 5-50 alphanumerics.')
param registryName string

@description('Tag of the entra-webapp image in the registry.')
param imageTag string = 'latest'

@description('App Service plan size.')
param planSku string = 'B1'

@description('Instances serving the site (more than one needs enableRedis).')
param instanceCount int = 1

@description('Directory (tenant) ID of the app registration.')
param tenantId string

@description('Application (client) ID of the app registration.')
param clientId string

@description('How the app proves itself to Entra: the managed identity as a federated credential (no secret), or a client secret.')
@allowed(['managed-identity', 'secret'])
param credential string = 'managed-identity'

@secure()
@description('With credential=secret: the client secret value, or a Key Vault reference: @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>)')
param clientSecret string = ''

@secure()
@minLength(32)
@description('Secret sealing session records (openssl rand -base64 48), or a Key Vault reference; no default: a placeholder must never be deployed.')
param sessionSecret string

@secure()
@description('Serves /metrics to a scraper sending this as a bearer token (openssl rand -base64 32, at least 32 characters), or a Key Vault reference; empty: no /metrics.')
param metricsToken string = ''

@description('Create an Azure Cache for Redis and keep sessions there, for several instances and restarts.')
param enableRedis bool = false

var containerPort = '8080'
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

// The identity exists, and may pull, before the site is created: its first pull succeeds.
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${appName}-identity'
  location: location
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  sku: { name: 'Basic' }
  properties: { adminUserEnabled: false }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${appName}-plan'
  location: location
  kind: 'linux'
  sku: { name: planSku, capacity: instanceCount }
  properties: { reserved: true }
}

resource redis 'Microsoft.Cache/redis@2023-08-01' = if (enableRedis) {
  name: '${appName}-redis'
  location: location
  properties: {
    sku: { name: 'Basic', family: 'C', capacity: 0 }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
  }
}

// The identity may pull images from the registry.
resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, identity.id, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  kind: 'app,linux,container'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  dependsOn: [acrPull]
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      linuxFxVersion: 'DOCKER|${registry.properties.loginServer}/entra-webapp:${imageTag}'
      acrUseManagedIdentityCreds: true
      acrUserManagedIdentityID: identity.properties.clientId
      alwaysOn: true
      healthCheckPath: '/healthz'
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
    }
  }
}

var siteUrl = 'https://${site.properties.defaultHostName}'

var commonSettings = {
  WEBSITES_PORT: containerPort
  PORT: containerPort
  TENANT_ID: tenantId
  CLIENT_ID: clientId
  REDIRECT_URI: '${siteUrl}/callback'
  // Entra returns to the callback after sign-out too; the app sends the browser on from there.
  POST_LOGOUT_REDIRECT_URI: '${siteUrl}/callback'
  SESSION_SECRET: sessionSecret
  // The Redis key goes apart from the URL: Azure Redis keys are base64 and may contain '/'.
  SESSION_STORE: enableRedis ? 'rediss://${redis.properties.hostName}:6380' : 'memory'
  TRUST_FORWARDED_HEADERS: 'true'
  LOG_FORMAT: 'json'
}
// Exactly one credential setting: the app refuses to start with none or several.
var credentialSettings = credential == 'secret' ? { CLIENT_SECRET: clientSecret } : { MANAGED_IDENTITY_CLIENT_ID: identity.properties.clientId }
var redisSettings = enableRedis ? { REDIS_PASSWORD: redis.listKeys().primaryKey } : {}
// These settings replace the site's whole set: a token set by hand would go at the next deployment.
var metricsSettings = empty(metricsToken) ? {} : { METRICS_TOKEN: metricsToken }

// Settings reference the site's real host name, so they are a resource of their own.
resource appSettings 'Microsoft.Web/sites/config@2023-12-01' = {
  parent: site
  name: 'appsettings'
  properties: union(commonSettings, credentialSettings, redisSettings, metricsSettings)
}

@description('The site. Register siteUrl/callback as a redirect URI and siteUrl/logout as the front-channel logout URL.')
output siteUrl string = siteUrl
output redirectUri string = '${siteUrl}/callback'
@description('The identity: the subject of the federated credential the app registration needs with credential=managed-identity.')
output identityPrincipalId string = identity.properties.principalId
output identityClientId string = identity.properties.clientId
