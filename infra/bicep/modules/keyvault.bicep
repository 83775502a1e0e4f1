// Key Vault for the secrets that remain (the Graph client secret, the feed API
// credentials, the victim's page's form-token signing key). RBAC mode, purge protection, soft delete. A secret is created only
// when its value is passed to this deployment; otherwise set it out of band
// (az keyvault secret set) under the same name. The app settings refer to the
// secrets by name (@Microsoft.KeyVault(VaultName=...;SecretName=...)), resolved
// with the Function App's user-assigned identity (Key Vault Secrets User).

@description('Key vault name (3-24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Public network access: Disabled when a private endpoint carries the traffic.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Graph client secret (GRAPH_CLIENT_SECRET); empty: leave the secret as it is.')
@secure()
param graphClientSecret string

@description('Feed OAuth client secret (FEED_CLIENT_SECRET); empty: leave the secret as it is.')
@secure()
param feedClientSecret string

@description('Feed API key (FEED_API_KEY); empty: leave the secret as it is.')
@secure()
param feedApiKey string

@description('Signing key of the form tokens of the victim page (PAGE_SIGNING_KEY), at least 32 characters; empty: leave the secret as it is.')
@secure()
param pageSigningKey string

@description('Expiry stamped on a secret written by this deployment, as seconds since 1970 (informational: Key Vault still serves it).')
param secretExpiry int

@description('Object ID of a group allowed to set secrets (Key Vault Secrets Officer); empty for none.')
param secretsOfficerPrincipalId string

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

// The secret names the Function App settings refer to (functionapp.bicep).
var secretNames = {
  graphClientSecret: 'graph-client-secret'
  feedClientSecret: 'feed-client-secret'
  feedApiKey: 'feed-api-key'
  pageSigningKey: 'page-signing-key'
}

var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: (publicNetworkAccess == 'Enabled') ? 'Allow' : 'Deny'
    }
  }
}

resource graphSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(graphClientSecret)) {
  parent: vault
  name: secretNames.graphClientSecret
  properties: {
    value: graphClientSecret
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: secretExpiry
    }
  }
}

resource feedSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(feedClientSecret)) {
  parent: vault
  name: secretNames.feedClientSecret
  properties: {
    value: feedClientSecret
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: secretExpiry
    }
  }
}

resource feedKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(feedApiKey)) {
  parent: vault
  name: secretNames.feedApiKey
  properties: {
    value: feedApiKey
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: secretExpiry
    }
  }
}

// The page's HMAC key (shared/web/csrf.py). Plain Bicep cannot make a random value once and
// keep it (newGuid() is a new value on every deployment, which would rotate the key each time),
// so the operator makes it (openssl rand -hex 32) and passes it once, or sets it in the vault.
resource pageKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(pageSigningKey)) {
  parent: vault
  name: secretNames.pageSigningKey
  properties: {
    value: pageSigningKey
    contentType: 'text/plain'
    attributes: {
      enabled: true
      exp: secretExpiry
    }
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerPrincipalId)) {
  name: guid(vault.id, secretsOfficerPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: secretsOfficerPrincipalId
    principalType: 'Group'
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output graphClientSecretName string = secretNames.graphClientSecret
output feedClientSecretName string = secretNames.feedClientSecret
output feedApiKeyName string = secretNames.feedApiKey
output pageSigningKeyName string = secretNames.pageSigningKey
