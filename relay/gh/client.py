"""The Actions context and one PyGithub client: its retry policy, its timeouts, and the one
mapping of GitHub's refusals onto relay's errors.

Retries are PyGithub's own `GithubRetry` (urllib3 underneath), which knows GitHub's signals: a
403 or 429 that is a primary rate limit waits for `X-RateLimit-Reset`, a secondary rate limit
honours `Retry-After` or waits `SECONDARY_RATE_WAIT`, and 5xx answers back off. (GitHub's REST
docs, "Rate limits for the REST API": "If you receive a secondary rate limit ... wait until the
time specified by the retry-after header"; without one, "wait for at least one minute".)
Whatever still fails becomes an OperationFailed that names the status and GitHub's message and
never the request, which carries the token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from relay.errors import InputError, OperationFailed

if TYPE_CHECKING:
    from github import Github

T = TypeVar("T")

DEFAULT_API = "https://api.github.com"
DEFAULT_SERVER = "https://github.com"
# The identity GITHUB_TOKEN acts as (GitHub docs, "Automatic token authentication"); comments,
# commits and issues relay makes with it carry this login. With another token (a GitHub App's,
# say) set RELAY_BOT_LOGIN to that token's login.
BOT_LOGIN = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# What an event file may weigh before relay refuses to read it (GitHub caps webhook payloads
# at 25 MB).
MAX_EVENT_BYTES = 25 * 1024 * 1024

# The retry policy; module attributes so tests can shorten the waits.
ATTEMPTS = 5
BACKOFF = 1.0  # urllib3 backoff factor: 0, 2, 4, 8 ... seconds between 5xx retries
SECONDARY_RATE_WAIT = 60.0
MAX_RATE_LIMIT_WAIT = 900.0  # beyond this, fail rather than sit out a primary limit
TIMEOUT = 30
# GitHub asks integrations to pace writes ("Best practices for using the REST API": at least one
# second between mutative requests).
SECONDS_BETWEEN_REQUESTS = 0.25
SECONDS_BETWEEN_WRITES = 1.0


@dataclass(frozen=True)
class Context:
    """What GitHub Actions tells a step about its run (the default environment variables)."""

    repository: str
    token: str = field(repr=False)
    api_url: str = DEFAULT_API
    server_url: str = DEFAULT_SERVER
    run_id: str = ""
    event_name: str = ""
    sha: str = ""
    event: Mapping[str, Any] = field(default_factory=dict, repr=False)
    bot_login: str = BOT_LOGIN

    @property
    def run_url(self) -> str:
        if not self.run_id:
            return ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"


def context(environ: Mapping[str, str] | None = None, *, need_token: bool = True) -> Context:
    """The context from the environment; an InputError when the repository or token is missing."""
    env = os.environ if environ is None else environ
    repository = env.get("GITHUB_REPOSITORY", "")
    token = env.get("GITHUB_TOKEN", "")
    if not repository or (need_token and not token):
        raise InputError(
            "this command talks to GitHub: it needs GITHUB_REPOSITORY and GITHUB_TOKEN (set by "
            "GitHub Actions; pass the token as env: GITHUB_TOKEN: ${{ github.token }})"
        )
    return Context(
        repository=repository,
        token=token,
        api_url=env.get("GITHUB_API_URL") or DEFAULT_API,
        server_url=env.get("GITHUB_SERVER_URL") or DEFAULT_SERVER,
        run_id=env.get("GITHUB_RUN_ID", ""),
        event_name=env.get("GITHUB_EVENT_NAME", ""),
        sha=env.get("GITHUB_SHA", ""),
        event=read_event(env),
        bot_login=env.get("RELAY_BOT_LOGIN") or BOT_LOGIN,
    )


def read_event(environ: Mapping[str, str]) -> Mapping[str, Any]:
    """The event payload (GITHUB_EVENT_PATH), or {} outside Actions or when it is unreadable."""
    path = environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > MAX_EVENT_BYTES:
            return {}
        event = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return event if isinstance(event, dict) else {}


def connect(ctx: Context) -> Github:
    """A PyGithub client with GitHub's own retry policy. `lazy`: objects fetched only when read,
    so `get_repo(...).get_issue(n)` costs one request, not two."""
    from github import Auth, Github, GithubRetry

    retry = GithubRetry(
        total=ATTEMPTS - 1,
        backoff_factor=BACKOFF,
        secondary_rate_wait=SECONDARY_RATE_WAIT,
        max_rate_limit_wait=MAX_RATE_LIMIT_WAIT,
    )
    return Github(
        auth=Auth.Token(ctx.token),
        base_url=ctx.api_url,
        retry=retry,
        timeout=TIMEOUT,
        lazy=True,
        seconds_between_requests=SECONDS_BETWEEN_REQUESTS,
        seconds_between_writes=SECONDS_BETWEEN_WRITES,
    )


def call(what: str, fn: Callable[[], T], *, api_url: str = DEFAULT_API) -> T:
    """Run `fn` (PyGithub calls); GitHub's refusals and an unreachable API become one
    OperationFailed (ReadOnlyToken for a read-only token) saying `what` failed and why."""
    from github import GithubException
    from github.GithubException import RateLimitExceededExceedsMaxWait

    try:
        return fn()
    except RateLimitExceededExceedsMaxWait as exc:
        raise OperationFailed(
            f"{what}: GitHub's rate limit would need a wait of {exc.wait:.0f}s; try later"
        ) from None
    except GithubException as exc:
        raise refusal(what, exc.status, exc.data) from None
    except requests.exceptions.RetryError as exc:
        raise OperationFailed(
            f"{what}: GitHub kept failing after {ATTEMPTS} tries ({_why(exc)})"
        ) from None
    except (requests.exceptions.RequestException, OSError) as exc:
        raise OperationFailed(
            f"{what}: GitHub's API at {api_url} is unreachable ({_why(exc)})"
        ) from None


class ReadOnlyToken(OperationFailed):
    """The token may read but not write: a fork's pull request, or a workflow without the
    permission. The caller decides whether that is fatal."""


class BadToken(OperationFailed):
    """GitHub refused the token itself (401)."""


def refusal(what: str, status: int, data: object) -> OperationFailed:
    message = data.get("message") if isinstance(data, dict) else None
    detail = f"HTTP {status}: {_clean(str(message)) if message else 'no message'}"
    if status == 401:
        return BadToken(
            f"{what}: GitHub refused the token ({detail}); is GITHUB_TOKEN a valid token?"
        )
    if status == 403 and message and "not accessible by integration" in str(message):
        return ReadOnlyToken(
            f"{what}: the token may not do this ({detail}); a pull request from a fork gets a "
            "read-only token, and a workflow needs the permission in `permissions:`"
        )
    return OperationFailed(f"{what}: {detail}")


def _why(exc: BaseException) -> str:
    # The exception's class and GitHub's reason, never the URL's query or the headers.
    reason = getattr(exc, "reason", None) or (exc.args[0] if exc.args else "")
    text = str(reason)
    if "Max retries exceeded" in text and "(Caused by" in text:
        text = text.split("(Caused by", 1)[1].rstrip(")")
    return f"{type(exc).__name__}: {_clean(text)[:200]}"


def _clean(text: str) -> str:
    """One line of printable text from what a server sent."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()[:500]
