// Alerts for the IT team: one action group (email) and five alert rules.
//
//   dead letters      Service Bus metric DeadletteredMessages > 0 on any queue  sev 1
//   stale feed        any FeedStale event in 15 minutes, per feed               sev 2
//   function failures failed / all invocations > threshold % in 15 min, per fn  sev 2
//   provider failures ACS unavailable or refusing our credentials, or messages
//                     ACS rejected, in 15 minutes                               sev 2
//   deadline breach   any DeadlineBreached event in an hour                     sev 3
//
// The log rules query the workspace-based Application Insights tables in the Log
// Analytics workspace. Every query is also in docs/operations-kql.md, word for word
// (tests/integration/test_monitoring_infra.py fails when they differ). Every rule resolves itself
// once its condition clears (autoMitigate).

@description('Prefix of the resource names, for example victimupd-prod.')
param namePrefix string

@description('Azure region of the log alert rules (the workspace region).')
param location string

@description('Tags for every resource.')
param tags object

@description('Email address of the IT team that receives the alerts.')
@minLength(3)
param alertEmail string

@description('Resource ID of the Log Analytics workspace the log alert rules query.')
param workspaceId string

@description('Resource ID of the Service Bus namespace (dead-lettered messages).')
param serviceBusNamespaceId string

@description('A function alerts when more than this percentage of its invocations fail in 15 minutes.')
@minValue(1)
@maxValue(100)
param failureRateThresholdPercent int

@description('Provider failures alert when more than this many occur in 15 minutes (0: any).')
@minValue(0)
param providerFailureThreshold int

// ---------------------------------------------------------------- queries (docs/operations-kql.md)

var staleFeedQuery = '''
AppEvents
| where Name == "FeedStale"
| extend feed = tostring(Properties.feed)
| summarize stale_events = sum(ItemCount) by feed = iff(isempty(feed), "unknown", feed)
'''

var functionFailureRateQuery = '''
AppRequests
| summarize invocations = sum(ItemCount), failures = sumif(ItemCount, Success == false) by OperationName
| where invocations > 0
| extend failure_pct = 100.0 * failures / invocations
'''

var providerFailuresQuery = '''
let unavailable = AppExceptions
    | extend failure = extract(@"\b(ProviderUnavailable|ProviderAuthenticationFailed)\b", 1, strcat(ExceptionType, " ", OuterMessage, " ", InnermostMessage))
    | where isnotempty(failure)
    | project failure, ItemCount;
let rejected = AppEvents
    | where Name == "MessageSuppressed"
    | extend failure = tostring(Properties.reason)
    | where failure startswith "provider_rejected"
    | project failure, ItemCount;
union unavailable, rejected
| summarize failures = sum(ItemCount) by failure
'''

var deadlineBreachQuery = '''
AppEvents
| where Name == "DeadlineBreached"
| summarize breaches = sum(ItemCount)
'''

// ---------------------------------------------------------------- action group

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${namePrefix}-it'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('vu-${namePrefix}', 12)
    enabled: true
    emailReceivers: [
      {
        name: 'it-team'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// ---------------------------------------------------------------- dead letters (metric)

resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${namePrefix}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'A message is in a Service Bus dead-letter queue: it failed maxDeliveryCount times or expired. Read it with Service Bus Explorer, fix the cause, then resubmit or delete it. Resolves when the dead-letter queues are empty.'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    targetResourceType: 'Microsoft.ServiceBus/namespaces'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// ---------------------------------------------------------------- log alert rules

resource staleFeedAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-stale-feed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Victim Updates: stale feed'
    description: 'A feed has sent nothing for longer than FEED_STALE_MINUTES in working hours (FeedStale). Check the feed API and its credentials (Key Vault), and the ingest function failures.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: staleFeedQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'stale_events'
          dimensions: [
            {
              name: 'feed'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource functionFailureAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-function-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Victim Updates: function failure rate'
    description: 'More than failureRateThresholdPercent of a function\'s invocations failed in 15 minutes. Failed Service Bus deliveries are retried, then dead-lettered; failed timer ticks are retried on the next tick. See the workbook sections Function failures and Exceptions.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: functionFailureRateQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failure_pct'
          dimensions: [
            {
              name: 'OperationName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: failureRateThresholdPercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource providerFailureAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-provider-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Victim Updates: message provider failures'
    description: 'Azure Communication Services failed: unavailable after retries (ProviderUnavailable), refusing our credentials (ProviderAuthenticationFailed: check the Function App identity\'s role on ACS), or rejecting messages for good (MessageSuppressed provider_rejected: check the SMS sender ID, the email domain and the addresses). Unavailable messages are retried by the queue; rejected ones leave the duty unmet.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: providerFailuresQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          dimensions: [
            {
              name: 'failure'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: providerFailureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource deadlineBreachAlert 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-deadline-breach'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Victim Updates: Victims\' Code deadline breached'
    description: 'A Victims\' Code duty passed its deadline unmet in the last hour (DeadlineBreached). The officer task and the Audit table say which; the workbook section Deadline breaches lists them.'
    severity: 3
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: deadlineBreachQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'breaches'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
