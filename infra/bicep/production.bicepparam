// Production parameters: main.bicepparam with private networking on. Change the values
// marked CHANGE, then:
//   az deployment group create -g <resource group> -f infra/bicep/main.bicep -p infra/bicep/production.bicepparam
// Read infra/bicep/README.md, Private networking, first: with it the Function App answers
// only through its private endpoint, so the victim's page needs a gateway into the VNet,
// code is published from inside the VNet, and Event Grid cannot push delivery reports.
// Secret values are never written here: pass them on the command line
// (-p graphClientSecret=...) or, better, set them in Key Vault after deployment.
using 'main.bicep'

param baseName = 'victimupd'
param environmentName = 'prod'
param tags = {
  owner: 'force-it' // CHANGE
  costCentre: 'victim-services' // CHANGE
}

// Networking: Storage, Service Bus (Premium), Key Vault, the Function App and Azure Monitor
// behind private endpoints, public network access off; outbound NSG rules on the app's subnet.
param privateNetworking = true
param vnetAddressPrefix = '10.40.0.0/16' // CHANGE to a range free in the force's network
param functionSubnetPrefix = '10.40.0.0/24'
param privateEndpointSubnetPrefix = '10.40.1.0/24'
param feedEgressAddressPrefixes = [] // CHANGE: the Niche and STORM gateways' addresses (CIDR)
param communicationEgressDestination = 'AzureFrontDoor.Frontend'

// Local authentication: an Azure Policy (definition at the subscription, assignment on this
// resource group, effect Deny) keeps key, SAS and instrumentation-key authentication off on
// Communication Services, Service Bus, Storage, Application Insights and Log Analytics, whoever
// asks. The deployer needs policy rights at the subscription (infra/bicep/README.md, Role
// assignments); without them, set false and have the subscription's owner assign it.
param denyLocalAuthPolicy = true

// Function App (Flex Consumption, Python 3.11)
param instanceMemoryMB = 2048
param maximumInstanceCount = 40
param zoneRedundant = false

// Storage
param storageSku = 'Standard_GZRS'
param blobSoftDeleteDays = 14

// Service Bus
param serviceBusSku = 'Premium' // privateNetworking forces it anyway
param duplicateDetectionWindow = 'PT1H'
param maxDeliveryCount = 10
param lockDuration = 'PT1M'
param messageTimeToLive = 'P400D'

// Azure Communication Services
param acsDataLocation = 'UK'
param customEmailDomain = '' // CHANGE to the force's sending domain once DNS can be edited
param customEmailDomainVerified = false
param smsSender = 'VictimCare' // CHANGE: the registered alphanumeric sender ID or number

// Delivery reports (Event Grid). Stays false here: Event Grid pushes to the app's public
// endpoint, which private networking switches off (infra/bicep/README.md, Private networking).
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
