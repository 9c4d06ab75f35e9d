"""One issue for failing scheduled runs: opened on the first failure, commented on by the next
ones (never a second issue), closed by the first run that succeeds again.

The issue is found by a hidden marker *and* relay's own login, so an issue someone else opened
with the marker pasted in is never touched.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Literal

from relay.gh import client as ghclient
from relay.gh.client import Context

if TYPE_CHECKING:
    from github import Github
    from github.Issue import Issue

log = logging.getLogger(__name__)

MARKER = "<!-- relay-run-failure -->"
TITLE = "relay: scheduled runs are failing"

Outcome = Literal["opened", "commented", "closed", "nothing to do"]


def report(gh: Github, ctx: Context, *, ok: bool, what: str) -> Outcome:
    """Record the outcome of this run (`what`: e.g. "the scheduled lock update")."""
    repo = gh.get_repo(ctx.repository)
    api = ctx.api_url
    where = f"the failure issue of {ctx.repository}"

    def ours() -> Issue | None:
        for issue in repo.get_issues(state="open", sort="created", direction="asc"):
            if issue.pull_request is not None:
                continue
            if MARKER in (issue.body or "") and issue.user and issue.user.login == ctx.bot_login:
                return issue
        return None

    found = ghclient.call(where, ours, api_url=api)
    run = f"[run {ctx.run_id}]({ctx.run_url})" if ctx.run_url else "a run"
    if ok:
        if found is None:
            return "nothing to do"
        note = f"{what} succeeded again in {run}; closing."
        ghclient.call(where, partial(found.create_comment, note), api_url=api)
        ghclient.call(
            where, partial(found.edit, state="closed", state_reason="completed"), api_url=api
        )
        return "closed"
    if found is not None:
        note = f"{what} failed again in {run}."
        ghclient.call(where, partial(found.create_comment, note), api_url=api)
        return "commented"
    body = (
        f"{MARKER}\n{what} failed in {run}. relay comments here on each further failure and "
        "closes this issue when a run succeeds again.\n"
    )
    ghclient.call(where, partial(repo.create_issue, TITLE, body), api_url=api)
    return "opened"
