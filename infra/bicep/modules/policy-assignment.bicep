// The assignment of policy-definition.bicep to this deployment's resource group, effect Deny:
// from then on Azure Resource Manager refuses any request, from anyone, that would create or
// update a Communication Services resource, Service Bus namespace, storage account,
// Application Insights component or Log Analytics workspace in the group with local (key)
// authentication enabled. Deployed when main.bicep's denyLocalAuthPolicy is true.
//
// The resource group is the narrowest scope that covers every resource of the deployment, and
// leaves the rest of the subscription alone. A new assignment can take up to about 30 minutes
// to be enforced; the deployment's own resources comply already (a test checks it).

@description('Resource ID of the policy definition (policy-definition.bicep).')
param policyDefinitionId string

@description('Name of the assignment (at most 64 characters).')
@maxLength(64)
param assignmentName string

resource denyLocalAuth 'Microsoft.Authorization/policyAssignments@2024-04-01' = {
  name: assignmentName
  properties: {
    displayName: 'Victim Updates: deny local (key) authentication (${resourceGroup().name})'
    description: 'Communication Services, Service Bus, Storage, Application Insights and Log Analytics in this resource group must keep local authentication disabled: the app and everyone else sign in with Microsoft Entra ID.'
    policyDefinitionId: policyDefinitionId
    enforcementMode: 'Default'
    parameters: {
      effect: {
        value: 'Deny'
      }
    }
    nonComplianceMessages: [
      {
        message: 'Victim Updates keeps local (key) authentication off: set disableLocalAuth to true (allowSharedKeyAccess to false on storage). See infra/bicep/README.md, Role assignments.'
      }
    ]
  }
}

output id string = denyLocalAuth.id
