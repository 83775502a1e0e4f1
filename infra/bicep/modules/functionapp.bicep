// The Function App on the Flex Consumption plan (FC1), Python 3.11, running as the
// user-assigned identity, with the app settings the code reads (shared/settings.py).
// A test (tests/integration/test_infra.py) fails if appSettings and the settings model drift apart.

@description('Function App name (also its host name).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource ID of the user-assigned identity.')
param identityId string

@description('Client ID of the user-assigned identity.')
param identityClientId string

@description('Storage account (AzureWebJobsStorage, state tables, deployment container).')
param storageAccountName string

@description('Table endpoint of the storage account.')
param tableEndpoint string

@description('Primary blob endpoint of the same account (https://<account>.blob.core.windows.net/): the quarantined-records container.')
param blobEndpoint string

@description('URL of the deployment blob container.')
param deploymentContainerUrl string

@description('Instance memory in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Spread instances across availability zones.')
param zoneRedundant bool

@description('Subnet for VNet integration, empty for none.')
param virtualNetworkSubnetId string

@description('Subnet for the site\'s inbound private endpoint, empty for none. With one, the site\'s public network access is Disabled: it answers only through the private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone privatelink.azurewebsites.net (with privateEndpointSubnetId).')
param sitesPrivateDnsZoneId string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

@description('Service Bus namespace host name.')
param serviceBusFullyQualifiedNamespace string

@description('Queue names, from servicebus.bicep.')
param caseChangesQueue string
param journeyEventsQueue string
param outboundMessagesQueue string
param officerTasksQueue string

@description('Deliveries before dead-lettering (the queues use the same number).')
param serviceBusMaxDeliveryCount int

@description('ACS endpoint, email sender address and SMS sender.')
param acsEndpoint string
param acsEmailSender string
param acsSmsSender string

@description('Key vault name, and the secret names the app settings refer to.')
param keyVaultName string
param graphClientSecretName string
param feedClientSecretName string
param feedApiKeyName string
param pageSigningKeyName string

@description('Every application setting below is described in main.bicep.')
param stateTablePrefix string
param nichePollSchedule string
param stormPollSchedule string
param journeyPolicyPath string
param feedBatchSize int
param officerCacheTtlHours string
param graphAuth string
param graphTenantId string
param graphClientId string
param graphClientCertificatePath string
param graphClientCertificateThumbprint string
param graphAuthorityHost string
param graphUrl string
param graphEmployeeIdAttribute string
param graphCollarNumberAttribute string
param nicheFeedUrl string
param stormFeedUrl string
param feedAuth string
param feedTenantId string
param feedClientId string
param feedScope string
param feedApiKeyHeader string
param feedPageSize int
param feedStaleMinutes int

var privateInbound = !empty(privateEndpointSubnetId)
var feedsConfigured = !empty(nicheFeedUrl) || !empty(stormFeedUrl)
var graphWithAppRegistration = (graphAuth == 'clientSecret') || (graphAuth == 'clientCertificate')

// The app settings. Empty values are ignored by the settings model (env_ignore_empty),
// so an optional setting left empty keeps its code default. Secrets are Key Vault
// references, resolved with keyVaultReferenceIdentity. Not set on purpose: the
// connection-string alternatives (StateStorage, ServiceBusConnection,
// ACS_CONNECTION_STRING: keys are off everywhere), the embedded-default LOCAL_* paths,
// and what Flex Consumption forbids (FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE...).
var appSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  PYTHON_ENABLE_OPENTELEMETRY: 'true' // the worker makes each invocation's trace context current for the code's spans
  AZURE_CLIENT_ID: identityClientId // DefaultAzureCredential in the code picks the user-assigned identity
  ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  CASE_CHANGES_QUEUE: caseChangesQueue
  JOURNEY_EVENTS_QUEUE: journeyEventsQueue
  OUTBOUND_MESSAGES_QUEUE: outboundMessagesQueue
  OFFICER_TASKS_QUEUE: officerTasksQueue
  SERVICEBUS_MAX_DELIVERY_COUNT: string(serviceBusMaxDeliveryCount)
  StateStorage__tableServiceUri: tableEndpoint
  StateStorage__blobServiceUri: blobEndpoint // the quarantined-records container, with the same identity
  STATE_TABLE_PREFIX: stateTablePrefix
  NICHE_POLL_SCHEDULE: nichePollSchedule
  STORM_POLL_SCHEDULE: stormPollSchedule
  JOURNEY_POLICY_PATH: journeyPolicyPath
  FEED_BATCH_SIZE: string(feedBatchSize)
  OFFICER_CACHE_TTL_HOURS: officerCacheTtlHours
  ACS_ENDPOINT: acsEndpoint
  ACS_EMAIL_SENDER: acsEmailSender
  ACS_SMS_SENDER: acsSmsSender
  GRAPH_TENANT_ID: graphWithAppRegistration ? graphTenantId : ''
  GRAPH_CLIENT_ID: graphWithAppRegistration ? graphClientId : ''
  GRAPH_CLIENT_SECRET: (graphAuth == 'clientSecret') ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${graphClientSecretName})' : ''
  GRAPH_CLIENT_CERTIFICATE_PATH: (graphAuth == 'clientCertificate') ? graphClientCertificatePath : ''
  GRAPH_CLIENT_CERTIFICATE_THUMBPRINT: (graphAuth == 'clientCertificate') ? graphClientCertificateThumbprint : ''
  GRAPH_USE_MANAGED_IDENTITY: (graphAuth == 'managedIdentity') ? 'true' : 'false'
  GRAPH_MANAGED_IDENTITY_CLIENT_ID: (graphAuth == 'managedIdentity') ? identityClientId : ''
  GRAPH_AUTHORITY_HOST: graphAuthorityHost
  GRAPH_URL: graphUrl
  GRAPH_EMPLOYEE_ID_ATTRIBUTE: graphEmployeeIdAttribute
  GRAPH_COLLAR_NUMBER_ATTRIBUTE: graphCollarNumberAttribute
  NICHE_FEED_URL: nicheFeedUrl
  STORM_FEED_URL: stormFeedUrl
  FEED_AUTH: feedAuth
  FEED_TENANT_ID: (feedAuth == 'oauth') ? feedTenantId : ''
  FEED_CLIENT_ID: (feedAuth == 'oauth') ? feedClientId : ''
  FEED_CLIENT_SECRET: (feedsConfigured && (feedAuth == 'oauth')) ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${feedClientSecretName})' : ''
  FEED_SCOPE: feedScope
  FEED_API_KEY_HEADER: feedApiKeyHeader
  FEED_API_KEY: (feedsConfigured && (feedAuth == 'api_key')) ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${feedApiKeyName})' : ''
  FEED_PAGE_SIZE: string(feedPageSize)
  FEED_STALE_MINUTES: string(feedStaleMinutes)
  // The victim's page (shared/web): its form tokens' key, the Key Vault secret page-signing-key
  // (passed once as pageSigningKey or set with az keyvault secret set; at least 32 characters),
  // and GOV.UK Frontend's files, which the published package must contain.
  PAGE_SIGNING_KEY: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${pageSigningKeyName})'
  WEB_ASSETS_DIR: 'node_modules/govuk-frontend/dist/govuk'
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Private networking: inbound only through the private endpoint below (main and scm
    // sites alike). The victim's page, code deployment and Event Grid's delivery reports
    // then need a path into the VNet: infra/bicep/README.md, Private networking.
    publicNetworkAccess: privateInbound ? 'Disabled' : 'Enabled'
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic (user name and password) publishing: deploy with Entra ID (az login).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// The inbound private endpoint of the site (groupId sites), registered in
// privatelink.azurewebsites.net so that <name>.azurewebsites.net and its scm name resolve
// to it inside the VNet.
resource sitePrivateEndpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = if (privateInbound) {
  name: '${name}-site-pe'
  location: location
  tags: tags
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: '${name}-site'
        properties: {
          privateLinkServiceId: site.id
          groupIds: [
            'sites'
          ]
        }
      }
    ]
  }
}

resource sitePrivateDnsZoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = if (privateInbound) {
  parent: sitePrivateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'sites'
        properties: {
          privateDnsZoneId: sitesPrivateDnsZoneId
        }
      }
    ]
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: site
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
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

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
// The value of the TXT record asuid.<host name> that proves the force owns a custom host name.
output customDomainVerificationId string = site.properties.customDomainVerificationId
