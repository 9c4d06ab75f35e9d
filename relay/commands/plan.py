"""`relay plan [--comment] [--pr N] [--out DIR] [--format text|markdown] [--exit-code]`: what
merging would do, for the pull request.

In a `pull_request` run (no secrets, read-only token) `--out DIR` writes the plan as the
artifact the trusted comment run reads (relay.gh.planartifact); `--comment` posts it directly,
for a repository whose pull requests all come from branches with a write token. stdout gets a
terminal rendering, or the comment's Markdown with `--format markdown` (the default with
`--comment`); the job summary always gets the Markdown.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from relay.commands.common import config_platforms, load
from relay.commands.lock import change_json
from relay.config import lockfile
from relay.config.lockfile import Lock
from relay.config.mirrors import MirrorList
from relay.config.pins import pins
from relay.errors import CheckFailed, InputError, Problem, ProblemsFound, RelayError
from relay.gh import client as ghclient
from relay.gh import planartifact
from relay.output import document, ghactions, prcomment, progress
from relay.output.prcomment import Section
from relay.registry.pool import ClientPool
from relay.stages import generate
from relay.stages import lock as lock_stage

log = logging.getLogger(__name__)


LOCK_TITLE = "Lock (relay lock)"
PROBLEMS_TITLE = "Problems"


def plan(
    *,
    repo: Path,
    comment: bool = False,
    pr: int | None = None,
    out: Path | None = None,
    fmt: Literal["text", "markdown"] = "text",
    output: document.Format = "text",
    exit_code: bool = False,
) -> int:
    number = pr or prcomment.pull_request_number(os.environ)
    head = prcomment.pull_request_head(os.environ) or os.environ.get("GITHUB_SHA") or ""

    def publish(sections: list[Section], ok: bool, data: dict[str, Any] | None = None) -> None:
        body = prcomment.render(sections, ok, commit=head or None)
        if output == "json":
            if data is not None:  # without it (bad input) the CLI's error document says why
                document.emit("plan", ok, data)
        elif fmt == "markdown":
            print(body)
        else:
            # The problems go to stderr once, with their file and line (and as annotations
            # under Actions); the terminal rendering only counts them, so none shows twice.
            shown = [
                Section(
                    s.title,
                    [f"{len(s.lines)} problem(s), each reported once on stderr with its line"],
                )
                if s.title == PROBLEMS_TITLE
                else s
                for s in sections
            ]
            print(prcomment.render_text(shown, ok))
        ghactions.summary(body)
        if out is not None:
            if number is None or not planartifact.SHA_RE.fullmatch(head):
                log.warning("not a pull request run and no --pr given; no plan artifact written")
            else:
                planartifact.write(out, planartifact.PlanArtifact(number, head, ok, sections))
        if comment:
            _comment(body, number)

    try:
        cfg, mirror_list = load(repo)
        old = lockfile.read(repo)
    except InputError as exc:
        publish([Section(PROBLEMS_TITLE, [str(p) for p in exc.problems])], ok=False)
        raise
    tags = sum(len(e.tags) for e in mirror_list.entries)
    sections = [Section(mirror_list.path, [f"{len(mirror_list.entries)} images, {tags} tags: ok"])]
    with ClientPool(cfg.registries, repo=repo) as pool, progress.session() as bars:
        result = lock_stage.resolve(
            mirror_list,
            old,
            pool,
            recheck=False,
            concurrency=cfg.lock.concurrency,
            config_platforms=config_platforms(cfg),
            verify_pins=True,
            warn_tags=cfg.lock.warn_tags,
            progress=bars,
            command="relay plan",
        )
    problems = list(result.problems)
    warnings = list(result.warnings)
    if cfg.transport == "build":
        # Where the person adding `platforms:` sees it: the pull request's plan, not only the
        # delivery run after the merge.
        from relay.stages.acr.plan import platform_warnings

        warnings += platform_warnings(mirror_list, cfg.acr)
    ghactions.warn(warnings)
    if warnings:
        sections.append(Section("Warnings", [str(w) for w in warnings]))
    # Tags of sources that could not be (fully) checked are compared as they were: not known
    # is not removed. The lock section says which sources those are.
    compared = lock_stage.keep_unchecked(old, result.lock, result.failed)
    changes = lock_stage.diff(old, compared)
    unchecked = sorted(s for s in result.failed if old.images.get(s))
    dockerfiles: list[generate.Change] = []
    if not problems:
        dockerfiles = generate.plan(generate.desired(mirror_list, result.lock), generate.scan(repo))
        problems += hand_edits(dockerfiles, mirror_list, old, result.lock)
    if problems:
        sections.append(Section(PROBLEMS_TITLE, [str(p) for p in problems]))
    sections.append(
        Section(
            LOCK_TITLE,
            [str(c) for c in changes]
            + [
                f"not checked {s}: its {len(old.images[s])} locked tag(s) kept as they are "
                "(see Problems)"
                for s in unchecked
            ],
            _lock_empty(result),
        )
    )
    if not result.problems:
        sections.append(
            Section("Dockerfiles (relay generate)", [str(c) for c in dockerfiles], "up to date")
        )
    data = {
        "images": len(mirror_list.entries),
        "tags": tags,
        "lock": {
            # Whether the lock part is complete: false when upstream could not be asked for
            # some image, or the list has problems; then `changes` is what is known so far.
            "complete": not result.problems,
            "unanswered": sorted(result.unanswered),
            # Sources whose locked tags were kept as they are, not checked (see problems).
            "notChecked": unchecked,
            "changes": [change_json(c) for c in changes],
        },
        "dockerfiles": [{"action": c.action, "path": c.path} for c in dockerfiles],
        "problems": document.problems(problems),
        "warnings": document.problems(warnings),
    }
    publish(sections, ok=not problems, data=data)
    if problems:
        raise ProblemsFound(problems)
    if exit_code and (changes or dockerfiles):
        raise CheckFailed(
            f"merging would change {len(changes)} lock entr{'y' if len(changes) == 1 else 'ies'} "
            f"and {len(dockerfiles)} Dockerfile(s) (--exit-code)"
        )
    return 0


def _lock_empty(result: lock_stage.Resolution) -> str:
    """What the lock section says when it lists no change: that the lock is complete only when
    upstream answered for every image."""
    if result.unanswered:
        names = sorted(result.unanswered)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return (
            f"not known: upstream could not be asked about {shown} (see Problems); "
            "run relay plan where the registries can be reached"
        )
    if result.problems:
        return "not known until the problems are fixed"
    return "the lock holds every tag"


def hand_edits(
    changes: list[generate.Change], mirror_list: MirrorList, old: Lock, new: Lock
) -> list[Problem]:
    """Generated Dockerfiles that differ from what relay writes although their pin did not
    change: edited by hand. relay generate would overwrite them after the merge, but until then
    ACR would build what the pull request wrote, so the plan refuses them."""
    by_path = {
        f"{generate.dockerfile_dir(p.entry.target, p.tag)}/Dockerfile": p
        for p in pins(mirror_list, new)
    }
    problems = []
    for change in changes:
        pin = by_path.get(change.path)
        if change.action != "update" or pin is None:
            continue
        inline = next((t.digest for t in pin.entry.tags if t.tag == pin.tag and t.digest), None)
        before = old.get(pin.entry.source.name, pin.tag)
        if inline == pin.digest or (before is not None and before.digest == pin.digest):
            problems.append(
                Problem(
                    change.path,
                    None,
                    "differs from what `relay generate` writes for an unchanged pin (edited by "
                    "hand?); run `relay generate` and commit, or revert the edit",
                )
            )
    return problems


def _comment(body: str, number: int | None) -> None:
    if number is None:
        log.warning("not a pull request run and no --pr given; no comment posted")
        return
    try:
        ctx = ghclient.context()
        gh = ghclient.connect(ctx)
        try:
            done = prcomment.post(
                gh, body, repository=ctx.repository, number=number, author=ctx.bot_login
            )
        finally:
            gh.close()
        log.info("plan comment on %s#%d: %s", ctx.repository, number, done)
    except ghclient.ReadOnlyToken as exc:
        # A fork's read-only token: the plan still stands in the log and the summary, and the
        # comment run (workflow_run) is the way to comment on forks.
        log.warning("%s", exc)
        ghactions.warning(f"no plan comment: {exc}")
    except RelayError:
        raise
