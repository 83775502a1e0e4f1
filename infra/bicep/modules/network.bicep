// Private networking (deployed only when main.bicep's privateNetworking is true):
// a virtual network with a subnet for the Function App's outbound VNet integration
// (Flex Consumption: delegated to Microsoft.App/environments) and a subnet for the
// private endpoints, each with its own network security group, plus the private DNS
// zones those endpoints register in.
//
// The function subnet's NSG allows outbound only what the app calls (the private
// endpoints, Entra ID, Azure Monitor, Communication Services, the feeds) and denies the
// rest of the Internet. The private endpoint subnet's NSG lets in only the VNet (the app,
// and peered networks such as a build agent or a gateway in front of the victim's page),
// and, for NSG rules to apply to private endpoints at all, the subnet has
// privateEndpointNetworkPolicies Enabled.

@description('Virtual network name.')
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Address space of the virtual network.')
param addressPrefix string

@description('Subnet for the Function App VNet integration (a /27 or larger).')
param functionSubnetPrefix string

@description('Subnet for the private endpoints.')
param privateEndpointSubnetPrefix string

@description('Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsWorkspaceId string

@description('Address prefixes (CIDR) of the Niche and STORM feed endpoints the app polls over HTTPS; empty: no feed rule (the feeds are then unreachable from the VNet).')
param feedEgressAddressPrefixes array

@description('Service tag or address prefix the Communication Services data plane (<name>.communication.azure.com) is reached at.')
param communicationEgressDestination string

// Public-cloud zone names for the private endpoints in private-endpoints.bicep.
// The Azure Monitor private link scope registers in the four monitor zones and in the
// blob zone (its agent solution packs), which the storage endpoints share.
var dnsZoneNames = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  serviceBus: 'privatelink.servicebus.windows.net'
  keyVault: 'privatelink.vaultcore.azure.net'
  sites: 'privatelink.azurewebsites.net'
  monitor: 'privatelink.monitor.azure.com'
  oms: 'privatelink.oms.opinsights.azure.com'
  ods: 'privatelink.ods.opinsights.azure.com'
  agentSvc: 'privatelink.agentsvc.azure-automation.net'
}

// Outbound from the app (function subnet). Lower numbers win; the last rule denies the
// rest of the Internet (Azure's default AllowInternetOutBound sits below it at 65001).
var feedRules = empty(feedEgressAddressPrefixes) ? [] : [
  {
    name: 'allow-feeds-https'
    properties: {
      description: 'The Niche and STORM feed APIs (NICHE_FEED_URL, STORM_FEED_URL).'
      protocol: 'Tcp'
      access: 'Allow'
      direction: 'Outbound'
      priority: 150
      sourceAddressPrefix: functionSubnetPrefix
      sourcePortRange: '*'
      destinationAddressPrefixes: feedEgressAddressPrefixes
      destinationPortRange: '443'
    }
  }
]

var functionOutboundRules = concat([
  {
    name: 'allow-private-endpoints'
    properties: {
      description: 'Storage (blob, table, queue), Service Bus (AMQP 5671-5672 and HTTPS), Key Vault and Azure Monitor through their private endpoints.'
      protocol: 'Tcp'
      access: 'Allow'
      direction: 'Outbound'
      priority: 100
      sourceAddressPrefix: functionSubnetPrefix
      sourcePortRange: '*'
      destinationAddressPrefix: privateEndpointSubnetPrefix
      destinationPortRanges: [
        '443'
        '5671-5672'
      ]
    }
  }
  {
    name: 'allow-entra-id'
    properties: {
      description: 'Entra ID token requests (client secret or certificate flows of Graph and the feeds).'
      protocol: 'Tcp'
      access: 'Allow'
      direction: 'Outbound'
      priority: 110
      sourceAddressPrefix: functionSubnetPrefix
      sourcePortRange: '*'
      destinationAddressPrefix: 'AzureActiveDirectory'
      destinationPortRange: '443'
    }
  }
  {
    name: 'allow-azure-monitor'
    properties: {
      description: 'Azure Monitor endpoints not covered by the private link scope (for example Live Metrics).'
      protocol: 'Tcp'
      access: 'Allow'
      direction: 'Outbound'
      priority: 120
      sourceAddressPrefix: functionSubnetPrefix
      sourcePortRange: '*'
      destinationAddressPrefix: 'AzureMonitor'
      destinationPortRange: '443'
    }
  }
  {
    name: 'allow-communication-services'
    properties: {
      description: 'Azure Communication Services email and SMS (public endpoint: ACS has no private endpoint).'
      protocol: 'Tcp'
      access: 'Allow'
      direction: 'Outbound'
      priority: 130
      sourceAddressPrefix: functionSubnetPrefix
      sourcePortRange: '*'
      destinationAddressPrefix: communicationEgressDestination
      destinationPortRange: '443'
    }
  }
], feedRules, [
  {
    name: 'deny-internet-outbound'
    properties: {
      description: 'Everything else on the Internet.'
      protocol: '*'
      access: 'Deny'
      direction: 'Outbound'
      priority: 4000
      sourceAddressPrefix: '*'
      sourcePortRange: '*'
      destinationAddressPrefix: 'Internet'
      destinationPortRange: '*'
    }
  }
])

resource functionNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-function-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: functionOutboundRules
  }
}

// Inbound to the private endpoints: HTTPS (and AMQP for Service Bus) from the VNet only,
// which includes the function subnet and peered networks; nothing from the Internet.
resource privateEndpointNsg 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: '${name}-pe-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-vnet-https-amqp'
        properties: {
          description: 'The app and peered networks (build agent, gateway of the victim\'s page) to the private endpoints.'
          protocol: 'Tcp'
          access: 'Allow'
          direction: 'Inbound'
          priority: 100
          sourceAddressPrefix: 'VirtualNetwork'
          sourcePortRange: '*'
          destinationAddressPrefix: privateEndpointSubnetPrefix
          destinationPortRanges: [
            '443'
            '5671-5672'
          ]
        }
      }
      {
        name: 'deny-all-inbound'
        properties: {
          description: 'Everything else.'
          protocol: '*'
          access: 'Deny'
          direction: 'Inbound'
          priority: 4000
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-function'
        properties: {
          addressPrefix: functionSubnetPrefix
          networkSecurityGroup: {
            id: functionNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'snet-private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: privateEndpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Enabled' // without it NSG rules do not apply to private endpoints
        }
      }
    ]
  }
}

var zoneKeys = [
  'blob'
  'table'
  'queue'
  'serviceBus'
  'keyVault'
  'sites'
  'monitor'
  'oms'
  'ods'
  'agentSvc'
]

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [for key in zoneKeys: {
  name: dnsZoneNames[key]
  location: 'global'
  tags: tags
}]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [for (key, i) in zoneKeys: {
  parent: zones[i]
  name: '${name}-link'
  location: 'global'
  tags: tags
  properties: {
    registrationEnabled: false
    virtualNetwork: {
      id: vnet.id
    }
  }
}]

resource functionNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: functionNsg
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

resource privateEndpointNsgDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: privateEndpointNsg
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'allLogs'
        enabled: true
      }
    ]
  }
}

output vnetId string = vnet.id
output functionSubnetId string = vnet.properties.subnets[0].id
output privateEndpointSubnetId string = vnet.properties.subnets[1].id
output blobZoneId string = zones[0].id
output tableZoneId string = zones[1].id
output queueZoneId string = zones[2].id
output serviceBusZoneId string = zones[3].id
output keyVaultZoneId string = zones[4].id
output sitesZoneId string = zones[5].id
output monitorZoneIds array = [
  zones[6].id
  zones[7].id
  zones[8].id
  zones[9].id
  zones[0].id
]
