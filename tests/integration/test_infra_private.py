"""Issue 15, finding 4 ("Public by default"): the production deployment is private.

The shipped production parameter file turns private networking on; with it the Function App
answers only through its own private endpoint, Application Insights and Log Analytics take
telemetry and queries only through an Azure Monitor private link scope, the app's subnet
may reach only what the app calls, and the app identity holds no Owner-type role on a whole
resource. Its custom roles hold no wildcard and no write but the one ACS needs to send, and
a Deny policy (on in production) keeps local (key) authentication off whoever asks, so the
identity cannot turn ACS keys back on with that write. The checkov skip list is pinned here,
so that a new skip, or a reason reduced to a placeholder, fails until someone looks at it.

Read through pycep, like tests/integration/test_infra.py (whose helpers these are).
"""

from __future__ import annotations

import re
from typing import Any

from tests.integration.test_infra import (
    ACS,
    APP_INSIGHTS,
    BICEP,
    CHECKOV_CONFIG,
    MODULES,
    ROLE,
    SERVICE_BUS,
    STORAGE,
    bicep,
    body,
    chain,
    existing_scopes,
    resources_of,
)

PRODUCTION = BICEP / "production.bicepparam"
SITE = "Microsoft.Web/sites"
PRIVATE_ENDPOINT = "Microsoft.Network/privateEndpoints"
NSG = "Microsoft.Network/networkSecurityGroups"
SCOPE = "Microsoft.Insights/privateLinkScopes"
SCOPED = "Microsoft.Insights/privateLinkScopes/scopedResources"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"

# Owner-type built-in roles the app identity must not hold: the first lets it re-enable ACS
# local auth and read its keys, the second every blob of the account (Owner on the host's own
# containers is what the Functions docs ask for, and is allowed).
OWNER_ROLES_ON_A_WHOLE_RESOURCE = {
    ROLE["Communication and Email Service Owner"]: "any scope",
    ROLE["Storage Blob Data Owner"]: STORAGE,
}

# The one write a custom role of the app may hold. Microsoft.Communication defines no data actions
# (Azure permissions reference), so ACS authorises its Entra ID send calls on the resource's own
# actions, and Microsoft's managed-identity email sample (Azure-Samples/communication-services-
# dotnet-quickstarts, SendEmailAdvanced/SendEmailWithManagedIdentity) names Contributor, or a custom
# role with exactly these two, as what sends. That write is also the write of disableLocalAuth: the
# deny policy below is what keeps it from turning local auth back on.
ACS_SEND_ACTIONS = {
    "Microsoft.Communication/CommunicationServices/Read",
    "Microsoft.Communication/CommunicationServices/Write",
}
ACS_WRITE = "Microsoft.Communication/CommunicationServices/Write"

POLICY_DEFINITION = "Microsoft.Authorization/policyDefinitions"
POLICY_ASSIGNMENT = "Microsoft.Authorization/policyAssignments"
LOG_ANALYTICS = "Microsoft.OperationalInsights/workspaces"
# Each deployed type whose local (key, SAS or instrumentation key) authentication the policy must
# deny: its alias (that of Microsoft's built-in policy for the service) and the property path the
# template sets, with the only value the policy lets through.
LOCAL_AUTH = {
    ACS: ("Microsoft.Communication/communicationServices/disableLocalAuth", "disableLocalAuth", True),
    SERVICE_BUS: ("Microsoft.ServiceBus/namespaces/disableLocalAuth", "disableLocalAuth", True),
    STORAGE: ("Microsoft.Storage/storageAccounts/allowSharedKeyAccess", "allowSharedKeyAccess", False),
    APP_INSIGHTS: ("Microsoft.Insights/components/DisableLocalAuth", "DisableLocalAuth", True),
    LOG_ANALYTICS: (
        "Microsoft.OperationalInsights/workspaces/features.disableLocalAuth",
        "features.disableLocalAuth",
        True,
    ),
}

# Every skipped checkov check, and a fact its reason must state. A new skip fails here until
# it is added, with its reason, after review.
EXPECTED_SKIPS = {
    "CKV_AZURE_17": "victim_page",
    "CKV_AZURE_212": "Flex Consumption",
    "CKV_AZURE_213": "Flex Consumption",
    "CKV_AZURE_222": "master key",
    "CKV_AZURE_225": "zoneRedundant",
    "CKV_AZURE_35": "privateNetworking",
    "CKV_AZURE_206": "Standard_GZRS",
    "CKV_AZURE_109": "privateNetworking",
    "CKV_AZURE_189": "privateNetworking",
    "CKV_AZURE_41": "attributes.exp",
    "CKV_AZURE_114": "contentType",
}
# Claims found false in review: the admin API takes the master key, not Entra ID, and the app
# has an HTTP trigger (the victim's page).
FALSE_CLAIMS = ("Entra ID only", "no HTTP-triggered function", "no HTTP trigger")
PLACEHOLDERS = re.compile(r"\b(TODO|TBD|FIXME|XXX|placeholder|n/a|see above|none)\b", re.IGNORECASE)


def production_params() -> dict[str, str]:
    """param name -> its value as written in production.bicepparam (one line each)."""
    text = PRODUCTION.read_text(encoding="utf-8")
    assert re.search(r"^using 'main\.bicep'$", text, re.MULTILINE)
    return {
        name: value.split("//")[0].strip()
        for name, value in re.findall(r"^param (\w+) = (.+)$", text, re.MULTILINE)
    }


def conditional(value: Any) -> dict[str, Any]:
    assert isinstance(value, dict) and value["operator"]["type"] == "conditional", value
    operands: dict[str, Any] = value["operator"]["operands"]
    return operands


def site_private_inbound_switch() -> str:
    """The functionapp.bicep variable that turns private inbound on, checked to be 'the private
    endpoint subnet is given'."""
    document = bicep("functionapp")
    switch = document["variables"]["privateInbound"]["value"]["operator"]
    assert switch["type"] == "not"
    assert switch["operands"]["bool_value"]["function"] == {
        "type": "empty",
        "parameters": {"item_to_test": "privateEndpointSubnetId"},
    }
    return "privateInbound"


# --- the production parameter file --------------------------------------------------------


def test_production_parameter_file_turns_private_networking_on() -> None:
    params = production_params()
    assert params["privateNetworking"] == "true"
    main = bicep("main")["parameters"]
    assert set(params) <= set(main), f"not parameters of main.bicep: {set(params) - set(main)}"
    required = {name for name, p in main.items() if p["default"] is None}
    assert required <= set(params), f"required but not given: {required - set(params)}"
    secure = {name for name, p in main.items() if any(d["type"] == "secure" for d in p["decorators"])}
    assert set(params) & secure == set(), "secret values do not belong in the parameter file"
    # Event Grid cannot push to a private site: the subscription must not be switched on here.
    assert params["deliveryReportSubscription"] == "false"


# --- the Function App ------------------------------------------------------------------------


def test_with_private_networking_the_site_is_private_behind_its_own_endpoint() -> None:
    main = bicep("main")
    params = body(main["modules"]["functionApp"])["params"]
    given = conditional(params["privateEndpointSubnetId"])
    assert given["condition"] == "privateNetworking"
    assert chain(given["true_value"]) == ["network", "outputs", "privateEndpointSubnetId"]
    assert given["false_value"] == ""
    zone = conditional(params["sitesPrivateDnsZoneId"])
    assert zone["condition"] == "privateNetworking"
    assert chain(zone["true_value"]) == ["network", "outputs", "sitesZoneId"]

    document = bicep("functionapp")
    switch = site_private_inbound_switch()
    site = body(resources_of(document, SITE)["site"])
    access = conditional(site["properties"]["publicNetworkAccess"])
    assert access == {"condition": switch, "true_value": "Disabled", "false_value": "Enabled"}

    (endpoint,) = resources_of(document, PRIVATE_ENDPOINT).values()
    assert endpoint["config"]["condition"] == switch
    properties = body(endpoint)["properties"]
    assert properties["subnet"] == {"id": "privateEndpointSubnetId"}
    (connection,) = properties["privateLinkServiceConnections"]
    assert chain(connection["properties"]["privateLinkServiceId"]) == ["site", "id"]
    assert connection["properties"]["groupIds"] == ["sites"]
    (group,) = resources_of(document, "Microsoft.Network/privateEndpoints/privateDnsZoneGroups").values()
    (config,) = body(group)["properties"]["privateDnsZoneConfigs"]
    assert config["properties"]["privateDnsZoneId"] == "sitesPrivateDnsZoneId"
    zones = bicep("network")["variables"]["dnsZoneNames"]["value"]
    assert zones["sites"] == "privatelink.azurewebsites.net"


# --- Azure Monitor ---------------------------------------------------------------------------


def test_monitoring_is_private_through_a_private_link_scope() -> None:
    main = bicep("main")
    assert body(main["modules"]["monitoring"])["params"]["privateNetworking"] == "privateNetworking"
    document = bicep("monitoring")
    access = conditional(document["variables"]["publicMonitorAccess"]["value"])
    assert access == {"condition": "privateNetworking", "true_value": "Disabled", "false_value": "Enabled"}
    (workspace,) = resources_of(document, "Microsoft.OperationalInsights/workspaces").values()
    (insights,) = resources_of(document, "Microsoft.Insights/components").values()
    for resource in (workspace, insights):
        properties = body(resource)["properties"]
        assert properties["publicNetworkAccessForIngestion"] == "publicMonitorAccess"
        assert properties["publicNetworkAccessForQuery"] == "publicMonitorAccess"

    (scope_name, scope), *more = resources_of(document, SCOPE).items()
    assert more == []
    assert scope["config"]["condition"] == "privateNetworking"
    assert body(scope)["properties"]["accessModeSettings"] == {
        "ingestionAccessMode": "PrivateOnly",
        "queryAccessMode": "PrivateOnly",
    }
    linked = set()
    for scoped in resources_of(document, SCOPED).values():
        assert scoped["config"]["condition"] == "privateNetworking"
        assert body(scoped)["parent"] == scope_name
        linked.add(tuple(chain(body(scoped)["properties"]["linkedResourceId"])))
    workspace_name, insights_name = (
        name for name, r in document["resources"].items() if r in (workspace, insights)
    )
    assert linked == {(workspace_name, "id"), (insights_name, "id")}

    endpoints = {e["name"]: e for e in bicep("private-endpoints")["variables"]["endpoints"]["value"]}
    monitor = endpoints["monitor"]
    assert monitor["groupId"] == "azuremonitor"
    assert monitor["target"] == "monitorPrivateLinkScopeId"
    assert monitor["zoneIds"] == "monitorZoneIds"
    private_endpoints = body(main["modules"]["privateEndpoints"])["params"]
    assert chain(private_endpoints["monitorPrivateLinkScopeId"]) == [
        "monitoring",
        "outputs",
        "privateLinkScopeId",
    ]
    zone_names = bicep("network")["variables"]["dnsZoneNames"]["value"]
    assert {"privatelink.monitor.azure.com", "privatelink.oms.opinsights.azure.com"} <= set(
        zone_names.values()
    )
    assert len(bicep("network")["outputs"]["monitorZoneIds"]["value"]) == 5  # 4 monitor zones and blob


# --- network security groups -----------------------------------------------------------------


def nsg_rules(resource: dict[str, Any]) -> list[dict[str, Any]]:
    rules = body(resource)["properties"]["securityRules"]
    if isinstance(rules, str):  # a variable
        rules = bicep("network")["variables"][rules]["value"]
    if isinstance(rules, dict) and rules.get("function", {}).get("type") == "concat":
        parts = rules["function"]["parameters"]
        rules = []
        for part in parts.values():
            if isinstance(part, str):  # a variable holding the optional rules
                part = conditional(bicep("network")["variables"][part]["value"])["false_value"]
            rules.extend(part)
    return sorted(rules, key=lambda rule: rule["properties"]["priority"])


def test_the_function_subnet_may_reach_only_what_the_app_calls() -> None:
    document = bicep("network")
    nsgs = resources_of(document, NSG)
    assert len(nsgs) == 2, "one NSG per subnet"
    (vnet,) = resources_of(document, "Microsoft.Network/virtualNetworks").values()
    subnets = {s["name"]: s["properties"] for s in body(vnet)["properties"]["subnets"]}
    function_nsg = chain(subnets["snet-function"]["networkSecurityGroup"]["id"])[0]
    rules = nsg_rules(nsgs[function_nsg])
    outbound = [r["properties"] for r in rules if r["properties"]["direction"] == "Outbound"]
    assert outbound, "the function subnet has no outbound rules"
    *allowed, last = outbound
    assert last["access"] == "Deny" and last["destinationAddressPrefix"] == "Internet"
    assert all(rule["access"] == "Allow" for rule in allowed)
    destinations = {rule.get("destinationAddressPrefix") for rule in allowed}
    assert {"privateEndpointSubnetPrefix", "AzureActiveDirectory", "AzureMonitor"} <= destinations
    assert "communicationEgressDestination" in destinations
    assert any(rule.get("destinationAddressPrefixes") == "feedEgressAddressPrefixes" for rule in allowed)
    assert "Internet" not in destinations and "*" not in destinations


def test_the_private_endpoints_let_in_the_vnet_only_and_the_rules_apply() -> None:
    document = bicep("network")
    nsgs = resources_of(document, NSG)
    (vnet,) = resources_of(document, "Microsoft.Network/virtualNetworks").values()
    subnets = {s["name"]: s["properties"] for s in body(vnet)["properties"]["subnets"]}
    endpoints = subnets["snet-private-endpoints"]
    assert endpoints["privateEndpointNetworkPolicies"] == "Enabled", "else NSGs do not apply to endpoints"
    rules = [r["properties"] for r in nsg_rules(nsgs[chain(endpoints["networkSecurityGroup"]["id"])[0]])]
    assert all(rule["direction"] == "Inbound" for rule in rules)
    *allowed, last = rules
    assert last["access"] == "Deny" and last["sourceAddressPrefix"] == "*"
    assert {rule["sourceAddressPrefix"] for rule in allowed} == {"VirtualNetwork"}


# --- role assignments --------------------------------------------------------------------------


def test_the_app_identity_holds_no_owner_role_on_a_whole_resource() -> None:
    document = bicep("roles")
    roles = document["variables"]["roles"]["value"]
    scopes = existing_scopes(document)
    granted = []
    for resource in resources_of(document, ROLE_ASSIGNMENT).values():
        config = body(resource)
        owner, key = chain(
            config["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        )
        role = roles[key] if owner == "roles" else owner
        scope = config["scope"]
        if isinstance(scope, dict):
            scope = scope["operator"]["operands"]["operand_1"]
        granted.append((role, scopes[scope][0]))
    for role, scope_type in granted:
        forbidden = OWNER_ROLES_ON_A_WHOLE_RESOURCE.get(role)
        assert forbidden not in ("any scope", scope_type), f"{role} on {scope_type}"
    custom = resources_of(document, "Microsoft.Authorization/roleDefinitions")
    assert set(custom) == {"communicationSenderRole", "hostStorageListerRole"}
    for name, definition in custom.items():
        (permissions,) = body(definition)["properties"]["permissions"]
        actions = document["variables"][permissions["actions"]]["value"]
        assert not [a for a in actions if "ListKeys" in a or "RegenerateKey" in a or a.endswith("/*")], name
        assert not [a for a in actions if a.lower().endswith("/delete")], name
        assert permissions["dataActions"] == [], f"{name}: a custom role here reads no data"


def custom_role_actions() -> dict[str, list[str]]:
    """Each custom role of roles.bicep: its actions."""
    document = bicep("roles")
    found = {}
    for name, definition in resources_of(document, "Microsoft.Authorization/roleDefinitions").items():
        (permissions,) = body(definition)["properties"]["permissions"]
        assert permissions["notActions"] == [] and permissions["dataActions"] == [], name
        found[name] = document["variables"][permissions["actions"]]["value"]
    return found


def test_the_sender_role_is_read_and_the_one_write_acs_sends_with() -> None:
    actions = custom_role_actions()
    assert set(actions["communicationSenderRole"]) == ACS_SEND_ACTIONS
    for name, listed in actions.items():
        assert not [a for a in listed if "*" in a], f"{name}: a wildcard action"
        assert not [a for a in listed if a.lower().endswith("/action")], f"{name}: an action beyond read"
        writes = {a for a in listed if a.lower().endswith(("/write", "/delete"))}
        assert writes <= ({ACS_WRITE} if name == "communicationSenderRole" else set()), name
    # The write is there only because the deny policy covers the resource it writes.
    alias, _, _ = LOCAL_AUTH[ACS]
    assert alias in policy_conditions()


# --- local authentication: the deny policy -------------------------------------------------------


def policy_conditions() -> dict[str, list[dict[str, Any]]]:
    """The policy rule as {resource type: the conditions that deny it}, checked to be an anyOf of
    one allOf per type, each a type test and the local-auth conditions."""
    (definition,) = resources_of(bicep("policy-definition"), POLICY_DEFINITION).values()
    rule = body(definition)["properties"]["policyRule"]
    conditions: dict[str, list[dict[str, Any]]] = {}
    for branch in rule["if"]["anyOf"]:
        type_test, *rest = branch["allOf"]
        assert type_test["field"] == "type" and set(type_test) == {"field", "equals"}, branch
        (condition,) = rest
        flat = condition.get("anyOf", [condition])
        conditions.setdefault(type_test["equals"], []).extend(flat)
    return {alias: conditions[type_] for type_, (alias, _, _) in LOCAL_AUTH.items() if type_ in conditions}


def denies(condition: dict[str, Any], value: Any) -> bool:
    """Whether one condition of the rule matches the property at ``value`` (None: absent)."""
    if "exists" in condition:
        return (value is not None) is condition["exists"]
    if "equals" in condition:
        return value == condition["equals"]
    if "notEquals" in condition:
        return value != condition["notEquals"]
    raise AssertionError(f"unexpected condition {condition}")


def test_a_deny_policy_covers_every_local_auth_switch_of_the_deployment() -> None:
    document = bicep("policy-definition")
    assert document["globals"]["scope"]["value"] == "subscription", "a definition lives at the subscription"
    (definition,) = resources_of(document, POLICY_DEFINITION).values()
    properties = body(definition)["properties"]
    assert properties["policyType"] == "Custom" and properties["mode"] == "Indexed"
    effect = properties["parameters"]["effect"]
    assert effect["defaultValue"] == "Deny" and "Deny" in effect["allowedValues"]
    assert properties["policyRule"]["then"]["effect"].replace("\\", "") == "[parameters('effect')]"

    conditions = policy_conditions()
    assert set(conditions) == {alias for alias, _, _ in LOCAL_AUTH.values()}, "a service is not covered"
    for alias, _, safe in LOCAL_AUTH.values():
        for condition in conditions[alias]:
            assert condition["field"] == alias, condition
        denied = [value for value in (True, False, None) if any(denies(c, value) for c in conditions[alias])]
        # Only the safe value passes: the other one, and an absent property (the service's default
        # is local auth on), are denied.
        assert denied == [value for value in (True, False, None) if value != safe], alias


def test_the_policy_is_assigned_with_deny_to_the_resource_group_in_production() -> None:
    (assignment,) = resources_of(bicep("policy-assignment"), POLICY_ASSIGNMENT).values()
    config = body(assignment)
    assert "scope" not in config, "assigned to the deployment's resource group"
    properties = config["properties"]
    assert properties["policyDefinitionId"] == "policyDefinitionId"
    assert properties["enforcementMode"] == "Default"
    assert properties["parameters"] == {"effect": {"value": "Deny"}}

    modules = bicep("main")["modules"]
    definition, assigned = modules["localAuthPolicyDefinition"], modules["localAuthPolicy"]
    assert definition["detail"]["path"] == "modules/policy-definition.bicep"
    assert assigned["detail"]["path"] == "modules/policy-assignment.bicep"
    for module in (definition, assigned):
        assert module["config"]["condition"] == "denyLocalAuthPolicy"
    assert body(definition)["scope"]["function"]["type"] == "subscription"
    given = conditional(body(assigned)["params"]["policyDefinitionId"])
    assert given["condition"] == "denyLocalAuthPolicy"
    assert chain(given["true_value"]) == ["localAuthPolicyDefinition", "outputs", "id"]
    assert chain(bicep("policy-definition")["outputs"]["id"]["value"]) == ["denyLocalAuth", "id"]
    assert production_params()["denyLocalAuthPolicy"] == "true"


def test_the_deployment_complies_with_its_own_policy() -> None:
    """Every resource of a covered type sets its local-auth switch to the value the policy lets
    through, so that the assignment never refuses the deployment itself."""
    seen = set()
    for path in MODULES.glob("*.bicep"):
        for resource in (bicep(path.stem).get("resources") or {}).values():
            if resource["type"] not in LOCAL_AUTH or resource["existing"]:
                continue
            _, property_path, safe = LOCAL_AUTH[resource["type"]]
            value: Any = body(resource)["properties"]
            for key in property_path.split("."):
                value = value.get(key)
            assert value is safe, f"{path.name}: {resource['type']} {property_path} is {value!r}"
            seen.add(resource["type"])
    assert seen == set(LOCAL_AUTH), f"not deployed any more: {set(LOCAL_AUTH) - seen}"


# --- checkov -------------------------------------------------------------------------------------


def test_the_checkov_skip_list_is_pinned_with_true_reasons() -> None:
    lines = CHECKOV_CONFIG.read_text(encoding="utf-8").splitlines()
    skips = {}
    for line in lines[lines.index("skip-check:") + 1 :]:
        if not line.startswith("  - "):
            continue
        match = re.fullmatch(r"  - (CKV2?_[A-Z]+_\d+) +# (.*)", line)
        assert match, f"skip without an id and a reason: {line!r}"
        assert match.group(1) not in skips, f"{match.group(1)} skipped twice"
        skips[match.group(1)] = match.group(2).strip()
    added = sorted(set(skips) - set(EXPECTED_SKIPS))
    assert added == [], f"new checkov skips: fix the finding, or review and add them here: {added}"
    assert set(skips) == set(EXPECTED_SKIPS), f"no longer skipped: {set(EXPECTED_SKIPS) - set(skips)}"
    for check, reason in skips.items():
        assert len(reason) >= 60 and not PLACEHOLDERS.search(reason), f"{check}: a placeholder reason"
        assert EXPECTED_SKIPS[check] in reason, f"{check}: the reason must say {EXPECTED_SKIPS[check]!r}"
        assert not [claim for claim in FALSE_CLAIMS if claim in reason], f"{check}: {reason}"
