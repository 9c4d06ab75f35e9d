"""Reading Harbor for the plan: a handful of requests whatever the size of the list (the version,
one endpoint, one project, two policies by name), plus two listings with prune."""

from __future__ import annotations

from relay.errors import InputError, OperationFailed
from relay.safety import one_line
from relay.stages.harbor.api import HarborClient
from relay.stages.harbor.plan import (
    ENTERPRISE_SINCE,
    OLDEST,
    ROBOT_SYSTEM_SINCE,
    Desired,
    Observed,
    Source,
    Version,
    parse_version,
    show,
)


def version_of(client: HarborClient, source: Source) -> Version:
    """Harbor's version, which also proves the login: `harbor_version` is only shown to an
    authenticated caller (src/server/v2.0/handler/systeminfo.go)."""
    info = client.systeminfo()
    raw = info.get("harbor_version")
    if not raw:
        raise OperationFailed(
            f"Harbor {client.url} answered as if not logged in (no harbor_version in "
            "/systeminfo): check HARBOR_USERNAME and HARBOR_PASSWORD"
        )
    version = parse_version(str(raw))
    if version is None:
        raise OperationFailed(
            f"Harbor {client.url} reports an unreadable version {one_line(str(raw), 40)!r}"
        )
    if version < OLDEST:
        raise OperationFailed(
            f"Harbor {client.url} is {show(version)}; relay needs {show(OLDEST)} or newer "
            "(replication policies without dest_namespace_replace_count would flatten every "
            "repository into the project root)"
        )
    if source.edition == "enterprise" and version < ENTERPRISE_SINCE:
        raise OperationFailed(
            f"Harbor {client.url} is {show(version)}; pulling from an ACR Enterprise Edition "
            f"instance ({source.url}) needs Harbor {show(ENTERPRISE_SINCE)} or newer "
            "(goharbor/harbor#19658)"
        )
    if client.username.startswith("robot$") and version < ROBOT_SYSTEM_SINCE:
        raise InputError(
            f"Harbor {client.url} is {show(version)}: robot accounts get system permissions "
            f"(registries, replication) only from {show(ROBOT_SYSTEM_SINCE)}; use an admin user"
        )
    return version


def observe(client: HarborClient, desired: Desired, *, prune: bool = False) -> Observed:
    settings = desired.settings
    observed = Observed(version=desired.version)
    observed.registry = client.find_by_name(
        "/registries", settings.registry_name, f"look for endpoint {settings.registry_name}"
    )
    observed.project = client.project(desired.project)
    observed.policy = client.find_by_name(
        "/replication/policies", desired.policy_name, f"look for policy {desired.policy_name}"
    )
    observed.fast_policy = client.find_by_name(
        "/replication/policies",
        desired.fast_policy_name,
        f"look for policy {desired.fast_policy_name}",
    )
    if prune:
        wanted = {desired.policy_name, desired.fast_policy_name}
        for policy in client.paged("/replication/policies", "list policies"):
            if isinstance(policy, dict) and policy.get("name") not in wanted:
                observed.other_policies[str(policy.get("name"))] = policy
        for registry in client.paged("/registries", "list endpoints"):
            if isinstance(registry, dict) and registry.get("name") != settings.registry_name:
                observed.other_registries[str(registry.get("name"))] = registry
    return observed
