// Private endpoints (deployed only when main.bicep's privateNetworking is true) for
// the storage account (blob, table, queue), the Service Bus namespace (Premium), the key
// vault and the Azure Monitor private link scope (Application Insights and Log Analytics
// ingestion and query), each registered in its private DNS zones from network.bicep.
// The Function App's own inbound endpoint is in functionapp.bicep (the app is created
// after these, so that its host starts with its storage reachable).
// Azure Communication Services has no private endpoint: the app reaches it on its public
// endpoint, with Entra ID only (infra/bicep/README.md, Private networking).

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Prefix of the private endpoint names.')
param namePrefix string

@description('Subnet for the private endpoints.')
param subnetId string

@description('Storage account resource ID.')
param storageAccountId string

@description('Service Bus namespace resource ID (Premium).')
param serviceBusNamespaceId string

@description('Key vault resource ID.')
param keyVaultId string

@description('Azure Monitor private link scope resource ID.')
param monitorPrivateLinkScopeId string

@description('Private DNS zone IDs, from network.bicep.')
param blobZoneId string
param tableZoneId string
param queueZoneId string
param serviceBusZoneId string
param keyVaultZoneId string
param monitorZoneIds array

var endpoints = [
  {
    name: 'blob'
    target: storageAccountId
    groupId: 'blob'
    zoneIds: [
      blobZoneId
    ]
  }
  {
    name: 'table'
    target: storageAccountId
    groupId: 'table'
    zoneIds: [
      tableZoneId
    ]
  }
  {
    // AzureWebJobsStorage: the host resolves the queue endpoint too
    name: 'queue'
    target: storageAccountId
    groupId: 'queue'
    zoneIds: [
      queueZoneId
    ]
  }
  {
    name: 'servicebus'
    target: serviceBusNamespaceId
    groupId: 'namespace'
    zoneIds: [
      serviceBusZoneId
    ]
  }
  {
    name: 'vault'
    target: keyVaultId
    groupId: 'vault'
    zoneIds: [
      keyVaultZoneId
    ]
  }
  {
    // Application Insights and Log Analytics ingestion and query
    name: 'monitor'
    target: monitorPrivateLinkScopeId
    groupId: 'azuremonitor'
    zoneIds: monitorZoneIds
  }
]

resource privateEndpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = [for ep in endpoints: {
  name: '${namePrefix}-${ep.name}-pe'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${namePrefix}-${ep.name}'
        properties: {
          privateLinkServiceId: ep.target
          groupIds: [
            ep.groupId
          ]
        }
      }
    ]
  }
}]

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = [for (ep, i) in endpoints: {
  parent: privateEndpoint[i]
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [for (zoneId, j) in ep.zoneIds: {
      name: '${ep.name}-${j}'
      properties: {
        privateDnsZoneId: zoneId
      }
    }]
  }
}]
