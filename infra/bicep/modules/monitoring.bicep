// Log Analytics workspace (the sink of every diagnostic setting) and a
// workspace-based Application Insights with local (instrumentation key) auth
// switched off: the Functions host ingests with Entra ID through the
// APPLICATIONINSIGHTS_AUTHENTICATION_STRING app setting, which needs the
// Monitoring Metrics Publisher role (roles.bicep).
//
// With private networking, an Azure Monitor private link scope (AMPLS) holds the
// workspace and the component, in PrivateOnly mode for ingestion and query, and both
// switch public ingestion and query off: telemetry goes in, and queries come out, only
// through the scope's private endpoint (private-endpoints.bicep).

@description('Name of the Log Analytics workspace.')
param workspaceName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Days the workspace keeps data (30 to 730).')
@minValue(30)
@maxValue(730)
param retentionInDays int

@description('True: an Azure Monitor private link scope for the workspace and the component, and their public ingestion and query Disabled.')
param privateNetworking bool

@description('Name of the Azure Monitor private link scope (privateNetworking only).')
param privateLinkScopeName string

var publicMonitorAccess = privateNetworking ? 'Disabled' : 'Enabled'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true // queries and agents authenticate with Entra ID only
    }
    publicNetworkAccessForIngestion: publicMonitorAccess
    publicNetworkAccessForQuery: publicMonitorAccess
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
    publicNetworkAccessForIngestion: publicMonitorAccess
    publicNetworkAccessForQuery: publicMonitorAccess
  }
}

resource privateLinkScope 'Microsoft.Insights/privateLinkScopes@2021-07-01-preview' = if (privateNetworking) {
  name: privateLinkScopeName
  location: 'global'
  tags: tags
  properties: {
    accessModeSettings: {
      ingestionAccessMode: 'PrivateOnly'
      queryAccessMode: 'PrivateOnly'
    }
  }
}

resource scopedWorkspace 'Microsoft.Insights/privateLinkScopes/scopedResources@2021-07-01-preview' = if (privateNetworking) {
  parent: privateLinkScope
  name: '${workspaceName}-scoped'
  properties: {
    linkedResourceId: workspace.id
  }
}

resource scopedAppInsights 'Microsoft.Insights/privateLinkScopes/scopedResources@2021-07-01-preview' = if (privateNetworking) {
  parent: privateLinkScope
  name: '${appInsightsName}-scoped'
  properties: {
    linkedResourceId: appInsights.id
  }
}

// No diagnostic setting on the Application Insights component itself: it is
// workspace-based, so its telemetry already lands in this workspace; a diagnostic
// setting would store every record twice.

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
output privateLinkScopeId string = privateNetworking ? privateLinkScope.id : ''
