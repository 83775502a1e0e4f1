// Service Bus namespace and the four queues between the pipeline steps.
// Local (SAS) auth is off: the Functions host and the publisher sign in with the
// Function App's identity (Azure Service Bus Data Sender + Data Receiver).

@description('Namespace name (6-50 letters, digits and hyphens).')
@minLength(6)
@maxLength(50)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Standard, or Premium (needed for private endpoints).')
@allowed([
  'Standard'
  'Premium'
])
param skuName string

@description('Premium messaging units (ignored for Standard).')
@allowed([
  1
  2
  4
  8
  16
])
param premiumCapacity int

@description('Public network access: Disabled when a private endpoint carries the traffic (Premium only).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('How long Service Bus remembers a message id to drop duplicates (ISO 8601, PT20S to P7D).')
param duplicateDetectionWindow string

@description('Deliveries before a message is dead-lettered (SERVICEBUS_MAX_DELIVERY_COUNT).')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int

@description('Peek-lock duration (ISO 8601, at most PT5M).')
param lockDuration string

@description('Default time to live of a message once it is enqueued (ISO 8601).')
param defaultMessageTimeToLive string

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

// The queues the code uses: the defaults of CASE_CHANGES_QUEUE, JOURNEY_EVENTS_QUEUE,
// OUTBOUND_MESSAGES_QUEUE and OFFICER_TASKS_QUEUE in shared/settings.py, with sessions where
// the trigger in function_app.py sets is_sessions_enabled (tests/integration/test_infra.py keeps them equal).
// Every message carries a message_id, so duplicate detection is on for all four.
var queues = [
  {
    name: 'case-changes'
    setting: 'CASE_CHANGES_QUEUE'
    requiresSession: true
  }
  {
    name: 'journey-events'
    setting: 'JOURNEY_EVENTS_QUEUE'
    requiresSession: true
  }
  {
    name: 'outbound-messages'
    setting: 'OUTBOUND_MESSAGES_QUEUE'
    requiresSession: false
  }
  {
    name: 'officer-tasks'
    setting: 'OFFICER_TASKS_QUEUE'
    requiresSession: false
  }
]

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
    capacity: (skuName == 'Premium') ? premiumCapacity : null
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: publicNetworkAccess
    zoneRedundant: (skuName == 'Premium')
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = [for q in queues: {
  parent: namespace
  name: q.name
  properties: {
    requiresSession: q.requiresSession
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: defaultMessageTimeToLive
    enablePartitioning: false
    enableBatchedOperations: true
    maxSizeInMegabytes: 1024
  }
}]

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: namespace
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

output id string = namespace.id
output name string = namespace.name
// serviceBusEndpoint is https://NAME.servicebus.windows.net:443/ (the host name differs in national clouds).
output fullyQualifiedNamespace string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]
output caseChangesQueue string = queue[0].name
output journeyEventsQueue string = queue[1].name
output outboundMessagesQueue string = queue[2].name
output officerTasksQueue string = queue[3].name
