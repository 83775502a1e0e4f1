// ACS delivery reports, through Event Grid, to the delivery_report function.
//
// The system topic on the Communication Services resource carries its events; one
// event subscription hands the email and SMS delivery reports to the Event
// Grid-triggered function delivery_report, and dead-letters a report it cannot hand
// over to a blob container of the storage account (storage.bicep). Shared keys are off
// on that account, so Event Grid writes dead letters with the system topic's own
// system-assigned identity, granted Storage Blob Data Contributor on that one container.
//
// Event Grid checks that the function exists when the subscription is created, so the
// subscription is a second deployment step (deploySubscription): deploy without it,
// publish the code, deploy again with it (README.md in infra/bicep).

@description('Name of the Event Grid system topic on the Communication Services resource.')
param name string

@description('Tags for every resource.')
param tags object

@description('Communication Services resource whose events the topic carries.')
param communicationServiceName string

@description('Function App that hosts the delivery report function.')
param functionAppName string

@description('Name of the Event Grid-triggered function that receives the delivery reports.')
param functionName string

@description('Storage account holding the dead-letter container.')
param storageAccountName string

@description('Blob container undeliverable delivery reports are dead-lettered to.')
param deadLetterContainerName string

@description('True once the function code is published: create the event subscription (Event Grid checks that the function exists).')
param deploySubscription bool

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

// The two events delivery_report handles, and no other.
var eventTypes = [
  'Microsoft.Communication.EmailDeliveryReportReceived'
  'Microsoft.Communication.SMSDeliveryReportReceived'
]

// Retries. A report tells whether a message reached the victim, so that a failed one
// can still be made good before the duty's deadline; a report more than a day old is of
// no use to that, so a report lives one day (1440 minutes, also Event Grid's maximum).
// Event Grid retries on its own schedule (10 s, 30 s, 1 min, 5 min, 10 min, 30 min,
// 1 h, 3 h, 6 h, then every 12 h), which fits about a dozen attempts into a day:
// maxDeliveryAttempts is Event Grid's maximum (30) so that the day, not an attempt
// count, decides when a report is given up. A function app that is down, scaling from
// zero or being redeployed is retried for the whole day, then the report is
// dead-lettered. An error Event Grid takes as permanent (400 Bad Request, 413 Request
// Entity Too Large) is not retried: the report is dead-lettered at once.
var retryPolicy = {
  maxDeliveryAttempts: 30
  eventTimeToLiveInMinutes: 1440
}

// Storage Blob Data Contributor: Event Grid's dead-lettering writes blobs; the
// narrowest built-in role that can, scoped to the one container.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

// One system topic per source is allowed. The ACS resource is global, so its system
// topic is too.
resource systemTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: name
  location: 'global'
  tags: tags
  identity: {
    // System-assigned: the identity a topic may use to reach a storage account whose
    // firewall lets in trusted Azure services (a user-assigned one is refused there).
    type: 'SystemAssigned'
  }
  properties: {
    source: communicationService.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

// Deployed in the first step with the topic, so the grant has propagated by the time the
// subscription (second step) first dead-letters.
resource deadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource deliveryReports 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (deploySubscription) {
  parent: systemTopic
  name: 'delivery-report'
  dependsOn: [
    deadLetterWriter
  ]
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: resourceId('Microsoft.Web/sites/functions', functionAppName, functionName)
        maxEventsPerBatch: 1 // one report an invocation: a failure retries that report alone
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema' // what the Python trigger's func.EventGridEvent reads
    filter: {
      includedEventTypes: eventTypes
    }
    retryPolicy: retryPolicy
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: systemTopic
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'DeliveryFailures'
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

output systemTopicName string = systemTopic.name
