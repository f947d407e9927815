// entra-webapp on Azure App Service (Linux container), image in Azure Container Registry pulled
// with the site's managed identity, optional Azure Cache for Redis for sessions across instances.
// Deploy: az deployment group create -g <rg> -f deploy/azure/main.bicep -p @deploy/azure/main.parameters.json
// The image must exist in the registry first (deploy.sh builds it with az acr build).

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

@secure()
@description('Client secret value, or a Key Vault reference: @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>)')
param clientSecret string

@secure()
@description('Secret sealing session records (openssl rand -base64 48); comma-separate several to rotate.')
param sessionSecret string

@description('Create an Azure Cache for Redis and keep sessions there, for several instances and restarts.')
param enableRedis bool = false

var containerPort = '8080'
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'

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

resource site 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  kind: 'app,linux,container'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    siteConfig: {
      linuxFxVersion: 'DOCKER|${registry.properties.loginServer}/entra-webapp:${imageTag}'
      acrUseManagedIdentityCreds: true
      alwaysOn: true
      healthCheckPath: '/healthz'
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
    }
  }
}

// The site's identity may pull images from the registry.
resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, site.id, acrPullRoleId)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', acrPullRoleId)
    principalId: site.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

var siteUrl = 'https://${site.properties.defaultHostName}'

// Settings reference the site's real host name, so they are a resource of their own.
resource appSettings 'Microsoft.Web/sites/config@2023-12-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    WEBSITES_PORT: containerPort
    PORT: containerPort
    TENANT_ID: tenantId
    CLIENT_ID: clientId
    CLIENT_SECRET: clientSecret
    REDIRECT_URI: '${siteUrl}/callback'
    POST_LOGOUT_REDIRECT_URI: '${siteUrl}/'
    SESSION_SECRET: sessionSecret
    SESSION_STORE: enableRedis ? 'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:6380' : 'memory'
    TRUST_FORWARDED_HEADERS: 'true'
    LOG_FORMAT: 'json'
  }
}

@description('The site. Register siteUrl/callback as a redirect URI and siteUrl/logout as the front-channel logout URL.')
output siteUrl string = siteUrl
output redirectUri string = '${siteUrl}/callback'
output principalId string = site.identity.principalId
