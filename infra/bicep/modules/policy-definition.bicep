// The Azure Policy definition that forbids local (key) authentication on the services this
// template deploys: Communication Services, Service Bus, Storage, Application Insights and
// Log Analytics. Assigned with effect Deny to the deployment's resource group by
// policy-assignment.bicep (main.bicep, denyLocalAuthPolicy).
//
// Why it exists: ACS authorises its Entra ID send calls on the resource's own actions, so the
// app identity's custom sender role (roles.bicep) must hold CommunicationServices/Write, the
// write of the whole resource, disableLocalAuth included. RBAC cannot narrow that; a Deny
// policy refuses the request whoever makes it (the app identity, an operator, a later
// deployment), so local auth stays off on every covered resource of the resource group.
//
// Deployed at subscription scope (main.bicep calls it with scope: subscription()): a policy
// definition is a subscription or management group resource and cannot be created in a
// resource group. One definition per subscription, shared by every environment deployed there.
//
// Each condition is the alias of Microsoft's built-in policy for that service ("... should have
// local authentication methods disabled", "Storage accounts should prevent shared key access",
// "... should block non-Azure Active Directory based ingestion"), with one difference for
// Storage: the built-in matches allowSharedKeyAccess equals true only, which misses an account
// where the property is absent (shared keys are then allowed); this one also denies that.

targetScope = 'subscription'

// Its name: one GUID per subscription. (Not a parameter called name: checkov's Bicep graph
// confuses parameters of the same name across files, and then checked the storage account's
// name against this default.)
var definitionName = guid(subscription().id, 'victim-updates-deny-local-auth')

resource denyLocalAuth 'Microsoft.Authorization/policyDefinitions@2023-04-01' = {
  name: definitionName
  properties: {
    policyType: 'Custom'
    mode: 'Indexed'
    displayName: 'Victim Updates: local (key) authentication stays disabled'
    description: 'Denies Communication Services, Service Bus namespaces, storage accounts, Application Insights components and Log Analytics workspaces whose local (key or SAS) authentication is enabled: every client must sign in with Microsoft Entra ID.'
    metadata: {
      category: 'Victim Updates'
      version: '1.0.0'
    }
    parameters: {
      effect: {
        type: 'String'
        allowedValues: [
          'Deny'
          'Audit'
          'Disabled'
        ]
        defaultValue: 'Deny'
        metadata: {
          displayName: 'Effect'
          description: 'Deny refuses the request; Audit only reports it.'
        }
      }
    }
    policyRule: {
      if: {
        anyOf: [
          {
            allOf: [
              {
                field: 'type'
                equals: 'Microsoft.Communication/communicationServices'
              }
              {
                field: 'Microsoft.Communication/communicationServices/disableLocalAuth'
                notEquals: true
              }
            ]
          }
          {
            allOf: [
              {
                field: 'type'
                equals: 'Microsoft.ServiceBus/namespaces'
              }
              {
                field: 'Microsoft.ServiceBus/namespaces/disableLocalAuth'
                notEquals: true
              }
            ]
          }
          {
            allOf: [
              {
                field: 'type'
                equals: 'Microsoft.Storage/storageAccounts'
              }
              {
                anyOf: [
                  {
                    field: 'Microsoft.Storage/storageAccounts/allowSharedKeyAccess'
                    exists: false
                  }
                  {
                    field: 'Microsoft.Storage/storageAccounts/allowSharedKeyAccess'
                    equals: true
                  }
                ]
              }
            ]
          }
          {
            allOf: [
              {
                field: 'type'
                equals: 'Microsoft.Insights/components'
              }
              {
                field: 'Microsoft.Insights/components/DisableLocalAuth'
                notEquals: true
              }
            ]
          }
          {
            allOf: [
              {
                field: 'type'
                equals: 'Microsoft.OperationalInsights/workspaces'
              }
              {
                field: 'Microsoft.OperationalInsights/workspaces/features.disableLocalAuth'
                notEquals: true
              }
            ]
          }
        ]
      }
      then: {
        effect: '[parameters(\'effect\')]'
      }
    }
  }
}

output id string = denyLocalAuth.id
