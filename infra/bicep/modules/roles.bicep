// Least-privilege role assignments for the Function App's user-assigned identity,
// each on the one resource it is needed for (never the resource group), with the
// built-in role definition GUIDs and deterministic guid() names.

@description('Principal (object) ID of the Function App identity.')
param principalId string

@description('Storage account holding the state tables, the host storage and the deployment container.')
param storageAccountName string

@description('Service Bus namespace.')
param serviceBusNamespaceName string

@description('Key vault holding the remaining secrets.')
param keyVaultName string

@description('Application Insights component (local auth off).')
param appInsightsName string

@description('Azure Communication Services resource.')
param communicationServiceName string

// Why each role (the narrowest built-in role for each access the code or the host makes):
// - Storage Table Data Contributor: the state tables (shared/adapters/azure_tables.py reads,
//   upserts, updates with an ETag check and creates a missing table); it also covers the
//   host's diagnostic events table.
// - Storage Blob Data Owner: AzureWebJobsStorage host storage (timer leases and schedule
//   monitor, container creation) and the Flex Consumption deployment container; the role the
//   Functions docs give for identity-based host storage. Storage Queue Data Contributor is
//   NOT granted: only blob triggers and Durable Functions need queues on host storage, and
//   this app has neither (timer and Service Bus triggers only).
// - Azure Service Bus Data Sender and Data Receiver: the triggers receive and settle, the
//   steps send the next message (ServiceBusPublisher).
// - Key Vault Secrets User: read the secret values behind the @Microsoft.KeyVault(...) settings.
// - Monitoring Metrics Publisher: ingest telemetry into Application Insights with Entra ID
//   (DisableLocalAuth is true).
// - Communication and Email Service Owner: ACS email and SMS send with Entra ID. ACS has no
//   send-only built-in role (custom roles for ACS are reported not to be honoured), so this
//   is the narrowest built-in role that allows it; it is scoped to this one ACS resource
//   (Contributor would grant every other action as well). Its key actions are moot while
//   disableLocalAuth is true.
var roles = {
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource tableData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource blobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource serviceBusSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, principalId, roles.serviceBusDataSender)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource serviceBusReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBus.id, principalId, roles.serviceBusDataReceiver)
  scope: serviceBus
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource communicationSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, principalId, roles.communicationAndEmailServiceOwner)
  scope: communicationService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.communicationAndEmailServiceOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
