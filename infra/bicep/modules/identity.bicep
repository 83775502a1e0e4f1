// The one user-assigned managed identity the Function App runs as. Every data-plane
// access (Table Storage, host storage, Service Bus, Key Vault, ACS, Application
// Insights ingestion) is granted to this identity in roles.bicep; nothing uses keys.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
