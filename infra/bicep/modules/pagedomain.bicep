// The victim's page on the force's own host name (journey-rules.md §13): every personal link
// is force.link_base_url (the policy) + "/" + an id, and link_base_url must be
// https://<this host name>. Deployed by main.bicep only when victimPageHostName is set.
//
// App Service checks who owns the name when the binding is made, so the DNS records come
// first: CNAME <host> -> the app's default host name, and TXT asuid.<host> -> the app's
// customDomainVerificationId (main.bicep outputs both). A managed certificate can only be
// issued for a name already bound to the app, and the SNI binding needs the certificate's
// thumbprint, so it takes two deployments (infra/bicep/README.md, "The victim's page"):
//   1. issueCertificate false: the binding, without TLS (sslState Disabled);
//   2. issueCertificate true:  the App Service managed certificate for the name and the
//      binding again, now SniEnabled with its thumbprint. Kept true after that.
// Declaring the binding once, with its TLS state chosen by the parameter, means a later
// deployment never takes TLS off the name, even for a moment.

@description('Function App name (an existing site in this resource group).')
param functionAppName string

@description('Azure region (the certificate resource).')
param location string

@description('Tags for every resource.')
param tags object

@description('The host name of the page, for example vu.police.uk (no scheme, no path).')
@minLength(4)
@maxLength(20)
param hostName string

@description('False: bind the name without TLS (first step). True: issue the managed certificate and bind it with SNI (second step).')
param issueCertificate bool

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

// An App Service managed certificate (free, renewed by App Service before it expires).
// Flex Consumption keeps certificates per app (site-scoped), hence sites/certificates
// rather than the plan-wide Microsoft.Web/certificates. canonicalName asks for a managed
// certificate, validated through the CNAME.
resource certificate 'Microsoft.Web/sites/certificates@2024-11-01' = if (issueCertificate) {
  parent: site
  name: 'victim-page'
  location: location
  tags: tags
  properties: {
    canonicalName: hostName
  }
}

resource binding 'Microsoft.Web/sites/hostNameBindings@2024-04-01' = {
  parent: site
  name: hostName
  properties: {
    siteName: functionAppName
    hostNameType: 'Verified'
    customHostNameDnsRecordType: 'CName'
    sslState: issueCertificate ? 'SniEnabled' : 'Disabled'
    thumbprint: issueCertificate ? certificate.properties.thumbprint : null
  }
}

output hostName string = binding.name
output linkBaseUrl string = 'https://${hostName}'
