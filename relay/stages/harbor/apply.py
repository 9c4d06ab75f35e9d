"""Carrying out a Harbor plan: endpoint, project, policies, in that order (a policy needs the
endpoint's id), deletions last (policies before the endpoint they reference).

A 409 on a create means another run created the object meanwhile: it is read back and, when it
is relay's, used. PUT replaces a whole policy, so the whole desired policy is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from relay.errors import OperationFailed
from relay.stages.harbor.api import HarborClient, HarborError
from relay.stages.harbor.plan import Action, Desired, Observed, Plan

log = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    registry_id: int | None = None


def apply(
    client: HarborClient, desired: Desired, observed: Observed, the_plan: Plan, secret: str
) -> ApplyResult:
    if the_plan.refusals:
        raise OperationFailed("; ".join(the_plan.refusals))
    result = ApplyResult()
    registry_id = int(observed.registry["id"]) if observed.registry else None
    for action in the_plan.actions:
        if action.kind == "create-registry":
            registry_id = _create(
                client, desired, "/registries", desired.registry_body(secret), action
            )
        elif action.kind == "update-registry":
            assert action.object_id is not None
            client.put(
                f"/registries/{action.object_id}",
                desired.registry_update(
                    secret if action.resend_secret else None, url=action.send_url
                ),
                f"update endpoint {action.name}",
                retry=client.endpoint_retry,
            )
        elif action.kind == "create-project":
            try:
                client.create("/projects", desired.project_body(), f"create project {action.name}")
            except HarborError as exc:
                if exc.status != 409:
                    raise
                log.info("project %s appeared meanwhile; using it", action.name)
        elif action.kind in ("create-policy", "update-policy"):
            if registry_id is None:
                raise OperationFailed(f"no endpoint id for policy {action.name}")
            body = desired.policy_body(registry_id, fast=action.fast)
            if action.kind == "update-policy":
                assert action.object_id is not None
                client.put(
                    f"/replication/policies/{action.object_id}",
                    body,
                    f"update policy {action.name}",
                )
            else:
                _create(client, desired, "/replication/policies", body, action)
        elif action.kind == "delete-policy":
            client.delete(
                f"/replication/policies/{action.object_id}", f"delete policy {action.name}"
            )
        elif action.kind == "delete-registry":
            client.delete(f"/registries/{action.object_id}", f"delete endpoint {action.name}")
        result.done.append(str(action))
    result.registry_id = registry_id
    return result


def _create(
    client: HarborClient, desired: Desired, path: str, body: dict[str, object], action: Action
) -> int:
    # Endpoint writes are not retried on 500 (HarborClient.endpoint_retry).
    retry = client.endpoint_retry if action.kind == "create-registry" else None
    try:
        return client.create(path, body, str(action), retry=retry)
    except HarborError as exc:
        if exc.status != 409:
            raise
        found = client.find_by_name(path, action.name, f"look for {action.name} again")
        if found is None or not desired.claims(found, named_by_settings=True):
            raise OperationFailed(
                f"{action}: Harbor says the name is taken (409), and what holds it is not "
                "this configuration's; choose another name in mirrors/relay.yaml"
            ) from None
        log.info("%s: another run created it meanwhile; using it", action)
        return int(found["id"])
