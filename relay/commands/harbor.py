"""`relay harbor plan | apply | replicate`: the ali-acr endpoint, the project and the pull
policies in the team's Harbor, and runs of them.

Harbor usually sits inside the company network, so these run where Harbor can be reached: a
self-hosted runner or an admin machine, not GitHub's hosted runners.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from relay.commands.common import RelaySettings, load
from relay.config import lockfile
from relay.config.mirrors import MirrorList
from relay.config.pins import pins
from relay.errors import CheckFailed, InputError, OperationFailed
from relay.net.retry import RetryPolicy
from relay.output import document, ghactions, progress
from relay.output.tables import Column, Table, duration
from relay.stages.harbor import apply as apply_stage
from relay.stages.harbor import replicate as replicate_stage
from relay.stages.harbor.api import HarborClient
from relay.stages.harbor.observe import observe, version_of
from relay.stages.harbor.plan import Batch, Desired, Observed, Plan, Source, foreign, plan
from relay.stages.harbor.settings import AccessKey, acr_access_key, login

log = logging.getLogger(__name__)


@dataclass
class Context:
    cfg: RelaySettings
    mirrors: MirrorList
    lock: lockfile.Lock
    client: HarborClient
    desired: Desired
    key: AccessKey


def source_for(cfg: RelaySettings) -> Source:
    """What Harbor pulls from: harbor.source_url, else the ACR namespace's registry (build
    transport) or the copy target (copy transport)."""
    harbor = cfg.harbor
    if cfg.transport == "copy":
        namespace = cfg.copy.namespace
        url = harbor.source_url or (f"https://{cfg.copy.registry}" if cfg.copy.registry else None)
        if not namespace or not url:
            raise InputError(
                harbor.problem(
                    "harbor",
                    "with transport: copy the Harbor stage pulls from copy.registry and "
                    "copy.namespace; set both (or harbor.source_url and copy.namespace)",
                )
            )
        return Source(url, namespace, Source.edition_of(url))
    acr = cfg.acr
    if not acr.namespace:
        raise InputError(
            harbor.problem("harbor", "the Harbor stage pulls from acr.namespace; set it")
        )
    if harbor.source_url:
        url = harbor.source_url
    elif acr.edition == "enterprise":
        if not acr.registry_domain:
            raise InputError(
                harbor.problem(
                    "harbor",
                    "for the enterprise edition set harbor.source_url (or acr.registry_domain) "
                    "to the instance's registry, https://<instance>-registry.<region>.cr.aliyuncs.com",
                )
            )
        url = f"https://{acr.registry_domain}"
    else:
        url = f"https://{acr.registry}"
    return Source(url.rstrip("/"), acr.namespace, acr.edition if acr.edition else "personal")


def connect(
    repo: Path,
    env: Mapping[str, str],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Context:
    cfg, mirror_list = load(repo)
    locked = lockfile.read(repo)
    harbor = cfg.harbor
    if not harbor.configured:
        raise InputError(
            "mirrors/relay.yaml has no harbor: section (url and project at least); see the "
            "README's Harbor stage section"
        )
    source = source_for(cfg)
    key = acr_access_key(env)
    assert harbor.url is not None
    client = HarborClient(
        harbor.url,
        login(env),
        ca_bundle=str(repo / harbor.ca_bundle) if harbor.ca_bundle else None,
        secrets=[key.secret],
        retry=RetryPolicy(
            attempts=harbor.retry.attempts,
            backoff=harbor.retry.backoff,
            max_backoff=harbor.retry.max_backoff,
        ),
        sleep=sleep,
    )
    version = version_of(client, source)
    desired = Desired(harbor, source, key.key_id, version)
    return Context(cfg, mirror_list, locked, client, desired, key)


def _observe_and_plan(ctx: Context, prune: bool) -> tuple[Observed, Plan]:
    observed = observe(ctx.client, ctx.desired, prune=prune)
    return observed, plan(ctx.desired, observed, prune=prune)


def harbor_plan(
    *,
    repo: Path,
    prune: bool = False,
    env: Mapping[str, str] | None = None,
    output: document.Format = "text",
    exit_code: bool = False,
) -> int:
    """Print what `relay harbor apply` would change; write nothing. With `exit_code`, exit 1
    when there is something to change."""
    ctx = connect(repo, os.environ if env is None else env)
    try:
        _, the_plan = _observe_and_plan(ctx, prune)
    finally:
        ctx.client.close()
    reads = ctx.client.counts.reads
    if output == "json":
        document.emit(
            "harbor plan",
            not the_plan.refusals,
            {
                "harbor": {"url": ctx.desired.settings.url, "version": _version(ctx)},
                "prune": prune,
                "actions": [
                    {"kind": a.kind, "name": a.name, "detail": a.detail, "text": str(a)}
                    for a in the_plan.actions
                ],
                "notes": list(the_plan.notes),
                "refusals": list(the_plan.refusals),
                "requests": reads,
            },
        )
    else:
        _print_plan(ctx, the_plan, reads)
    if the_plan.refusals:
        raise OperationFailed(f"{len(the_plan.refusals)} conflict(s) relay will not resolve")
    if exit_code and the_plan.actions:
        raise CheckFailed(f"Harbor would change: {len(the_plan.actions)} change(s) (--exit-code)")
    return 0


def _print_plan(ctx: Context, the_plan: Plan, reads: int) -> None:
    for action in the_plan.actions:
        print(action)
    for note in the_plan.notes:
        print(f"note: {note}")
    for refusal in the_plan.refusals:
        print(f"cannot: {refusal}")
    if the_plan.actions:
        print(
            f"{len(the_plan.actions)} change(s); Harbor {_version(ctx)} read with {reads} requests"
        )
    else:
        print(f"Harbor is up to date: nothing to do ({reads} requests)")


def harbor_apply(
    *,
    repo: Path,
    prune: bool = False,
    env: Mapping[str, str] | None = None,
    output: document.Format = "text",
) -> int:
    """Make the endpoint, the project and the policies match the settings."""
    ctx = connect(repo, os.environ if env is None else env)
    try:
        observed, the_plan = _observe_and_plan(ctx, prune)
        before = ctx.client.counts.writes
        result = apply_stage.apply(ctx.client, ctx.desired, observed, the_plan, ctx.key.secret)
        writes = ctx.client.counts.writes - before
    finally:
        ctx.client.close()
    table = Table(
        "relay harbor apply",
        [Column("Change")],
        summary=(
            f"{len(result.done)} change(s), {writes} write(s), "
            f"{ctx.client.counts.reads} read(s); Harbor {_version(ctx)}"
        ),
        notes=[f"note: {n}" for n in the_plan.notes],
        status="ok",
        where=f"{ctx.desired.settings.url} → {ctx.desired.project}",
    )
    for done in result.done:
        table.add(done)
    if output == "json":
        document.emit(
            "harbor apply",
            True,
            {
                "harbor": {"url": ctx.desired.settings.url, "version": _version(ctx)},
                "project": ctx.desired.project,
                "prune": prune,
                "done": list(result.done),
                "notes": list(the_plan.notes),
                "writes": writes,
                "reads": ctx.client.counts.reads,
            },
        )
    else:
        print(table.text() if result.done or the_plan.notes else table.summary)
    ghactions.summary(table)
    return 0


def harbor_replicate(
    *,
    repo: Path,
    wait: bool = False,
    timeout: float | None = None,
    only: Sequence[str] = (),
    missing: bool = False,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    output: document.Format = "text",
) -> int:
    """Run the pull policy (or, with `only`, the fast-path policy for those repositories), and
    with `wait` watch it to the end; exit 1 if anything failed. With `missing`, the fast path
    also takes every listed image Harbor's registry lacks or holds another image of (and runs
    not at all when there is none and `only` names nothing)."""
    environ = os.environ if env is None else env
    ctx = connect(repo, environ, sleep=sleep)
    desired = ctx.desired
    tags_by_name = _tags_by_target(ctx)
    behind: list[str] | None = None
    try:
        if only:
            unknown = sorted(set(only) - {e.target for e in ctx.mirrors.entries})
            if unknown:
                raise InputError(
                    f"--only: {', '.join(unknown)} not in mirrors/images.yaml (names are the "
                    "target names, e.g. k8s_ingress-nginx_controller)"
                )
        if missing:
            from relay.commands.verify import harbor_behind

            behind, requests = harbor_behind(
                repo, ctx.cfg, ctx.lock, pins(ctx.mirrors, ctx.lock), environ
            )
            log.info(
                "Harbor's registry lacks or holds another image of %d listed repositories%s "
                "(%d registry requests)",
                len(behind),
                f": {', '.join(behind)}" if behind else "",
                requests,
            )
            if not behind and not only:
                said = "Harbor holds every listed image: nothing to replicate"
                if output == "json":
                    idle = replicate_stage.Outcome(desired.fast_policy_name, 0, status="")
                    body = replicate_json(idle, desired, tags_by_name, ctx.client.counts.total)
                    body.update(executionId=None, executionIds=[], statusText=said, missing=[])
                    document.emit("harbor replicate", True, body)
                else:
                    print(said)
                return 0
            only = sorted(set(only) | set(behind))
        batches: list[Batch] = []
        if only:
            names = tuple(sorted(set(only)))
            policy_name = desired.fast_policy_name
            registry = ctx.client.find_by_name(
                "/registries", desired.settings.registry_name, "look for the endpoint"
            )
            policy = ctx.client.find_by_name(
                "/replication/policies", policy_name, f"look for policy {policy_name}"
            )
            policy_id = replicate_stage.require(policy, policy_name)
            if registry is None:
                raise OperationFailed(
                    "Harbor has no relay endpoint; run `relay harbor apply` first"
                )
            # The fast path rewrites the whole policy and points it at this endpoint: both
            # must be this configuration's (plan.py's mark and owner), or relay writes nothing.
            assert policy is not None
            for noun, obj, name, key in (
                ("replication policy", policy, policy_name, "policy_name"),
                ("registry endpoint", registry, desired.settings.registry_name, "registry_name"),
            ):
                refusal = foreign(desired, obj, noun, name, key)
                if refusal:
                    raise OperationFailed(f"replicate --only: {refusal}")
            batches = desired.fast_batches(names, tags_by_name)
            if len(batches) > 1:
                log.info(
                    "%d repositories do not fit in one policy's filters (Harbor keeps them in "
                    "1024 characters): %d batches, run one after another",
                    len(names),
                    len(batches),
                )
        else:
            policy_name = desired.policy_name
            policy = ctx.client.find_by_name(
                "/replication/policies", policy_name, f"look for policy {policy_name}"
            )
            policy_id = replicate_stage.require(policy, policy_name)
        deadline = replicate_stage.deadline_of(desired.settings.poll, timeout)
        outcomes: list[replicate_stage.Outcome] = []
        with progress.session() as bars:
            for number, batch in enumerate(batches or [None]):
                if batch is not None:
                    assert registry is not None
                    replicate_stage.point_fast_policy(
                        ctx.client, desired, policy_id, int(registry["id"]), batch
                    )
                outcome = replicate_stage.run(
                    ctx.client,
                    policy_id=policy_id,
                    policy_name=policy_name,
                    # The next batch re-points the policy: this one must have ended first.
                    wait=wait or number + 1 < len(batches),
                    poll=desired.settings.poll,
                    deadline=deadline,
                    exclusive=bool(policy and policy.get("single_active_replication")),
                    sleep=sleep,
                    progress=bars,
                )
                outcomes.append(outcome)
                if outcome.timed_out or outcome.skipped:
                    break
        outcome = replicate_stage.merge(outcomes)
        outcome.untouched = replicate_stage.untouched(outcome, batches)
    finally:
        ctx.client.close()
    table = report(outcome, desired, tags_by_name, requests=ctx.client.counts.total)
    if output == "json":
        document.emit(
            "harbor replicate",
            outcome.ok,
            replicate_json(outcome, desired, tags_by_name, ctx.client.counts.total, behind),
        )
    else:
        print(table.text())
        for row in outcome.tasks:
            if row.log_tail:
                print(f"--- last lines of the log of {row.repository}:")
                for line in row.log_tail:
                    print(f"    {line}")
        if outcome.logs_left:
            print(
                f"--- {outcome.logs_left} more task(s) failed; relay fetched the logs of the "
                f"first {replicate_stage.MAX_LOGS}, the others are in Harbor"
            )
    ghactions.summary(table)
    if not outcome.ok:
        if not outcome.started:
            raise OperationFailed(
                f"{policy_name}: not started: another replication of it was still running "
                "at the deadline; retry later"
            )
        if outcome.skipped:
            raise OperationFailed(
                f"replication {outcome.execution_id} of {policy_name} was skipped: "
                f"{replicate_stage.BUSY}"
            )
        if outcome.untouched and outcome.status == "Succeed" and not outcome.failed:
            raise OperationFailed(
                f"replication {outcome.execution_id} of {policy_name}: Harbor made no task for "
                f"{', '.join(outcome.untouched)}, asked for by name: "
                f"{_not_in_acr(desired, outcome.untouched)}"
            )
        why = "did not finish in time" if outcome.timed_out else f"ended {outcome.status}"
        raise OperationFailed(f"replication {outcome.execution_id} of {policy_name} {why}")
    return 0


def report(
    outcome: replicate_stage.Outcome,
    desired: Desired,
    tags_by_name: Mapping[str, list[str]],
    *,
    requests: int,
) -> Table:
    table = Table(
        "relay harbor replicate",
        [
            Column("Repository", code=True),
            Column("Tags"),
            Column("Status"),
            Column("Duration", "right"),
            Column("Pull", code=True),
        ],
        status="ok" if outcome.ok else "failed",
        where=f"{outcome.policy}, "
        + (
            "execution " + ", ".join(str(e) for e in outcome.executions or [outcome.execution_id])
            if outcome.started or outcome.executions
            else "no execution started"
        ),
    )
    if outcome.status_text:
        table.notes.append(f"Harbor: {outcome.status_text}")
    if outcome.untouched:
        table.notes.append(
            f"no task for {', '.join(outcome.untouched)}: {_not_in_acr(desired, outcome.untouched)}"
        )
    registry = desired.settings.registry_host
    for row in outcome.tasks:
        name = row.repository.split("/", 1)[-1]
        tags = tags_by_name.get(name, [])
        pull = f"{registry}/{row.repository}:{tags[0]}" if tags else f"{registry}/{row.repository}"
        table.add(
            row.repository,
            ", ".join(tags) if tags else "(as in ACR)",
            row.status,
            duration(row.seconds),
            pull,
            flag=row.status == "Failed",
        )
    if outcome.skipped:
        table.summary = (
            f"execution {outcome.execution_id} of {outcome.policy} skipped: "
            f"{replicate_stage.BUSY}; {requests} Harbor requests"
        )
    elif not outcome.started:
        table.summary = (
            f"not started: {outcome.policy} was still running at the deadline; "
            f"{requests} Harbor requests"
        )
    elif outcome.waited:
        state = "timed out" if outcome.timed_out else outcome.status
        table.summary = (
            f"execution {outcome.execution_id}: {state}; {outcome.total} task(s): "
            f"{outcome.succeed} succeeded, {outcome.failed} failed, {outcome.stopped} stopped "
            f"in {outcome.elapsed:.1f}s; {requests} Harbor requests"
        )
    else:
        table.summary = (
            f"started execution {outcome.execution_id} of {outcome.policy}"
            + (
                f" (after {len(outcome.executions) - 1} earlier batch(es))"
                if len(outcome.executions) > 1
                else ""
            )
            + "; "
            "follow it in Harbor, or run with --wait"
        )
    return table


def replicate_json(
    outcome: replicate_stage.Outcome,
    desired: Desired,
    tags_by_name: Mapping[str, list[str]],
    requests: int,
    missing: list[str] | None = None,
) -> dict[str, object]:
    registry = desired.settings.registry_host
    tasks = []
    for row in outcome.tasks:
        name = row.repository.split("/", 1)[-1]
        tasks.append(
            {
                "repository": row.repository,
                "status": row.status,
                "seconds": row.seconds,
                "tags": tags_by_name.get(name, []),
                "pull": f"{registry}/{row.repository}",
                "logTail": list(row.log_tail),
            }
        )
    return {
        "policy": outcome.policy,
        "executionId": outcome.execution_id,
        "executionIds": list(outcome.executions or [outcome.execution_id]),
        "waited": outcome.waited,
        "status": outcome.status,
        "statusText": outcome.status_text,
        "timedOut": outcome.timed_out,
        "started": outcome.started,
        "skipped": outcome.skipped,
        "counts": {
            "total": outcome.total,
            "succeed": outcome.succeed,
            "failed": outcome.failed,
            "inProgress": outcome.in_progress,
            "stopped": outcome.stopped,
        },
        "seconds": round(outcome.elapsed, 3),
        "tasks": tasks,
        "requests": requests,
        "missing": missing,
        "noTask": list(outcome.untouched),
        "failedWithoutLog": outcome.logs_left,
    }


def _tags_by_target(ctx: Context) -> dict[str, list[str]]:
    """Each target name's tags, from the list and the lock (for the report and the fast
    path's tag filter); empty when the lock is not there yet."""
    try:
        selected = pins(ctx.mirrors, ctx.lock)
    except InputError:
        return {}
    out: dict[str, list[str]] = {}
    for pin in selected:
        out.setdefault(pin.entry.target, []).append(pin.tag)
    return out


def _not_in_acr(desired: Desired, names: Sequence[str]) -> str:
    return (
        f"{'it is' if len(names) == 1 else 'they are'} not in {desired.source.namespace} at "
        f"{desired.source.url}, or none of the tags the lock names is (run `relay verify`)"
    )


def _version(ctx: Context) -> str:
    return "v" + ".".join(str(n) for n in ctx.desired.version)
