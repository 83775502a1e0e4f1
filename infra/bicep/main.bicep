// Victim Updates: the Azure deployment, secure by default.
//
//   az deployment group create -g <resource group> -f infra/bicep/main.bicep -p infra/bicep/main.bicepparam
//
// One module per concern under modules/. Every data-plane access uses the Function
// App's user-assigned managed identity and Entra ID: shared keys, SAS and ACS access
// keys are switched off, and the few remaining secrets live in Key Vault.
// README.md in this folder describes the parameters and the steps after deployment.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------- naming and placement

@description('Azure region of the regional resources (must offer Flex Consumption, for example uksouth).')
param location string = resourceGroup().location

@description('Short lowercase name of the service, used in every resource name.')
@minLength(3)
@maxLength(12)
param baseName string = 'victimupd'

@description('Environment name, for example dev, test or prod.')
@minLength(2)
@maxLength(8)
param environmentName string = 'prod'

@description('Tags applied to every resource.')
param tags object = {}

// ---------------------------------------------------------------- networking

@description('True: VNet integration for the Function App with outbound NSG rules; private endpoints (with private DNS) for Storage, Service Bus, Key Vault, the Function App itself and an Azure Monitor private link scope (Application Insights and Log Analytics), whose public network access is then switched off. Forces the Premium Service Bus tier. production.bicepparam sets it.')
param privateNetworking bool = false

@description('Address space of the virtual network (privateNetworking only).')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Subnet delegated to Microsoft.App/environments for the Function App VNet integration (privateNetworking only).')
param functionSubnetPrefix string = '10.40.0.0/24'

@description('Subnet for the private endpoints (privateNetworking only).')
param privateEndpointSubnetPrefix string = '10.40.1.0/24'

@description('Address prefixes (CIDR) of the Niche and STORM feed endpoints, allowed out of the function subnet on 443 (privateNetworking only); empty: the feeds are unreachable.')
param feedEgressAddressPrefixes array = []

@description('Service tag or address prefix through which the function subnet reaches the Communication Services endpoint on 443 (privateNetworking only). Check what <communicationServiceEndpoint> resolves to in your tenant before relying on it.')
param communicationEgressDestination string = 'AzureFrontDoor.Frontend'

// ---------------------------------------------------------------- local authentication policy

@description('True: an Azure Policy definition (at the subscription) and its assignment to this resource group, effect Deny, that refuse Communication Services, Service Bus, storage accounts, Application Insights and Log Analytics with local (key) authentication enabled, whoever asks: the app identity, whose sender role must hold Communication Services Write, cannot turn ACS keys back on. Needs Microsoft.Authorization/policyDefinitions/write and Microsoft.Resources/deployments/write at the subscription (Owner there, or Resource Policy Contributor with Contributor), beyond the resource group rights the rest needs. production.bicepparam sets it.')
param denyLocalAuthPolicy bool = false

// ---------------------------------------------------------------- Function App (Flex Consumption)

@description('Memory of each Function App instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the Function App scales out to (Flex Consumption: 40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Spread the Function App across availability zones. Flex Consumption then keeps at least two always-ready (billed) instances per function or function group.')
param zoneRedundant bool = false

// ---------------------------------------------------------------- storage

@description('Redundancy of the storage account (state tables, host storage, deployment packages). GZRS: three zones in the region plus a copy in the paired region (UK West for UK South).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_GZRS'

@description('Public network access to the storage account when privateNetworking is false (privateNetworking forces Disabled). Disabled without private endpoints leaves the app unable to reach its storage.')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Enabled'

@description('Days deleted blobs and containers can be restored.')
@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 14

@description('STATE_TABLE_PREFIX: prefix of every state table name (letters and digits), empty for none.')
@maxLength(20)
param stateTablePrefix string = ''

// ---------------------------------------------------------------- Service Bus

@description('Service Bus tier; privateNetworking forces Premium (private endpoints need it).')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Premium messaging units.')
@allowed([
  1
  2
  4
  8
  16
])
param serviceBusPremiumCapacity int = 1

@description('Duplicate detection history window of every queue (ISO 8601, PT20S to P7D).')
param duplicateDetectionWindow string = 'PT1H'

@description('Deliveries before a message is dead-lettered; also SERVICEBUS_MAX_DELIVERY_COUNT.')
@minValue(1)
@maxValue(2000)
param maxDeliveryCount int = 10

@description('Peek-lock duration of every queue (ISO 8601, at most PT5M).')
param lockDuration string = 'PT1M'

@description('Time a message may wait before it expires into the dead-letter queue (ISO 8601). Longer than the furthest re-evaluation the code schedules (a check-in up to 365 days ahead), so a scheduled message never expires before it is due.')
param messageTimeToLive string = 'P400D'

// ---------------------------------------------------------------- Communication Services

@description('Where ACS and the email service keep data at rest.')
param acsDataLocation string = 'UK'

@description('Custom email domain; empty: send from the Azure-managed domain.')
param customEmailDomain string = ''

@description('True once the custom domain passed DNS verification (second deployment): link it and send from it.')
param customEmailDomainVerified bool = false

@description('Display name of the DoNotReply sender on the custom domain.')
param emailSenderDisplayName string = 'Victim Updates'

@description('ACS_SMS_SENDER: the alphanumeric sender ID or the E.164 number SMS are sent from (enabled on the ACS resource after deployment).')
@minLength(1)
@maxLength(16)
param smsSender string

// ---------------------------------------------------------------- delivery reports (Event Grid)

@description('Second deployment step: subscribe the delivery_report function to the ACS email and SMS delivery reports. False on the first deployment (Event Grid checks that the function exists); true once the code is published.')
param deliveryReportSubscription bool = false

@description('Days an undeliverable (dead-lettered) delivery report is kept in its blob container before it is deleted; it holds the recipient\'s phone number or email address.')
@minValue(1)
@maxValue(365)
param deadLetterRetentionDays int = 30

// ---------------------------------------------------------------- the victim's page (custom domain)

@description('Host name of the victim\'s page, for example vu.police.uk; empty: no custom domain. The policy\'s force.link_base_url must be https:// and this name (at most 28 characters, hence 20 here). Set it once the DNS records (CNAME and asuid TXT) exist: the name is then bound to the Function App.')
@maxLength(20)
param victimPageHostName string = ''

@description('Second step of the custom domain: true once victimPageHostName is bound, to issue its App Service managed certificate and bind it with SNI; kept true after.')
param victimPageCertificate bool = false

// ---------------------------------------------------------------- monitoring

@description('Days the Log Analytics workspace keeps data.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@description('Deploy the alert rules (dead letters, stale feed, function failure rate, provider failures, deadline breaches) and their action group.')
param deployAlerts bool = true

@description('Email address of the IT team that receives the alerts; required (non-empty) when deployAlerts is true.')
param alertEmail string = ''

@description('The function failure alert fires when more than this percentage of a function\'s invocations fail in 15 minutes.')
@minValue(1)
@maxValue(100)
param failureRateThresholdPercent int = 10

@description('The provider failure alert fires when more than this many provider failures (ACS unavailable, credentials refused, messages rejected) occur in 15 minutes; 0: any.')
@minValue(0)
param providerFailureThreshold int = 0

// ---------------------------------------------------------------- secrets (Key Vault)

@description('Graph client secret to store in Key Vault (graphAuth clientSecret). Leave empty to keep the stored one or to set it with az keyvault secret set.')
@secure()
param graphClientSecret string = ''

@description('Feed OAuth client secret to store in Key Vault (feedAuth oauth). Leave empty to keep the stored one.')
@secure()
param feedClientSecret string = ''

@description('Feed API key to store in Key Vault (feedAuth api_key). Leave empty to keep the stored one.')
@secure()
param feedApiKey string = ''

@description('PAGE_SIGNING_KEY: the key of the victim\'s page form tokens, to store in Key Vault as page-signing-key (make it with openssl rand -hex 32; at least 32 characters). Pass it once, or set the secret with az keyvault secret set; leave empty to keep the stored one.')
@secure()
param pageSigningKey string = ''

@description('Lifetime stamped as the expiry of a secret written by this deployment, in days.')
@minValue(1)
@maxValue(730)
param secretLifetimeDays int = 365

@description('Deployment time; leave the default.')
param deploymentTime string = utcNow()

@description('Object ID of an Entra group allowed to set the Key Vault secrets (Key Vault Secrets Officer); empty for none.')
param secretsOfficerGroupId string = ''

// ---------------------------------------------------------------- application settings

@description('NICHE_POLL_SCHEDULE: NCRONTAB schedule of ingest_niche (six fields, seconds first).')
param nichePollSchedule string = '0 */5 * * * *'

@description('STORM_POLL_SCHEDULE: NCRONTAB schedule of ingest_storm.')
param stormPollSchedule string = '0 */5 * * * *'

@description('JOURNEY_POLICY_PATH: path of the journey policy inside the package; empty: the shipped policy.')
param journeyPolicyPath string = ''

@description('FEED_BATCH_SIZE: most records one ingest tick reads.')
@minValue(1)
@maxValue(10000)
param feedBatchSize int = 500

@description('OFFICER_CACHE_TTL_HOURS: how long a directory entry is trusted (a number of hours).')
param officerCacheTtlHours string = '24'

@description('Officer directory: none (the generic local policing team contact), clientSecret or clientCertificate (an app registration with User.Read.All), or managedIdentity (the Function App identity, granted User.Read.All on Graph after deployment).')
@allowed([
  'none'
  'clientSecret'
  'clientCertificate'
  'managedIdentity'
])
param graphAuth string = 'none'

@description('GRAPH_TENANT_ID: tenant of the Graph app registration; empty: this tenant.')
param graphTenantId string = ''

@description('GRAPH_CLIENT_ID: client ID of the Graph app registration (clientSecret, clientCertificate).')
param graphClientId string = ''

@description('GRAPH_CLIENT_CERTIFICATE_PATH: PEM file (certificate and key) inside the package (clientCertificate).')
param graphClientCertificatePath string = ''

@description('GRAPH_CLIENT_CERTIFICATE_THUMBPRINT: thumbprint of that certificate (clientCertificate).')
param graphClientCertificateThumbprint string = ''

@description('GRAPH_AUTHORITY_HOST: the Entra ID authority host.')
param graphAuthorityHost string = 'https://login.microsoftonline.com'

@description('GRAPH_URL: the Microsoft Graph endpoint.')
param graphUrl string = 'https://graph.microsoft.com'

@description('GRAPH_EMPLOYEE_ID_ATTRIBUTE: user attribute holding the Niche employee id.')
param graphEmployeeIdAttribute string = 'employeeId'

@description('GRAPH_COLLAR_NUMBER_ATTRIBUTE: user attribute holding the collar number; empty for none.')
param graphCollarNumberAttribute string = ''

@description('NICHE_FEED_URL: the Niche feed API (https); empty: no Niche feed.')
param nicheFeedUrl string = ''

@description('STORM_FEED_URL: the STORM feed API (https); empty: no STORM feed.')
param stormFeedUrl string = ''

@description('FEED_AUTH: how the feed APIs are called.')
@allowed([
  'oauth'
  'managed_identity'
  'api_key'
])
param feedAuth string = 'oauth'

@description('FEED_TENANT_ID: tenant of the feed OAuth client (oauth); empty: this tenant.')
param feedTenantId string = ''

@description('FEED_CLIENT_ID: client ID of the feed OAuth client (oauth).')
param feedClientId string = ''

@description('FEED_SCOPE: OAuth scope of the feed APIs (oauth, managed_identity), for example api://niche-gateway/.default.')
param feedScope string = ''

@description('FEED_API_KEY_HEADER: header carrying the API key (api_key).')
param feedApiKeyHeader string = 'Ocp-Apim-Subscription-Key'

@description('FEED_PAGE_SIZE: records asked for per page.')
@minValue(1)
@maxValue(1000)
param feedPageSize int = 100

@description('FEED_STALE_MINUTES: a feed silent this long in working hours raises FeedStale.')
@minValue(5)
@maxValue(10080)
param feedStaleMinutes int = 60

// ---------------------------------------------------------------- derived values

var suffix = uniqueString(resourceGroup().id, baseName, environmentName)
var prefix = '${toLower(baseName)}-${toLower(environmentName)}'
var compactBase = replace(toLower(baseName), '-', '')
var serviceBusTier = privateNetworking ? 'Premium' : serviceBusSku
var storageNetworkAccess = privateNetworking ? 'Disabled' : storagePublicNetworkAccess
var privateServicesNetworkAccess = privateNetworking ? 'Disabled' : 'Enabled'
var allTags = union(tags, {
  service: 'victim-updates'
  environment: environmentName
})

var names = {
  identity: 'id-${prefix}'
  workspace: 'log-${prefix}'
  appInsights: 'appi-${prefix}'
  storage: 'st${take(compactBase, 9)}${take(suffix, 13)}'
  serviceBus: 'sb-${prefix}-${take(suffix, 6)}'
  keyVault: 'kv-${take(compactBase, 8)}-${take(suffix, 12)}'
  communication: 'acs-${prefix}-${take(suffix, 6)}'
  emailService: 'ecs-${prefix}-${take(suffix, 6)}'
  plan: 'asp-${prefix}'
  functionApp: 'func-${prefix}-${take(suffix, 6)}'
  vnet: 'vnet-${prefix}'
  monitorPrivateLinkScope: 'ampls-${prefix}'
  deploymentContainer: 'app-package'
  eventGridTopic: 'egst-${prefix}-acs'
  deadLetterContainer: 'delivery-report-dead-letters'
  quarantineContainer: 'quarantined-records' // feed records too large for a table row (StateStorage__blobServiceUri)
  deliveryReportFunction: 'delivery_report' // the Event Grid-triggered function in function_app.py
}

// ---------------------------------------------------------------- modules

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: names.workspace
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    privateNetworking: privateNetworking
    privateLinkScopeName: names.monitorPrivateLinkScope
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: allTags
    skuName: storageSku
    publicNetworkAccess: storageNetworkAccess
    stateTablePrefix: stateTablePrefix
    deploymentContainerName: names.deploymentContainer
    deadLetterContainerName: names.deadLetterContainer
    quarantineContainerName: names.quarantineContainer
    deadLetterRetentionDays: deadLetterRetentionDays
    softDeleteRetentionDays: blobSoftDeleteDays
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: names.serviceBus
    location: location
    tags: allTags
    skuName: serviceBusTier
    premiumCapacity: serviceBusPremiumCapacity
    publicNetworkAccess: privateServicesNetworkAccess
    duplicateDetectionWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    lockDuration: lockDuration
    defaultMessageTimeToLive: messageTimeToLive
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    publicNetworkAccess: privateServicesNetworkAccess
    graphClientSecret: graphClientSecret
    feedClientSecret: feedClientSecret
    feedApiKey: feedApiKey
    pageSigningKey: pageSigningKey
    secretExpiry: dateTimeToEpoch(dateTimeAdd(deploymentTime, 'P${secretLifetimeDays}D'))
    secretsOfficerPrincipalId: secretsOfficerGroupId
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module communication 'modules/communication.bicep' = {
  name: 'communication'
  params: {
    name: names.communication
    emailServiceName: names.emailService
    tags: allTags
    dataLocation: acsDataLocation
    customEmailDomain: customEmailDomain
    customEmailDomainVerified: customEmailDomainVerified
    senderDisplayName: emailSenderDisplayName
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  params: {
    name: names.vnet
    location: location
    tags: allTags
    addressPrefix: vnetAddressPrefix
    functionSubnetPrefix: functionSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    feedEgressAddressPrefixes: feedEgressAddressPrefixes
    communicationEgressDestination: communicationEgressDestination
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module privateEndpoints 'modules/private-endpoints.bicep' = if (privateNetworking) {
  name: 'private-endpoints'
  params: {
    location: location
    tags: allTags
    namePrefix: prefix
    subnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    storageAccountId: storage.outputs.id
    serviceBusNamespaceId: serviceBus.outputs.id
    keyVaultId: keyVault.outputs.id
    monitorPrivateLinkScopeId: monitoring.outputs.privateLinkScopeId
    blobZoneId: privateNetworking ? network.outputs.blobZoneId : ''
    tableZoneId: privateNetworking ? network.outputs.tableZoneId : ''
    queueZoneId: privateNetworking ? network.outputs.queueZoneId : ''
    serviceBusZoneId: privateNetworking ? network.outputs.serviceBusZoneId : ''
    keyVaultZoneId: privateNetworking ? network.outputs.keyVaultZoneId : ''
    monitorZoneIds: privateNetworking ? network.outputs.monitorZoneIds : []
  }
}

// The deny policy on local authentication: the definition lives at the subscription (a policy
// definition cannot be created in a resource group), the assignment on this resource group only.
module localAuthPolicyDefinition 'modules/policy-definition.bicep' = if (denyLocalAuthPolicy) {
  name: 'local-auth-policy-definition-${take(suffix, 8)}' // a subscription deployment: unique per resource group
  scope: subscription()
}

module localAuthPolicy 'modules/policy-assignment.bicep' = if (denyLocalAuthPolicy) {
  name: 'local-auth-policy'
  params: {
    assignmentName: 'deny-local-auth-${prefix}'
    policyDefinitionId: denyLocalAuthPolicy ? localAuthPolicyDefinition.outputs.id : ''
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    hostContainerNames: storage.outputs.hostContainerNames
    deploymentContainerName: storage.outputs.deploymentContainerName
    quarantineContainerName: storage.outputs.quarantineContainerName
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    communicationServiceName: communication.outputs.name
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  dependsOn: [
    roles // the host starts with its storage, queue and secret access already granted
    privateEndpoints
  ]
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    tableEndpoint: storage.outputs.tableEndpoint
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    zoneRedundant: zoneRedundant
    virtualNetworkSubnetId: privateNetworking ? network.outputs.functionSubnetId : ''
    privateEndpointSubnetId: privateNetworking ? network.outputs.privateEndpointSubnetId : ''
    sitesPrivateDnsZoneId: privateNetworking ? network.outputs.sitesZoneId : ''
    appInsightsConnectionString: monitoring.outputs.connectionString
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    caseChangesQueue: serviceBus.outputs.caseChangesQueue
    journeyEventsQueue: serviceBus.outputs.journeyEventsQueue
    outboundMessagesQueue: serviceBus.outputs.outboundMessagesQueue
    officerTasksQueue: serviceBus.outputs.officerTasksQueue
    serviceBusMaxDeliveryCount: maxDeliveryCount
    acsEndpoint: communication.outputs.endpoint
    acsEmailSender: communication.outputs.emailSender
    acsSmsSender: smsSender
    keyVaultName: keyVault.outputs.name
    graphClientSecretName: keyVault.outputs.graphClientSecretName
    feedClientSecretName: keyVault.outputs.feedClientSecretName
    feedApiKeyName: keyVault.outputs.feedApiKeyName
    pageSigningKeyName: keyVault.outputs.pageSigningKeyName
    stateTablePrefix: stateTablePrefix
    nichePollSchedule: nichePollSchedule
    stormPollSchedule: stormPollSchedule
    journeyPolicyPath: journeyPolicyPath
    feedBatchSize: feedBatchSize
    officerCacheTtlHours: officerCacheTtlHours
    graphAuth: graphAuth
    graphTenantId: empty(graphTenantId) ? tenant().tenantId : graphTenantId
    graphClientId: graphClientId
    graphClientCertificatePath: graphClientCertificatePath
    graphClientCertificateThumbprint: graphClientCertificateThumbprint
    graphAuthorityHost: graphAuthorityHost
    graphUrl: graphUrl
    graphEmployeeIdAttribute: graphEmployeeIdAttribute
    graphCollarNumberAttribute: graphCollarNumberAttribute
    nicheFeedUrl: nicheFeedUrl
    stormFeedUrl: stormFeedUrl
    feedAuth: feedAuth
    feedTenantId: empty(feedTenantId) ? tenant().tenantId : feedTenantId
    feedClientId: feedClientId
    feedScope: feedScope
    feedApiKeyHeader: feedApiKeyHeader
    feedPageSize: feedPageSize
    feedStaleMinutes: feedStaleMinutes
  }
}

// The system topic on ACS, its dead-letter role, and (second step) the subscription
// that hands delivery reports to delivery_report.
module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    name: names.eventGridTopic
    tags: allTags
    communicationServiceName: communication.outputs.name
    functionAppName: functionApp.outputs.name
    functionName: names.deliveryReportFunction
    storageAccountName: storage.outputs.name
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    deploySubscription: deliveryReportSubscription
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

// The victim's page on the force's host name: bound first, then (victimPageCertificate) with its
// managed certificate; nothing at all while victimPageHostName is empty.
module pageDomain 'modules/pagedomain.bicep' = if (!empty(victimPageHostName)) {
  name: 'pagedomain'
  params: {
    functionAppName: functionApp.outputs.name
    location: location
    tags: allTags
    hostName: victimPageHostName
    issueCertificate: victimPageCertificate
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    name: guid(resourceGroup().id, baseName, environmentName, 'operations-workbook')
    displayName: 'Victim Updates operations (${environmentName})'
    location: location
    tags: allTags
    appInsightsId: monitoring.outputs.appInsightsId
    workspaceId: monitoring.outputs.workspaceId
    serviceBusNamespaceId: serviceBus.outputs.id
  }
}

module alerts 'modules/alerts.bicep' = if (deployAlerts) {
  name: 'alerts'
  params: {
    namePrefix: prefix
    location: location
    tags: allTags
    alertEmail: alertEmail // the module requires it non-empty, so deployAlerts without it fails
    workspaceId: monitoring.outputs.workspaceId
    serviceBusNamespaceId: serviceBus.outputs.id
    failureRateThresholdPercent: failureRateThresholdPercent
    providerFailureThreshold: providerFailureThreshold
  }
}

// ---------------------------------------------------------------- outputs

output functionAppName string = functionApp.outputs.name
output functionAppDefaultHostName string = functionApp.outputs.defaultHostName
output functionAppCustomDomainVerificationId string = functionApp.outputs.customDomainVerificationId
output victimPageLinkBaseUrl string = empty(victimPageHostName) ? '' : 'https://${victimPageHostName}'
output applicationInsightsName string = monitoring.outputs.appInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName
output serviceBusNamespaceName string = serviceBus.outputs.name
output serviceBusFullyQualifiedNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output storageAccountName string = storage.outputs.name
output keyVaultName string = keyVault.outputs.name
output communicationServiceName string = communication.outputs.name
output communicationServiceEndpoint string = communication.outputs.endpoint
output emailSenderAddress string = communication.outputs.emailSender
output customDomainVerificationRecords object = communication.outputs.customDomainVerificationRecords
output eventGridSystemTopicName string = eventGrid.outputs.systemTopicName
output deadLetterContainerName string = storage.outputs.deadLetterContainerName
output managedIdentityName string = identity.outputs.name
output managedIdentityClientId string = identity.outputs.clientId
output managedIdentityPrincipalId string = identity.outputs.principalId
