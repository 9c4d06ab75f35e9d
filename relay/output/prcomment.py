"""The plan as a pull-request comment: rendered here, posted with PyGithub.

One comment per pull request, found again by a hidden marker *and* its author (relay's own
identity: a marker copied into someone else's comment is not relay's), and edited in place, so
a PR pushed to ten times carries one up-to-date plan rather than ten stale ones. The comment
names the commit it is for and links the run that made it. When two runs race and both create
one, the later run keeps the oldest and deletes the rest.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from relay import safety
from relay.gh import client as ghclient

if TYPE_CHECKING:
    from github import Github
    from github.IssueComment import IssueComment

log = logging.getLogger(__name__)

MARKER = "<!-- relay-plan -->"
# GitHub refuses comments over 65,536 characters; a huge plan is cut with a pointer to the log.
MAX_BODY = 60_000
SHA_RE = re.compile(r"[0-9a-f]{40}")

Outcome = Literal["created", "updated", "unchanged"]


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    empty: str = "nothing to do"


def inline(text: str, limit: int = 200) -> str:
    """Text that may stand outside a code block: one printable line with no emphasis, code,
    link, image or HTML (the characters that open them are escaped) and no @mention that would
    notify someone."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)[:limit]
    text = re.sub(r"([\\`*_\[\]<>~])", r"\\\1", text)
    return text.replace("@", "@\u200b")


def render(
    sections: list[Section],
    ok: bool,
    *,
    commit: str | None = None,
    run_url: str | None = None,
    caution: str = "",
) -> str:
    """Markdown for the comment (and the job summary): a verdict, then a block per section.
    Section lines go inside code blocks; titles are escaped (they may come from an untrusted
    plan artifact, relay.gh.planartifact). A `caution` (relay's own words) replaces the ✅."""
    verdict = "✅ the plan is ready to merge" if ok else "❌ fix the problems below"
    if caution:
        verdict = f"⚠️ {caution}" if ok else f"{verdict}\n\n⚠️ {caution}"
    out = [MARKER, "### relay plan", "", verdict, ""]
    about = []
    if commit and SHA_RE.fullmatch(commit):
        about.append(f"for commit {commit[:12]}")
    if run_url and run_url.startswith("https://") and " " not in run_url:
        about.append(f"[the run that made it]({run_url.replace(')', '%29')})")
    if about:
        out[3:3] = [f"<sub>Plan {' · '.join(about)}</sub>", ""]
    for section in sections:
        out.append(f"**{inline(section.title)}**")
        out.append("")
        if section.lines:
            out.append("```")
            out.extend(line.replace("```", "'''") for line in section.lines)
            out.append("```")
        else:
            out.append(f"_{inline(section.empty)}_")
        out.append("")
    # No secret, no control character on the PR; the zero-width space is inline()'s own, which
    # keeps an @mention from a title from notifying anyone.
    body = safety.clean_block("\n".join(out), keep="\u200b")
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n```\n\n_…cut short; the job log has the whole plan._\n"
    return body


def render_text(sections: list[Section], ok: bool) -> str:
    """The plan for a terminal: the same verdict and sections as the comment, as plain text
    (no Markdown, no marker), section lines indented under their titles."""
    out = ["relay plan: " + ("ready to merge" if ok else "not ready: fix the problems"), ""]
    for section in sections:
        out.append(section.title)
        if section.lines:
            out.extend(f"  {line}" for line in section.lines)
        else:
            out.append(f"  ({section.empty})")
        out.append("")
    return "\n".join(out).rstrip("\n")


def pull_request_number(environ: Mapping[str, str]) -> int | None:
    """The PR number from the Actions event payload, if this run is for a pull request."""
    event = ghclient.read_event(environ)
    return _number(event)


def pull_request_head(environ: Mapping[str, str]) -> str | None:
    """The head commit of the pull request this run is for (not GITHUB_SHA, the merge ref)."""
    head = (ghclient.read_event(environ).get("pull_request") or {}).get("head") or {}
    sha = head.get("sha") if isinstance(head, dict) else None
    return sha if isinstance(sha, str) and SHA_RE.fullmatch(sha) else None


def _number(event: Mapping[str, Any]) -> int | None:
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def post(gh: Github, body: str, *, repository: str, number: int, author: str) -> Outcome:
    """Create or update relay's comment on the pull request; returns what happened. Raises
    relay errors (relay.gh.client.call) for GitHub's refusals."""
    # The client is lazy: neither the repository nor the issue is fetched, only the comments.
    issue = gh.get_repo(repository).get_issue(number)
    api = gh.requester.base_url

    def ours() -> list[IssueComment]:
        return [
            c
            for c in issue.get_comments()
            if MARKER in (c.body or "") and c.user is not None and c.user.login == author
        ]

    what = f"comment on {repository}#{number}"
    found = ghclient.call(what, ours, api_url=api)
    outcome: Outcome
    extra: list[IssueComment]
    if found:
        keep, *extra = sorted(found, key=lambda c: c.id)
        if keep.body == body:
            outcome = "unchanged"
        else:
            ghclient.call(what, lambda: keep.edit(body), api_url=api)
            outcome = "updated"
    else:
        ghclient.call(what, lambda: issue.create_comment(body), api_url=api)
        outcome = "created"
        # A run that raced this one may have created one too: keep the oldest.
        extra = []
        again = sorted(ghclient.call(what, ours, api_url=api), key=lambda c: c.id)
        if len(again) > 1:
            keep, *extra = again
            if keep.body != body:
                ghclient.call(what, lambda: keep.edit(body), api_url=api)
    for duplicate in extra:
        ghclient.call(what, duplicate.delete, api_url=api)
    return outcome
