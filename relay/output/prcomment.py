"""The plan as a pull-request comment: rendered here, posted with PyGithub.

One comment per pull request, found again by a hidden marker and edited in place, so a PR that
is pushed to ten times carries one up-to-date plan rather than ten stale ones.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from relay import safety
from relay.errors import OperationFailed

log = logging.getLogger(__name__)

MARKER = "<!-- relay-plan -->"
# GitHub refuses comments over 65,536 characters; a huge plan is cut with a pointer to the log.
MAX_BODY = 60_000


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    empty: str = "nothing to do"


def render(sections: list[Section], ok: bool) -> str:
    """Markdown for the comment (and the job summary): a verdict, then a block per section."""
    verdict = "✅ the plan is ready to merge" if ok else "❌ fix the problems below"
    out = [MARKER, "### relay plan", "", verdict, ""]
    for section in sections:
        out.append(f"**{section.title}**")
        out.append("")
        if section.lines:
            out.append("```")
            out.extend(line.replace("```", "'''") for line in section.lines)
            out.append("```")
        else:
            out.append(f"_{section.empty}_")
        out.append("")
    body = safety.clean_block("\n".join(out))  # no secret, no control character on the PR
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n```\n\n_…cut short; the job log has the whole plan._\n"
    return body


def pull_request_number(environ: Mapping[str, str]) -> int | None:
    """The PR number from the Actions event payload, if this run is for a pull request."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    return number if isinstance(number, int) else None


def post(
    body: str,
    *,
    repository: str,
    number: int,
    token: str,
    api_url: str = "https://api.github.com",
    throttle: bool = True,
) -> str:
    """Create or update relay's comment on the pull request; returns what happened."""
    from github import Auth, Github, GithubException  # PyGithub: only this command needs it

    # lazy: no request until one is needed, so the repository itself is never fetched.
    gh = Github(
        auth=Auth.Token(token),
        base_url=api_url,
        retry=2,
        lazy=True,
        seconds_between_requests=0.25 if throttle else 0,
        seconds_between_writes=1.0 if throttle else 0,
    )
    try:
        repo = gh.get_repo(repository)
        issue = repo.get_issue(number)
        for comment in issue.get_comments():
            if MARKER in (comment.body or ""):
                if comment.body == body:
                    return "unchanged"
                comment.edit(body)
                return "updated"
        issue.create_comment(body)
        return "created"
    except GithubException as exc:
        # The message GitHub sends; never the request, which carries the token.
        detail = exc.data.get("message") if isinstance(exc.data, dict) else exc.status
        raise OperationFailed(
            f"could not comment on {repository}#{number}: HTTP {exc.status}: {detail}"
        ) from None
    finally:
        gh.close()


def environment(environ: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """(repository, token, API URL) from the Actions environment."""
    env = os.environ if environ is None else environ
    repository = env.get("GITHUB_REPOSITORY", "")
    token = env.get("GITHUB_TOKEN", "")
    if not repository or not token:
        raise OperationFailed(
            "commenting needs GITHUB_REPOSITORY and GITHUB_TOKEN (set by GitHub Actions; pass "
            "the token as env: GITHUB_TOKEN: ${{ github.token }})"
        )
    return repository, token, env.get("GITHUB_API_URL", "https://api.github.com")
