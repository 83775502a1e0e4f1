// Least-privilege role assignments for the Function App's user-assigned identity,
// each on the narrowest scope it is needed for (a blob container where the access is to
// one container, otherwise the one resource; never the resource group), with built-in
// role definition GUIDs or this template's custom roles, and deterministic guid() names.

@description('Principal (object) ID of the Function App identity.')
param principalId string

@description('Storage account holding the state tables, the quarantined records, the host storage and the deployment container.')
param storageAccountName string

@description('The Functions host\'s containers in that account (azure-webjobs-hosts, azure-webjobs-secrets).')
param hostContainerNames array

@description('The Flex Consumption deployment container in that account.')
param deploymentContainerName string

@description('The container of the feed records too large for a table row, in that account.')
param quarantineContainerName string

@description('Service Bus namespace.')
param serviceBusNamespaceName string

@description('Key vault holding the remaining secrets.')
param keyVaultName string

@description('Application Insights component (local auth off).')
param appInsightsName string

@description('Azure Communication Services resource.')
param communicationServiceName string

// Why each role (the narrowest role for each access the code or the host makes):
// - Storage Table Data Contributor, account: the state tables (shared/adapters/azure_tables.py
//   reads, upserts, updates with an ETag check and creates a missing table); it also covers
//   the host's diagnostic events table. Every table of the account is the app's.
// - Storage Blob Data Owner, on each of the host's two containers only: the role the
//   Functions docs give for identity-based host storage (timer schedule status, singleton
//   locks and leases, function keys), no longer on the whole account, so the identity cannot
//   read or write the delivery-report dead letters or any other container.
// - Storage Blob Data Contributor, deployment container only: Flex Consumption writes and
//   reads the app package there with this identity.
// - Storage Blob Data Contributor, quarantined-records container only: the app writes, reads
//   and deletes the feed records too large for a table row there (StateStorage__blobServiceUri),
//   and no other container's blobs.
// - Host storage lister (custom role), account: the host lists containers and reads the blob
//   service's properties at start-up, account-level calls a container-scoped role cannot
//   authorise; these two actions give no access to any blob's content.
// - Storage Queue Data Contributor is NOT granted: only blob triggers and Durable Functions
//   need queues on host storage, and this app has neither (timer, Service Bus, Event Grid
//   and HTTP triggers only).
// - Azure Service Bus Data Sender and Data Receiver: the triggers receive and settle, the
//   steps send the next message (ServiceBusPublisher).
// - Key Vault Secrets User: read the secret values behind the @Microsoft.KeyVault(...) settings.
// - Monitoring Metrics Publisher: ingest telemetry into Application Insights with Entra ID
//   (DisableLocalAuth is true).
// - Communication sender (custom role) instead of Communication and Email Service Owner:
//   Microsoft.Communication defines no data actions (Azure permissions reference), so ACS
//   authorises its Entra ID calls (emails:send, the send status, sms) on the resource's own
//   actions. Microsoft's managed-identity email sample (Azure-Samples/communication-services-
//   dotnet-quickstarts, SendEmailAdvanced/SendEmailWithManagedIdentity) names the supported
//   roles: Contributor, or a custom role with CommunicationServices/Read and
//   CommunicationServices/Write. Those two, and nothing else: EmailServices/write is in
//   Microsoft's SMTP authentication role only, and the app sends through the REST API
//   (azure-communication-email, azure-communication-sms), not SMTP. Left out too: ListKeys and
//   RegenerateKey (the identity can never obtain an access key), Delete, the email domains
//   and sender names, Event Grid filters, notification hubs. CommunicationServices/Write is
//   the write of the whole resource, disableLocalAuth included; no finer action exists, so
//   the deny policy of modules/policy-definition.bicep (denyLocalAuthPolicy) is what stops
//   it from turning local auth back on (infra/bicep/README.md).
var roles = {
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// The custom roles' actions (a test checks them: no wildcard, no write but the one ACS needs).
var communicationSenderActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
]

var hostStorageListerActions = [
  'Microsoft.Storage/storageAccounts/blobServices/read'
  'Microsoft.Storage/storageAccounts/blobServices/containers/read'
]

resource communicationSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'victim-updates-communication-sender')
  properties: {
    roleName: 'Victim Updates communication sender (${resourceGroup().name})'
    description: 'Send email and SMS through Azure Communication Services with Entra ID (Read and Write of the resource, which ACS authorises the send calls on); no keys, no delete, no email service or domain changes.'
    type: 'CustomRole'
    permissions: [
      {
        actions: communicationSenderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource hostStorageListerRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'victim-updates-host-storage-lister')
  properties: {
    roleName: 'Victim Updates host storage lister (${resourceGroup().name})'
    description: 'List the blob containers and read the blob service properties of the host storage account; no blob content.'
    type: 'CustomRole'
    permissions: [
      {
        actions: hostStorageListerActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource hostContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [for container in hostContainerNames: {
  parent: blobService
  name: container
}]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deploymentContainerName
}

resource quarantineContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: quarantineContainerName
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

resource hostBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (container, i) in hostContainerNames: {
  name: guid(hostContainer[i].id, principalId, roles.storageBlobDataOwner)
  scope: hostContainer[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource deploymentBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deploymentContainer.id, principalId, roles.storageBlobDataContributor)
  scope: deploymentContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource quarantineBlobData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(quarantineContainer.id, principalId, roles.storageBlobDataContributor)
  scope: quarantineContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostStorageLister 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, 'host-storage-lister')
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', hostStorageListerRole.name)
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
  name: guid(communicationService.id, principalId, 'communication-sender')
  scope: communicationService
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', communicationSenderRole.name)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
