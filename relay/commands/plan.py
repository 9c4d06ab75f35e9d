"""`relay plan [--comment] [--pr N]`: what merging would do, for the pull request."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from relay.commands.common import config_platforms, load
from relay.config import lockfile
from relay.errors import InputError, ProblemsFound, RelayError
from relay.output import ghactions, prcomment
from relay.output.prcomment import Section
from relay.registry.pool import ClientPool
from relay.stages import generate
from relay.stages import lock as lock_stage

log = logging.getLogger(__name__)


def plan(*, repo: Path, comment: bool = False, pr: int | None = None) -> int:
    def publish(body: str) -> None:
        print(body)
        ghactions.summary(body)
        if comment:
            _comment(body, pr)

    try:
        cfg, mirror_list = load(repo)
        old = lockfile.read(repo)
    except InputError as exc:
        publish(prcomment.render([Section("Problems", [str(p) for p in exc.problems])], ok=False))
        raise
    tags = sum(len(e.tags) for e in mirror_list.entries)
    sections = [Section(mirror_list.path, [f"{len(mirror_list.entries)} images, {tags} tags: ok"])]
    with ClientPool(cfg.registries, repo=repo) as pool:
        result = lock_stage.resolve(
            mirror_list,
            old,
            pool,
            recheck=False,
            concurrency=cfg.lock.concurrency,
            config_platforms=config_platforms(cfg),
            verify_pins=True,
            warn_tags=cfg.lock.warn_tags,
        )
    ghactions.warn(result.warnings)
    if result.problems:
        sections.append(Section("Problems", [str(p) for p in result.problems]))
    if result.warnings:
        sections.append(Section("Warnings", [str(w) for w in result.warnings]))
    changes = lock_stage.diff(old, result.lock)
    sections.append(
        Section("Lock (relay lock)", [str(c) for c in changes], "the lock holds every tag")
    )
    if not result.problems:
        dockerfiles = generate.plan(generate.desired(mirror_list, result.lock), generate.scan(repo))
        sections.append(
            Section("Dockerfiles (relay generate)", [str(c) for c in dockerfiles], "up to date")
        )
    publish(prcomment.render(sections, ok=not result.problems))
    if result.problems:
        raise ProblemsFound(result.problems)
    return 0


def _comment(body: str, pr: int | None) -> None:
    number = pr or prcomment.pull_request_number(os.environ)
    if number is None:
        log.warning("not a pull request run and no --pr given; no comment posted")
        return
    try:
        repository, token, api_url = prcomment.environment()
        done = prcomment.post(
            body, repository=repository, number=number, token=token, api_url=api_url
        )
        log.info("plan comment on %s#%d: %s", repository, number, done)
    except RelayError as exc:
        # A fork's read-only token, say: the plan still stands in the log and summary.
        log.warning("%s", exc)
