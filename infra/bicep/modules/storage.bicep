// The one storage account: the state tables the code keeps (shared/steps/records.py),
// the feed records too large for a table row (the quarantined-records container), the
// Functions host storage (AzureWebJobsStorage, identity-based), the Flex Consumption
// deployment container, and the container Event Grid dead-letters undeliverable ACS
// delivery reports to (eventgrid.bicep). Shared keys are off: every
// client signs in with Entra ID (the Function App's user-assigned identity; Event Grid
// with its system topic's identity).

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Redundancy of the account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string

@description('Public network access to the account: Disabled when private endpoints carry the traffic.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string

@description('Prefix of every state table name (STATE_TABLE_PREFIX), empty for none.')
param stateTablePrefix string

@description('Name of the blob container Flex Consumption deploys the app package to.')
param deploymentContainerName string

@description('Name of the blob container Event Grid dead-letters undeliverable delivery reports to.')
param deadLetterContainerName string

@description('Name of the blob container holding the feed records too large for a Table Storage row (StateStorage__blobServiceUri).')
param quarantineContainerName string

@description('Days a dead-lettered delivery report is kept before the lifecycle rule deletes it.')
@minValue(1)
@maxValue(365)
param deadLetterRetentionDays int

@description('Days deleted blobs and containers can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

// The tables the code uses: ALL_TABLES of shared/adapters/table_layout.py, and PageUse, the
// victim's page's rate-limit counters (shared/web/rate_limit.py TABLE); a test keeps them equal.
// The code also creates a missing table on first use; creating them here makes the
// deployment complete without relying on that.
var stateTables = [
  'Cursors'
  'Snapshots'
  'Officers'
  'Journeys'
  'Messages'
  'Audit'
  'Quarantine'
  'Tasks'
  'Crimes'
  'OfficerMail'
  'Deliveries'
  'Links'
  'PageChoices'
  'AccessLog'
  'Retention'
  'PageUse'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false // identity-based access only (AzureWebJobsStorage__credential = managedidentity)
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: (publicNetworkAccess == 'Enabled') ? 'Allow' : 'Deny'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The Functions host's own containers (AzureWebJobsStorage): timer schedule status and
// singleton locks (azure-webjobs-hosts), function keys (azure-webjobs-secrets). The host
// creates them when missing; they are created here so that the app identity's blob roles
// can be scoped to them (roles.bicep) rather than to the whole account.
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]

resource hostContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in hostContainerNames: {
  parent: blobService
  name: container
  properties: {
    publicAccess: 'None'
  }
}]

// Feed records the app keeps but cannot store in a table row (an entity is at most 1 MiB, a
// property 64 KiB; the app puts a record over 200 KiB here), next to the state tables, under the
// blob endpoint of StateStorage__blobServiceUri. They hold victims' personal data: private, and
// only the app identity may read or write them (Storage Blob Data Contributor on this container
// alone, roles.bicep). No lifecycle rule deletes them here: how long one is kept is the app's
// retention policy, and blob soft delete keeps a deleted one blobSoftDeleteDays more.
resource quarantineContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: quarantineContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Event Grid writes a delivery report it could not hand to delivery_report here, one JSON
// blob per event under <SUBSCRIPTION NAME>/<y>/<m>/<d>/<h>/. Only the system topic's
// identity may write to it (role assignment in eventgrid.bicep, scoped to this container).
resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// A delivery report carries the recipient's phone number or email address: a victim's
// contact details are not kept longer than someone needs to look into a failure.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'deleteOldDeliveryReportDeadLetters'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
                'appendBlob'
              ]
              prefixMatch: [
                '${deadLetterContainerName}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: deadLetterRetentionDays
                }
              }
            }
          }
        }
      ]
    }
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for table in stateTables: {
  parent: tableService
  name: '${stateTablePrefix}${table}'
}]

// The queue service is not used by the code or by the host (timer and Service Bus
// triggers only); it is declared so that its logs reach the workspace too.
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource accountDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: account
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: tableService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
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
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
output deadLetterContainerName string = deadLetterContainer.name
output deploymentContainerName string = deploymentContainer.name
output quarantineContainerName string = quarantineContainer.name
output hostContainerNames array = hostContainerNames
