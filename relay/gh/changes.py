"""The lock and the Dockerfiles relay produced, brought to the default branch.

Two ways, chosen by `github.changes` in mirrors/relay.yaml:

* `pull-request` (the default, and what a protected branch needs): one commit on the bot
  branch (`github.branch`), created or force-updated, and one pull request from it, created or
  updated, listing every added, moved and removed tag. A person sees a moved upstream tag before
  anything is rebuilt. When the lock already matches, a leftover bot pull request is closed.
* `push`: the commit goes straight onto the default branch, fast-forward only, with a token
  allowed to bypass its protection. When the branch moved since the run started, the run is
  superseded (the newer commit's run does the work) and pushes nothing. A moved upstream tag
  never goes this way: a tag that now names another image is a change a person reviews, so it
  arrives as the pull request above even in push mode (new and removed tags still push).

The commit is made with the Git data API (trees, commits, refs), not `git push`: the runner
needs no credentials on disk, and the change is one atomic commit on top of exactly the commit
the run checked out. Its author is GitHub's documented bot identity.
"""

from __future__ import annotations

import logging
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

from relay.config import lockfile
from relay.errors import InputError, OperationFailed
from relay.gh import client as ghclient
from relay.gh.client import Context
from relay.gh.settings import GithubSettings
from relay.stages import lock as lock_stage

if TYPE_CHECKING:
    from github import Github
    from github.GithubObject import CompletableGithubObject
    from github.GitRef import GitRef
    from github.Repository import Repository

T = TypeVar("T")
G = TypeVar("G", bound="CompletableGithubObject")

log = logging.getLogger(__name__)

PATHS = (lockfile.LOCK_FILE, "mirrors/dockerfiles")
MARKER = "<!-- relay-changes -->"
MAX_LISTED = 300  # changes listed in the pull request body; the rest are counted

Result = Literal["up to date", "pull request", "pushed", "superseded"]


@dataclass(frozen=True)
class Description:
    """The pull request's title and body, and how many locked tags moved upstream."""

    title: str
    body: str
    moved: int


@dataclass(frozen=True)
class FileChange:
    path: str
    content: str | None  # None: delete


@dataclass(frozen=True)
class Proposal:
    result: Result
    deliver: bool  # whether the default branch now holds what should be delivered
    sha: str  # the commit to deliver from
    url: str = ""


def working_changes(repo: Path) -> list[FileChange]:
    """What relay lock and relay generate changed in the work tree (against HEAD), under the
    lock and mirrors/dockerfiles only."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *PATHS],
            cwd=repo,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OperationFailed(f"git status in {repo} failed: {exc}") from None
    changes = []
    for item in out.decode("utf-8").split("\0"):
        if not item:
            continue
        status, path = item[:2], item[3:]
        if "R" in status or "C" in status:
            raise InputError(f"{path}: renamed in the work tree; relay writes no renames")
        if "D" in status:
            changes.append(FileChange(path, None))
            continue
        info = (repo / path).lstat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file; relay writes only regular files")
        changes.append(FileChange(path, (repo / path).read_text(encoding="utf-8")))
    return sorted(changes, key=lambda c: c.path)


def describe(repo: Path, run_url: str, *, now: datetime | None = None) -> Description:
    """The pull request's title and body: each added, moved and removed tag (a moved tag with
    its old and new digest, and when this run saw it move), from the lock at HEAD to the lock
    in the work tree."""
    try:
        before_text = subprocess.run(
            ["git", "show", f"HEAD:{lockfile.LOCK_FILE}"],
            cwd=repo,
            capture_output=True,
            check=False,
        ).stdout.decode("utf-8")
    except OSError as exc:
        raise OperationFailed(f"git show in {repo} failed: {exc}") from None
    before = lockfile.parse(before_text, lockfile.LOCK_FILE)
    after = lockfile.read(repo)
    diff = lock_stage.diff(before, after)
    seen = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    kinds = {k: [c for c in diff if c.kind == k] for k in ("add", "move", "remove")}
    if kinds["move"]:
        title = f"relay: {len(kinds['move'])} upstream tag(s) moved"
    elif kinds["add"]:
        title = f"relay: lock {len(kinds['add'])} new tag(s)"
    else:
        title = "relay: update the lock and the Dockerfiles"
    lines = [
        MARKER,
        "relay lock and relay generate made these changes; merging this pull request lets the",
        "delivery (ACR or the copy transport) and the Harbor job act on them.",
        "",
    ]
    if kinds["move"]:
        lines += [
            f"**Moved upstream** (seen by relay at {seen}): the tag now names another image. "
            "Check that the new image is one you want before merging.",
            "",
            "| image | old digest | new digest |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{c.source}:{c.tag}` | `{c.old}` | `{c.new}` |" for c in kinds["move"][:MAX_LISTED]
        ]
        lines.append("")
    for kind, heading in (("add", "Added"), ("remove", "Removed")):
        if kinds[kind]:
            lines += [f"**{heading}**", ""]
            lines += [
                f"- `{c.source}:{c.tag}` `{c.new or c.old}`" for c in kinds[kind][:MAX_LISTED]
            ]
            lines.append("")
    hidden = sum(max(0, len(v) - MAX_LISTED) for v in kinds.values())
    if hidden:
        lines += [f"_…and {hidden} more; the diff of {lockfile.LOCK_FILE} has them all._", ""]
    if run_url:
        lines.append(f"Made by [this run]({run_url}).")
    return Description(title, "\n".join(lines) + "\n", len(kinds["move"]))


def propose(
    gh: Github,
    ctx: Context,
    settings: GithubSettings,
    changes: list[FileChange],
    *,
    base_sha: str,
    default_branch: str,
    title: str,
    body: str,
    moved: int = 0,
) -> Proposal:
    """Bring `changes` (made on top of `base_sha`) to `default_branch` as `settings` says;
    `moved` locked tags that now name another image always go as a pull request."""
    repo = gh.get_repo(ctx.repository)
    api = ctx.api_url

    def call(what: str, fn: Callable[[], T]) -> T:
        return ghclient.call(what, fn, api_url=api)

    if not changes:
        # In push mode too: a moved tag's pull request may be left over.
        _close_stale(repo, ctx, settings, default_branch)
        return Proposal("up to date", True, base_sha)
    push = settings.changes == "push"
    if push and moved:
        log.warning(
            "%d upstream tag(s) moved: proposing a pull request for a person to review, "
            "not pushing (github.changes: push applies to new and removed tags only)",
            moved,
        )
        push = False
    from github import InputGitAuthor, InputGitTreeElement

    base = call(f"read commit {base_sha[:12]}", lambda: _loaded(repo.get_git_commit(base_sha)))
    elements = [
        InputGitTreeElement(c.path, "100644", "blob", content=c.content)
        if c.content is not None
        else InputGitTreeElement(c.path, "100644", "blob", sha=None)
        for c in changes
    ]
    tree = call("create the tree", lambda: repo.create_git_tree(elements, base.tree))
    bot = InputGitAuthor(ghclient.BOT_LOGIN, ghclient.BOT_EMAIL)
    message = f"{title}\n\nMade by {ctx.run_url or 'relay'}."
    commit = call(
        "create the commit",
        lambda: repo.create_git_commit(message, tree, [base], author=bot, committer=bot),
    )
    if push:
        return _push(repo, ctx, commit.sha, base_sha, default_branch)
    return _pull_request(repo, ctx, settings, commit.sha, tree.sha, default_branch, title, body)


def _push(repo: Repository, ctx: Context, sha: str, base_sha: str, branch: str) -> Proposal:
    from github import GithubException

    what = f"push to {branch}"
    ref = ghclient.call(
        what, lambda: _loaded(repo.get_git_ref(f"heads/{branch}")), api_url=ctx.api_url
    )
    if ref.object.sha != base_sha:
        log.warning("%s moved since this run started; the newer commit's run does the work", branch)
        return Proposal("superseded", False, ref.object.sha)
    refused: list[GithubException] = []

    def fast_forward() -> None:
        try:
            ref.edit(sha, force=False)
        except GithubException as exc:
            if exc.status != 422:
                raise
            refused.append(exc)

    ghclient.call(what, fast_forward, api_url=ctx.api_url)
    if not refused:
        return Proposal("pushed", True, sha)
    # GitHub answers 422 both for "Update is not a fast forward" (the branch moved just now)
    # and when branch protection or a ruleset blocks the push: only the branch itself tells.
    now = ghclient.call(
        f"read {branch} again",
        lambda: _loaded(repo.get_git_ref(f"heads/{branch}")),
        api_url=ctx.api_url,
    )
    if now.object.sha != base_sha:
        log.warning("%s moved while this run pushed; the newer commit's run does the work", branch)
        return Proposal("superseded", False, now.object.sha)
    detail = ghclient.refusal(what, refused[0].status, refused[0].data)
    raise OperationFailed(
        f"{detail}; {branch} has not moved, so its branch protection or a ruleset blocked the "
        "push: set `github.changes: pull-request` in mirrors/relay.yaml, or give the lock job a "
        "token allowed to bypass them (RELAY_BOT_TOKEN)"
    )


def _pull_request(
    repo: Repository,
    ctx: Context,
    settings: GithubSettings,
    sha: str,
    tree_sha: str,
    default_branch: str,
    title: str,
    body: str,
) -> Proposal:
    api = ctx.api_url
    branch = settings.branch
    what = f"update the branch {branch}"
    ref = ghclient.call(what, lambda: _ref_or_none(repo, branch), api_url=api)
    if ref is None:
        ghclient.call(what, lambda: repo.create_git_ref(f"refs/heads/{branch}", sha), api_url=api)
    else:
        current = ghclient.call(
            what, lambda: _loaded(repo.get_git_commit(ref.object.sha)), api_url=api
        )
        if current.tree.sha != tree_sha:  # the same files: leave the branch (and its checks)
            ghclient.call(what, lambda: ref.edit(sha, force=True), api_url=api)
    owner = ctx.repository.split("/", 1)[0]
    what = f"open the pull request from {branch}"
    found = ghclient.call(
        what,
        lambda: list(repo.get_pulls(state="open", head=f"{owner}:{branch}", base=default_branch)),
        api_url=api,
    )
    if found:
        pr = found[0]
        if pr.title != title or pr.body != body:
            ghclient.call(what, lambda: pr.edit(title=title, body=body), api_url=api)
    else:
        pr = ghclient.call(
            what,
            lambda: repo.create_pull(base=default_branch, head=branch, title=title, body=body),
            api_url=api,
        )
    if settings.auto_merge:
        try:
            ghclient.call("enable auto-merge", lambda: pr.enable_automerge("SQUASH"), api_url=api)
        except OperationFailed as exc:
            # Auto-merge must be allowed in the repository's settings; the PR stands anyway.
            log.warning("%s", exc)
    return Proposal("pull request", False, sha, pr.html_url)


def _loaded(obj: G) -> G:
    """`obj` fetched now (the client is lazy), so GitHub's answer meets relay's error mapping
    inside client.call rather than at the first attribute read."""
    obj.update()
    return obj


def _ref_or_none(repo: Repository, branch: str) -> GitRef | None:
    from github import UnknownObjectException

    try:
        ref = repo.get_git_ref(f"heads/{branch}")
        ref.object  # noqa: B018 - the client is lazy: this is the GET
    except UnknownObjectException:  # 404: the branch does not exist yet
        return None
    return ref


def _close_stale(repo: Repository, ctx: Context, settings: GithubSettings, base: str) -> None:
    owner = ctx.repository.split("/", 1)[0]
    what = f"close the pull request from {settings.branch}"
    for pr in ghclient.call(
        what,
        lambda: list(repo.get_pulls(state="open", head=f"{owner}:{settings.branch}", base=base)),
        api_url=ctx.api_url,
    ):
        if pr.user is None or pr.user.login != ctx.bot_login:
            continue
        note = f"The lock on {base} already matches upstream ({ctx.run_url or 'relay'}); closing."
        ghclient.call(what, partial(pr.create_issue_comment, note), api_url=ctx.api_url)
        ghclient.call(what, partial(pr.edit, state="closed"), api_url=ctx.api_url)
