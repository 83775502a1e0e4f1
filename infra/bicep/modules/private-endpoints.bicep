// Private endpoints (deployed only when main.bicep's privateNetworking is true) for
// the storage account (blob, table, queue), the Service Bus namespace (Premium) and
// the key vault, each registered in its private DNS zone from network.bicep.
// Azure Communication Services and Application Insights ingestion stay on their
// public endpoints (Entra ID authentication only).

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

@description('Private DNS zone IDs, from network.bicep.')
param blobZoneId string
param tableZoneId string
param queueZoneId string
param serviceBusZoneId string
param keyVaultZoneId string

var endpoints = [
  {
    name: 'blob'
    target: storageAccountId
    groupId: 'blob'
    zoneId: blobZoneId
  }
  {
    name: 'table'
    target: storageAccountId
    groupId: 'table'
    zoneId: tableZoneId
  }
  {
    // AzureWebJobsStorage: the host resolves the queue endpoint too
    name: 'queue'
    target: storageAccountId
    groupId: 'queue'
    zoneId: queueZoneId
  }
  {
    name: 'servicebus'
    target: serviceBusNamespaceId
    groupId: 'namespace'
    zoneId: serviceBusZoneId
  }
  {
    name: 'vault'
    target: keyVaultId
    groupId: 'vault'
    zoneId: keyVaultZoneId
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
    privateDnsZoneConfigs: [
      {
        name: ep.name
        properties: {
          privateDnsZoneId: ep.zoneId
        }
      }
    ]
  }
}]
