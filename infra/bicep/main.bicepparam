// Parameters for one environment. Copy this file per environment (dev, test, prod),
// change the values marked CHANGE, then:
//   az deployment group create -g <resource group> -f infra/bicep/main.bicep -p infra/bicep/main.bicepparam
// Secret values are never written here: pass them on the command line
// (-p graphClientSecret=...) or, better, set them in Key Vault after deployment.
using 'main.bicep'

param baseName = 'victimupd'
param environmentName = 'prod'
param tags = {
  owner: 'force-it' // CHANGE
  costCentre: 'victim-services' // CHANGE
}

// Networking: true puts Storage, Service Bus (Premium) and Key Vault behind private endpoints.
param privateNetworking = false

// Local authentication: true assigns the deny policy of production.bicepparam (needs policy
// rights at the subscription: infra/bicep/README.md, Role assignments).
param denyLocalAuthPolicy = false

// Function App (Flex Consumption, Python 3.11)
param instanceMemoryMB = 2048
param maximumInstanceCount = 40
param zoneRedundant = false

// Storage
param storageSku = 'Standard_GZRS'
param blobSoftDeleteDays = 14

// Service Bus
param serviceBusSku = 'Standard'
param duplicateDetectionWindow = 'PT1H'
param maxDeliveryCount = 10
param lockDuration = 'PT1M'
param messageTimeToLive = 'P400D'

// Azure Communication Services
param acsDataLocation = 'UK'
param customEmailDomain = '' // CHANGE to the force's sending domain once DNS can be edited
param customEmailDomainVerified = false
param smsSender = 'VictimCare' // CHANGE: the registered alphanumeric sender ID or number

// Delivery reports (Event Grid). Second step: false on the first deployment; true once
// the code is published with func azure functionapp publish (infra/bicep/README.md).
param deliveryReportSubscription = false
param deadLetterRetentionDays = 30

// The victim's page on the force's own host name (at most 20 characters, for example
// vu.police.uk). Empty: not bound. Set it once the DNS records exist (CNAME and asuid TXT),
// then, once bound, victimPageCertificate = true for its managed certificate; the policy's
// force.link_base_url must then be https://<that name> (infra/bicep/README.md).
// The page's signing key is never written here: -p pageSigningKey=$(openssl rand -hex 32) once,
// or az keyvault secret set -n page-signing-key.
param victimPageHostName = '' // CHANGE
param victimPageCertificate = false

// Monitoring: the workbook is always deployed; the alert rules need the IT team's mailbox.
param logRetentionDays = 90
param deployAlerts = true
param alertEmail = '' // CHANGE: the IT team's mailbox; the deployment fails while it is empty and deployAlerts is true
param failureRateThresholdPercent = 10
param providerFailureThreshold = 0

// Officer directory: none, clientSecret, clientCertificate or managedIdentity
param graphAuth = 'none' // CHANGE
param graphClientId = ''
param graphCollarNumberAttribute = ''

// Feeds from the force's integration layer
param nicheFeedUrl = '' // CHANGE
param stormFeedUrl = '' // CHANGE
param feedAuth = 'oauth'
param feedClientId = ''
param feedScope = ''

// Pipeline
param nichePollSchedule = '0 */5 * * * *'
param stormPollSchedule = '0 */5 * * * *'
