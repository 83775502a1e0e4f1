// Azure Communication Services (email and SMS) with an Email Communication Service and
// its domain. Local (access key) auth is off: the app sends with Entra ID through
// ACS_ENDPOINT and the Function App's identity (role in roles.bicep).
//
// The Azure-managed domain (DoNotReply@<guid>.azurecomm.net) works at once. A custom
// domain needs DNS records (see the customDomainVerificationRecords output) and a
// verification in the portal before it can be linked: deploy once with
// customEmailDomain set, add the records, verify, then deploy again with
// customEmailDomainVerified = true to link it and send from it.

@description('Communication Services resource name.')
param name string

@description('Email Communication Service name.')
param emailServiceName string

@description('Tags for every resource.')
param tags object

@description('Where ACS keeps data at rest (for example UK, Europe).')
param dataLocation string

@description('A custom email domain (for example updates.police.example); empty: the Azure-managed domain only.')
param customEmailDomain string

@description('True once the custom domain passed DNS verification: link it and send from it.')
param customEmailDomainVerified bool

@description('Display name of the DoNotReply sender on a custom domain.')
param senderDisplayName string

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

var useCustomDomain = !empty(customEmailDomain)
var sendFromCustomDomain = useCustomDomain && customEmailDomainVerified

resource emailService 'Microsoft.Communication/emailServices@2025-05-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource azureManagedDomain 'Microsoft.Communication/emailServices/domains@2025-05-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled' // no tracking pixels or rewritten links in messages to victims
  }
}

resource customDomain 'Microsoft.Communication/emailServices/domains@2025-05-01' = if (useCustomDomain) {
  parent: emailService
  name: useCustomDomain ? customEmailDomain : 'unused'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'CustomerManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource customDomainSender 'Microsoft.Communication/emailServices/domains/senderUsernames@2025-05-01' = if (useCustomDomain) {
  parent: customDomain
  name: 'donotreply'
  properties: {
    username: 'DoNotReply'
    displayName: senderDisplayName
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: name
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    disableLocalAuth: true
    linkedDomains: sendFromCustomDomain ? [
      azureManagedDomain.id
      customDomain.id
    ] : [
      azureManagedDomain.id
    ]
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: communicationService
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

output id string = communicationService.id
output name string = communicationService.name
output endpoint string = 'https://${communicationService.properties.hostName}'
output emailSender string = sendFromCustomDomain ? 'DoNotReply@${customDomain.properties.mailFromSenderDomain}' : 'DoNotReply@${azureManagedDomain.properties.mailFromSenderDomain}'
output customDomainVerificationRecords object = useCustomDomain ? customDomain.properties.verificationRecords : {}
