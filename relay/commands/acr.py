"""`relay acr plan` and `relay acr apply`. Exit codes stay with relay/cli.py: these return
results or raise relay errors (InputError for missing settings or credentials, CheckFailed for
Dockerfiles not generated, OperationFailed for ACR failing).

The Alibaba SDK is slow to import, so only these commands pay for it.
"""

from __future__ import annotations

import io
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from relay.commands.common import load, write_delivered
from relay.config import lockfile
from relay.config import shard as sharding
from relay.config.lockfile import Lock
from relay.config.mirrors import MirrorList
from relay.config.shard import Shard
from relay.errors import CheckFailed, InputError, OperationFailed
from relay.net import cancel
from relay.output import document, ghactions, progress
from relay.output.progress import NULL, Progress
from relay.stages import generate
from relay.stages.acr import apply as apply_mod
from relay.stages.acr import plan as plan_mod
from relay.stages.acr.api import AcrClient, CallStats
from relay.stages.acr.connect import connect
from relay.stages.acr.observe import UpstreamConfig, observe
from relay.stages.acr.plan import Action
from relay.stages.acr.report import ApplyReport
from relay.stages.acr.settings import AcrSettings, credentials
from relay.stages.acr.state import Observed

log = logging.getLogger(__name__)


def acr_plan(
    *,
    repo: Path,
    prune: bool,
    shard: Shard | None = None,
    only: tuple[str, ...] = (),
    output: document.Format = "text",
    exit_code: bool = False,
) -> int:
    """Print what `relay acr apply` would do; change nothing. With `exit_code`, exit 1 when
    there is something to do."""
    _check_shard(prune, shard, only)
    actions: list[Action] = _with_loaded(
        repo, lambda common: plan(**common, prune=prune), shard, only
    )
    if output == "json":
        document.emit(
            "acr plan",
            True,
            {"prune": prune, "actions": [action_json(a) for a in actions]},
        )
    else:
        for action in actions:
            print(action)
        print(f"{len(actions)} action(s)" if actions else "ACR is up to date: nothing to do")
    if exit_code and actions:
        raise CheckFailed(f"ACR would change: {len(actions)} action(s) (--exit-code)")
    return 0


def action_json(action: Action) -> dict[str, str | None]:
    return {
        "kind": action.kind,
        "target": action.target,
        "tag": action.tag or None,
        "ruleId": action.rule_id or None,
        "note": action.note or None,
        "text": str(action),
    }


def acr_apply(
    *,
    repo: Path,
    wait: bool,
    timeout: float | None,
    prune: bool,
    shard: Shard | None = None,
    only: tuple[str, ...] = (),
    delivered: Path | None = None,
    output: document.Format = "text",
) -> int:
    """Create what is missing in ACR and build changed tags; exit 1 if a build failed."""
    _check_shard(prune, shard, only)
    with progress.session() as bars:
        report: ApplyReport = _with_loaded(
            repo,
            lambda common: apply(
                **common,
                prune=prune,
                wait=wait,
                timeout=timeout,
                out=sys.stdout if output == "text" else io.StringIO(),
                progress=bars,
            ),
            shard,
            only,
        )
    if output == "json":
        document.emit("acr apply", report.ok, {"wait": wait, **report.json()})
    if delivered is not None:
        write_delivered(delivered, [r.repo for r in report.rows if r.status.upper() == "SUCCESS"])
    if not report.ok:
        raise OperationFailed("some ACR builds failed or did not finish; see the table above")
    return 0


def _check_shard(prune: bool, shard: Shard | None, only: tuple[str, ...]) -> None:
    # A part of the list sees only its own entries: the rest's repositories would look unlisted.
    if prune and ((shard is not None and shard.count > 1) or only):
        raise InputError(
            "--prune removes what the whole list no longer names: run it without --shard "
            "(or with --shard 1/1) and without --only"
        )


def _with_loaded(
    repo: Path,
    run: Callable[[dict[str, Any]], Any],
    shard: Shard | None = None,
    only: tuple[str, ...] = (),
) -> Any:
    """Load what both commands need (the list narrowed to the shard) and call `run(arguments)`."""
    from relay.registry.pool import ClientPool
    from relay.stages.acr import upstream

    cfg, full_list = load(repo)
    sharding.check_only(only, full_list)
    mirror_list = sharding.mirrors(full_list, shard, only)
    # Before ACR is asked anything: platforms the list wants that no build will produce.
    ghactions.warn(plan_mod.platform_warnings(mirror_list, cfg.acr))
    locked = lockfile.read(repo)
    with ClientPool(cfg.registries, repo=repo) as pool:
        common = {
            "repo": repo,
            "settings": cfg.acr,
            "mirrors": mirror_list,
            "lock": locked,
            "env": os.environ,
            "narrowed": mirror_list is not full_list,
            # The lock answers for upstream's config; the registry only for older locks.
            "upstream_config": upstream.from_lock(locked, upstream.from_registry(pool.source)),
        }
        return run(common)


def plan(
    repo: Path,
    settings: AcrSettings,
    mirrors: MirrorList,
    lock: Lock,
    *,
    env: Mapping[str, str],
    upstream_config: UpstreamConfig | None = None,
    prune: bool = False,
    stats: CallStats | None = None,
    narrowed: bool = False,
) -> list[Action]:
    """The actions an apply would take now. Reads ACR, writes nothing."""
    acr = settings
    acr.require()
    client = _client(acr, env, stats)
    return _plan(repo, acr, mirrors, lock, client, upstream_config, prune, narrowed)[0].actions


def apply(
    repo: Path,
    settings: AcrSettings,
    mirrors: MirrorList,
    lock: Lock,
    *,
    wait: bool,
    timeout: float | None = None,
    env: Mapping[str, str],
    out: TextIO,
    upstream_config: UpstreamConfig | None = None,
    prune: bool = False,
    stats: CallStats | None = None,
    sleep: Callable[[float], None] = cancel.pause,
    narrowed: bool = False,
    progress: Progress = NULL,
) -> ApplyReport:
    """Plan, carry out, and (with `wait`) watch the builds until they end or `timeout` seconds
    pass (default acr.poll.timeout). Writes the report table to `out` and to the Actions job
    summary; the caller decides the exit code from `.ok`."""
    acr = settings
    acr.require()
    client = _client(acr, env, stats, sleep=sleep)
    started = time.monotonic()
    the_plan, wanted, observed = _plan(
        repo, acr, mirrors, lock, client, upstream_config, prune, narrowed
    )
    remaining = (acr.poll.timeout if timeout is None else timeout) - (time.monotonic() - started)
    report = apply_mod.run(
        client,
        the_plan,
        wanted,
        observed,
        acr,
        wait=wait,
        timeout=max(0.0, remaining),
        sleep=sleep,
        progress=progress,
        upstream_config=upstream_config,
    )
    report.elapsed = time.monotonic() - started
    out.write(report.text())
    ghactions.summary(report.table())
    return report


def _client(
    acr: AcrSettings,
    env: Mapping[str, str],
    stats: CallStats | None,
    *,
    sleep: Callable[[float], None] = cancel.pause,
) -> AcrClient:
    return connect(acr, credentials(env), env=env, stats=stats, sleep=sleep, rand=random.random)


def _plan(
    repo: Path,
    acr: AcrSettings,
    mirrors: MirrorList,
    lock: Lock,
    client: AcrClient,
    upstream_config: UpstreamConfig | None,
    prune: bool,
    narrowed: bool = False,
) -> tuple[plan_mod.Plan, list[plan_mod.WantedRepo], Observed]:
    # ACR builds what is committed, so the Dockerfiles must be what the list and lock say. A
    # list narrowed to a shard answers only for its own entries' Dockerfiles.
    have = generate.scan(repo)
    if narrowed:
        names = {e.target for e in mirrors.entries}
        prefix = generate.DOCKERFILES_DIR + "/"
        have = {
            path: data
            for path, data in have.items()
            if path.removeprefix(prefix).split("/", 1)[0] in names
        }
    changes = generate.plan(generate.desired(mirrors, lock), have)
    if changes:
        raise CheckFailed(
            f"{len(changes)} Dockerfile(s) out of date; run `relay generate`, commit and push "
            "before the ACR stage",
            [str(c) for c in changes],
        )
    wanted = plan_mod.desired(mirrors, lock, acr)
    observed = observe(client, acr, wanted, upstream_config=upstream_config, prune=prune)
    the_plan = plan_mod.plan(wanted, observed, acr, prune=prune)
    log.info(
        "ACR plan: %d action(s), %d build(s), %d tag(s) up to date; %s",
        len(the_plan.actions),
        len(the_plan.jobs),
        the_plan.up_to_date,
        client.stats.summary(),
    )
    return the_plan, wanted, observed
