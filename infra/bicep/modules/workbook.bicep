// Azure Monitor workbook for the IT team: feeds, messages, suppressions and tasks,
// Victims' Code compliance, breaches, dead letters, function failures and durations.
//
// The queries read the workspace-based Application Insights tables (AppEvents,
// AppRequests, AppExceptions) in the Log Analytics workspace; the workbook is linked
// to the Application Insights component (sourceId), so it is listed under its
// Workbooks blade. Every query below is also in docs/operations-kql.md, word for word
// (tests/integration/test_monitoring_infra.py fails when they differ), so it can be pasted into Logs.
// Custom events are AppEvents rows whose Name is the event name (shared/telemetry.py).
// Counts add up ItemCount, which corrects for sampling.

@description('Name (a GUID) of the workbook resource.')
param name string

@description('Display name of the workbook in the portal.')
param displayName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource ID of the Application Insights component the workbook is linked to.')
param appInsightsId string

@description('Resource ID of the Log Analytics workspace the queries run against.')
param workspaceId string

@description('Resource ID of the Service Bus namespace (dead-lettered message metric).')
param serviceBusNamespaceId string

// ---------------------------------------------------------------- queries (docs/operations-kql.md)

var feedLagQuery = '''
AppEvents
| where Name == "FeedLag"
| extend feed = tostring(Properties.feed), seconds_behind = todouble(Properties.seconds_behind)
| summarize max_seconds_behind = max(seconds_behind) by feed, bin(TimeGenerated, 15m)
| render timechart
'''

var feedProblemsQuery = '''
AppEvents
| where Name in ("FeedStale", "RecordQuarantined")
| extend feed = tostring(Properties.feed), reason = tostring(Properties.reason)
| summarize events = sum(ItemCount), last_seen = max(TimeGenerated), max_seconds_silent = max(todouble(Properties.seconds_behind)) by event = Name, feed, reason
| order by last_seen desc
'''

var messagesQuery = '''
AppEvents
| where Name == "MessageSent"
| extend channel = tostring(Properties.channel), template = tostring(Properties.template), segments = toint(Properties.segments)
| summarize messages = sum(ItemCount), sms_segments = sum(segments * ItemCount) by day = startofday(TimeGenerated), channel, template
| order by day desc, channel asc, template asc
'''

var suppressionsAndTasksQuery = '''
AppEvents
| where Name in ("MessageSuppressed", "TaskCreated")
| extend reason = tostring(Properties.reason), channel = tostring(Properties.channel)
| summarize total = sum(ItemCount) by event = Name, reason, channel
| order by total desc
'''

var officerMailQuery = '''
AppEvents
| where Name == "OfficerNotified"
| extend kind = tostring(Properties.kind), reason = tostring(Properties.reason)
| summarize mails = sum(ItemCount) by day = startofday(TimeGenerated), kind, reason
| order by day desc, kind asc, reason asc
'''

var deliveryQuery = '''
AppEvents
| where Name in ("DeliveryReported", "DeliveryReportUnmatched", "DeliveryReportIgnored")
| extend channel = tostring(Properties.channel), outcome = tostring(Properties.outcome), status = tostring(Properties.status)
| summarize reports = sum(ItemCount) by day = startofday(TimeGenerated), event = Name, channel, outcome, status
| order by day desc, event asc, channel asc, outcome asc
'''

var complianceQuery = '''
AppEvents
| where Name in ("DutyMet", "DeadlineBreached")
| summarize met = sumif(ItemCount, Name == "DutyMet"), breached = sumif(ItemCount, Name == "DeadlineBreached") by day = startofday(TimeGenerated)
| extend compliance_pct = round(100.0 * met / (met + breached), 1)
| order by day asc
'''

var complianceByDutyQuery = '''
AppEvents
| where Name in ("DutyMet", "DeadlineBreached")
| extend duty = tostring(Properties.duty)
| summarize met = sumif(ItemCount, Name == "DutyMet"), breached = sumif(ItemCount, Name == "DeadlineBreached") by duty
| extend compliance_pct = round(100.0 * met / (met + breached), 1)
| order by compliance_pct asc, breached desc
'''

var breachesQuery = '''
AppEvents
| where Name == "DeadlineBreached"
| project TimeGenerated, crime_reference = tostring(Properties.crime_reference), person_id = tostring(Properties.person_id), duty = tostring(Properties.duty), reason = tostring(Properties.reason)
| order by TimeGenerated desc
'''

var deadLetteredEventsQuery = '''
AppEvents
| where Name == "DeadLettered"
| extend queue = tostring(Properties.queue), reason = tostring(Properties.reason)
| summarize dead_lettered = sum(ItemCount), last_seen = max(TimeGenerated) by queue, reason
| order by last_seen desc
'''

var latencyQuery = '''
AppEvents
| where Name == "MessageSent" and isnotempty(Properties.seconds_since_change)
| extend channel = tostring(Properties.channel), seconds = todouble(Properties.seconds_since_change)
| summarize messages = sum(ItemCount), p50_s = percentile(seconds, 50), p95_s = percentile(seconds, 95), p99_s = percentile(seconds, 99), max_s = max(seconds) by channel
| order by channel asc
'''

var functionFailuresQuery = '''
AppRequests
| summarize invocations = sum(ItemCount), failures = sumif(ItemCount, Success == false) by OperationName
| extend failure_pct = round(100.0 * failures / invocations, 2)
| order by failures desc, OperationName asc
'''

var functionFailuresOverTimeQuery = '''
AppRequests
| where Success == false
| summarize failures = sum(ItemCount) by OperationName, bin(TimeGenerated, 1h)
| render timechart
'''

var exceptionsQuery = '''
AppExceptions
| extend python_type = extract(@"Exception: ([A-Za-z_][A-Za-z0-9_.]*)", 1, strcat(OuterMessage, " ", InnermostMessage))
| extend problem = iff(isempty(python_type), ExceptionType, python_type)
| summarize exceptions = sum(ItemCount), first_seen = min(TimeGenerated), last_seen = max(TimeGenerated) by OperationName, problem
| order by exceptions desc
'''

var durationsQuery = '''
AppRequests
| summarize invocations = sum(ItemCount), p50_ms = percentile(DurationMs, 50), p95_ms = percentile(DurationMs, 95), p99_ms = percentile(DurationMs, 99), max_ms = max(DurationMs) by OperationName
| order by OperationName asc
'''

var durationsOverTimeQuery = '''
AppRequests
| summarize p95_ms = percentile(DurationMs, 95) by OperationName, bin(TimeGenerated, 1h)
| render timechart
'''

// ---------------------------------------------------------------- workbook items

var workspaceScope = {
  queryType: 0 // Logs (KQL)
  resourceType: 'microsoft.operationalinsights/workspaces'
  crossComponentResources: [
    workspaceId
  ]
  timeContextFromParameter: 'TimeRange'
  timeContext: {
    durationMs: 604800000
  }
}

// One entry per KQL step: name, title, the query and how to draw it. The pipeline's own
// events come first, then the platform: dead letters, failures, exceptions, durations.
var pipelineSteps = [
  {
    name: 'feed-lag'
    title: 'Feed lag: how far behind each feed is (seconds, worst per 15 minutes)'
    query: feedLagQuery
    visualization: 'timechart'
  }
  {
    name: 'feed-problems'
    title: 'Stale feeds and quarantined records'
    query: feedProblemsQuery
    visualization: 'table'
  }
  {
    name: 'messages'
    title: 'Messages sent per day, by channel and template (with SMS segments)'
    query: messagesQuery
    visualization: 'table'
  }
  {
    name: 'suppressions-and-tasks'
    title: 'Suppressed messages and officer tasks, by reason'
    query: suppressionsAndTasksQuery
    visualization: 'table'
  }
  {
    name: 'officer-mail'
    title: 'Officer tasks mailed per day (kind: task to the assignee, reminder to the supervisor), by reason'
    query: officerMailQuery
    visualization: 'table'
  }
  {
    name: 'delivery'
    title: 'Delivery reports per day: delivered or undelivered by channel and the provider status; reports not ours, or not delivery reports'
    query: deliveryQuery
    visualization: 'table'
  }
  {
    name: 'compliance'
    title: 'Compliance per day: duties met / (met + breached)'
    query: complianceQuery
    visualization: 'table'
  }
  {
    name: 'compliance-by-duty'
    title: 'Compliance by duty over the time range'
    query: complianceByDutyQuery
    visualization: 'table'
  }
  {
    name: 'latency'
    title: 'Feed change to provider: seconds from the feed record to its message handed over, by channel'
    query: latencyQuery
    visualization: 'table'
  }
  {
    name: 'breaches'
    title: 'Deadline breaches'
    query: breachesQuery
    visualization: 'table'
  }
]

var platformSteps = [
  {
    name: 'dead-lettered-events'
    title: 'DeadLettered events (emitted by the local host; in Azure, Service Bus dead-letters and the metric above counts them)'
    query: deadLetteredEventsQuery
    visualization: 'table'
  }
  {
    name: 'function-failures'
    title: 'Function invocations and failures'
    query: functionFailuresQuery
    visualization: 'table'
  }
  {
    name: 'function-failures-over-time'
    title: 'Failed invocations per hour, by function'
    query: functionFailuresOverTimeQuery
    visualization: 'timechart'
  }
  {
    name: 'exceptions'
    title: 'Exceptions by function and type'
    query: exceptionsQuery
    visualization: 'table'
  }
  {
    name: 'durations'
    title: 'Function duration percentiles (ms): the latency of each step'
    query: durationsQuery
    visualization: 'table'
  }
  {
    name: 'durations-over-time'
    title: '95th percentile duration per hour, by function (ms)'
    query: durationsOverTimeQuery
    visualization: 'timechart'
  }
]

var pipelineItems = [
  for step in pipelineSteps: {
    type: 3
    name: step.name
    content: union(workspaceScope, {
      version: 'KqlItem/1.0'
      title: step.title
      query: step.query
      size: 0
      visualization: step.visualization
    })
  }
]

var platformItems = [
  for step in platformSteps: {
    type: 3
    name: step.name
    content: union(workspaceScope, {
      version: 'KqlItem/1.0'
      title: step.title
      query: step.query
      size: 0
      visualization: step.visualization
    })
  }
]

var headerItems = [
  {
    type: 1
    name: 'introduction'
    content: {
      json: '# Victim Updates operations\nCustom events of the pipeline (AppEvents rows whose Name is the event name, dimensions in Properties), function invocations (AppRequests: one per step, one operation per case change) and exceptions (AppExceptions) in the Log Analytics workspace. Every query is in docs/operations-kql.md. Counts add up ItemCount, so any sampling is corrected; the Audit table is the record of every decision.'
    }
  }
  {
    type: 9
    name: 'parameters'
    content: {
      version: 'KqlParameterItem/1.0'
      parameters: [
        {
          id: '4c3a3f8e-6a51-4f0e-9b8e-2f1d6c7a9b10'
          version: 'KqlParameterItem/1.0'
          name: 'TimeRange'
          label: 'Time range'
          type: 4
          isRequired: true
          value: {
            durationMs: 604800000
          }
          typeSettings: {
            selectableValues: [
              {
                durationMs: 3600000
              }
              {
                durationMs: 86400000
              }
              {
                durationMs: 604800000
              }
              {
                durationMs: 2592000000
              }
            ]
            allowCustom: true
          }
        }
      ]
      style: 'pills'
      queryType: 0
      resourceType: 'microsoft.operationalinsights/workspaces'
    }
  }
]

// The Service Bus dead-letter count is a platform metric that diagnostic settings do
// not export to the workspace, so it is a metric chart, not a query.
var deadLetterMetricItem = {
  type: 10
  name: 'dead-lettered-messages-metric'
  content: {
    chartId: 'workbook-dead-lettered-messages'
    version: 'MetricsItem/2.0'
    title: 'Dead-lettered messages per queue (Service Bus metric DeadletteredMessages, maximum)'
    size: 0
    chartType: 2
    resourceType: 'microsoft.servicebus/namespaces'
    metricScope: 0
    resourceIds: [
      serviceBusNamespaceId
    ]
    timeContextFromParameter: 'TimeRange'
    timeContext: {
      durationMs: 604800000
    }
    metrics: [
      {
        namespace: 'microsoft.servicebus/namespaces'
        metric: 'microsoft.servicebus/namespaces--DeadletteredMessages'
        aggregation: 3 // maximum
        splitBy: [
          'EntityName'
        ]
      }
    ]
  }
}

var items = concat(headerItems, pipelineItems, [
  deadLetterMetricItem
], platformItems)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: appInsightsId
    serializedData: string({
      version: 'Notebook/1.0'
      items: items
      isLocked: false
      fallbackResourceIds: [
        appInsightsId
      ]
    })
  }
}

output id string = workbook.id
output name string = workbook.name
