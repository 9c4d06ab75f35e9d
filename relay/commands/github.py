"""`relay github …`: what the workflows ask of GitHub, each a typed function.

* `settings`: the `github:` section and the transport, as step outputs for the workflows' `if:`
  and matrix (the one place they are decided: mirrors/relay.yaml).
* `comment-plan --artifact DIR`: in the trusted `workflow_run` run, post the plan the pull
  request's run left as an artifact (relay.gh.planartifact says how it is distrusted).
* `propose`: bring the lock and Dockerfiles the run produced to the default branch
  (relay.gh.changes).
* `report-run --ok | --failed`: open, comment on or close the one failure issue
  (relay.gh.failures).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from relay.commands.common import load, load_settings
from relay.config import lockfile
from relay.config.pins import pins
from relay.errors import InputError
from relay.gh import changes as changes_mod
from relay.gh import client as ghclient
from relay.gh import failures, planartifact
from relay.output import ghactions, prcomment

if TYPE_CHECKING:
    from github import Github
    from github.PullRequest import PullRequest

log = logging.getLogger(__name__)


def settings(*, repo: Path) -> int:
    """Print (and set as step outputs) what the workflows decide by: whether this repository is
    the one configured (a fork is not, and does nothing), the transport, how changes land, and
    the delivery matrix."""
    cfg = load_settings(repo)
    gh = cfg.github
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    try:
        _, mirror_list = load(repo)
        tags = len(pins(mirror_list, lockfile.read(repo)))
    except InputError:
        tags = 0  # the lock is not complete yet: the lock job comes first anyway
    shards = gh.shards(tags)
    values = {
        "enabled": "true" if gh.enabled(repository) else "false",
        "transport": cfg.transport,
        "changes": gh.changes,
        "auto-merge": "true" if gh.auto_merge else "false",
        "shards": json.dumps([f"{i}/{shards}" for i in range(1, shards + 1)]),
        "tags": str(tags),
    }
    for name, value in values.items():
        print(f"{name}={value}")
        ghactions.output(name, value)
    if not gh.enabled(repository):
        log.info(
            "github.repository in mirrors/relay.yaml is %s, this is %s: schedules and "
            "deliveries do nothing here",
            gh.repository or "unset",
            repository or "not a GitHub Actions run",
        )
    return 0


def comment_plan(*, artifact: Path) -> int:
    """Post the plan from the artifact of the `pull_request` run this `workflow_run` is for."""
    ctx = ghclient.context()
    run = ctx.event.get("workflow_run")
    if ctx.event_name != "workflow_run" or not isinstance(run, dict):
        raise InputError("relay github comment-plan runs in a workflow_run workflow")
    head_sha = str(run.get("head_sha") or "")
    run_url = str(run.get("html_url") or "")
    head_repo = str((run.get("head_repository") or {}).get("full_name") or "")
    plan = planartifact.read(artifact)
    if plan.head_sha != head_sha:
        raise planartifact.BadArtifact(
            f"the plan artifact is for {plan.head_sha[:12]}, the run for {head_sha[:12]}"
        )
    gh = ghclient.connect(ctx)
    try:
        # The number is the artifact's word: believe it only when that pull request's head is
        # the very commit the run was for, from the same repository.
        pr = ghclient.call(
            f"read pull request #{plan.number}",
            lambda: _loaded_pull(gh, ctx.repository, plan.number),
            api_url=ctx.api_url,
        )
        if pr.head.repo is None or pr.head.repo.full_name != head_repo:
            raise planartifact.BadArtifact(
                f"pull request #{plan.number} does not come from {head_repo or 'that run'}"
            )
        if pr.head.sha != head_sha:
            log.warning(
                "pull request #%d moved on to %s; the run for that commit comments",
                plan.number,
                pr.head.sha[:12],
            )
            return 0
        touched = ghclient.call(
            f"list the files of pull request #{plan.number}",
            lambda: own_code_changed(pr),
            api_url=ctx.api_url,
        )
        caution = ""
        if touched:
            caution = (
                f"this pull request changes {', '.join(touched)}: the plan was made by the pull "
                "request's own code, so it vouches for nothing; a maintainer reviews those "
                "changes before merging"
            )
        body = prcomment.render(
            plan.sections, plan.ok, commit=head_sha, run_url=run_url, caution=caution
        )
        done = prcomment.post(
            gh, body, repository=ctx.repository, number=plan.number, author=ctx.bot_login
        )
    finally:
        gh.close()
    print(f"plan comment on {ctx.repository}#{plan.number}: {done}")
    return 0


def propose(*, repo: Path) -> int:
    """Bring the work tree's lock and Dockerfiles to the default branch (github.changes)."""
    cfg = load_settings(repo)
    ctx = ghclient.context()
    if not cfg.github.enabled(ctx.repository):
        raise InputError(
            f"mirrors/relay.yaml: github.repository is {cfg.github.repository or 'unset'}, "
            f"not {ctx.repository}; relay proposes changes only there"
        )
    if not planartifact.SHA_RE.fullmatch(ctx.sha):
        raise InputError("relay github propose needs GITHUB_SHA, the commit the run checked out")
    default_branch = str((ctx.event.get("repository") or {}).get("default_branch") or "main")
    found = changes_mod.working_changes(repo)
    described = changes_mod.describe(repo, ctx.run_url)
    gh = ghclient.connect(ctx)
    try:
        proposal = changes_mod.propose(
            gh,
            ctx,
            cfg.github,
            found,
            base_sha=ctx.sha,
            default_branch=default_branch,
            title=described.title,
            body=described.body,
            moved=described.moved,
        )
    finally:
        gh.close()
    ghactions.output("deliver", "true" if proposal.deliver else "false")
    ghactions.output("sha", proposal.sha)
    ghactions.output("result", proposal.result.replace(" ", "-"))
    ghactions.output("pull-request", proposal.url)
    line = f"{len(found)} file(s) changed: {proposal.result}"
    if proposal.url:
        line += f" ({proposal.url})"
    print(line)
    ghactions.summary(f"### relay: changes to {default_branch}\n\n{line}\n")
    return 0


def report_run(*, ok: bool, what: str) -> int:
    ctx = ghclient.context()
    gh = ghclient.connect(ctx)
    try:
        done = failures.report(gh, ctx, ok=ok, what=what)
    finally:
        gh.close()
    print(f"failure issue: {done}")
    return 0


# What pr.yml installs and runs relay from: a pull request changing these made its own plan
# (and could make it say anything), so its verdict is no verdict.
OWN_CODE = ("relay/", ".github/", "requirements/", "pyproject.toml")
MAX_FILES = 3000  # GitHub lists at most 3000 files of a pull request ("List pull request files")


def own_code_changed(pr: PullRequest) -> list[str]:
    """Which of OWN_CODE the pull request changes (relay's fixed names, never its paths)."""
    found: set[str] = set()
    for i, f in enumerate(pr.get_files()):
        if i >= MAX_FILES:
            break
        for prefix in OWN_CODE:
            # A rename moves code too: its old path counts as much as the new one.
            if any(p.startswith(prefix) for p in (f.filename, f.previous_filename or "")):
                found.add(prefix.rstrip("/") + ("/**" if prefix.endswith("/") else ""))
    return sorted(found)


def _loaded_pull(gh: Github, repository: str, number: int) -> PullRequest:
    pull = gh.get_repo(repository).get_pull(number)
    pull.update()  # the client is lazy: fetch now, inside the error mapping
    return pull
