"""A stand-in for GitHub's REST API on 127.0.0.1, for relay's GitHub layer (PyGithub underneath).

Response shapes follow GitHub's REST documentation (docs.github.com/rest), trimmed to the fields
PyGithub and relay read, for one repository:

* pulls: list (state, head, base filters), get, create, update — `/repos/{o}/{r}/pulls[/{n}]`;
  a pull request's changed files, paginated — `/pulls/{n}/files` (`pull["files"]`, paths)
* issues and their comments: list with pagination (`per_page`, `page`, a `Link` header with
  rel="next"/"last"), create, update, delete; each comment and issue has its author (`user`)
* git data: commits, trees (with `base_tree`, and `sha: null` deleting a path), refs (get one
  `git/ref/heads/B`, create `git/refs`, update with `force`, 422 "Update is not a fast forward";
  a branch in `protected` answers every update with 422 "Protected branch update failed",
  as GitHub does when branch protection or a ruleset blocks it)
* contents: `GET /repos/{o}/{r}/contents/{path}?ref=` (base64)
* check runs and their annotations — filled from workflow commands (`::error file=…,line=…::`)
  the way the Actions runner turns a step's output into annotations
* GraphQL: the enablePullRequestAutoMerge mutation only

Tokens: `BOT_TOKEN` acts as github-actions[bot] with write access; `FORK_TOKEN` is a fork's
read-only GITHUB_TOKEN (every write: 403 "Resource not accessible by integration");
`USER_TOKEN` acts as a person; anything else is 401 "Bad credentials". Faults are queued per
request: a secondary rate limit (403 with Retry-After, or with only the documented message), a
primary rate limit (403, x-ratelimit-remaining 0), 502 Bad Gateway, or a dropped connection.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from relay.sandbox.common.httpserver import FakeServer

BOT_TOKEN = "ghs_relayTestBotToken_0123456789abcdef"
FORK_TOKEN = "ghs_relayTestForkToken_0123456789abcdef"
USER_TOKEN = "ghp_relayTestUserToken_0123456789abcdef"
BAD_TOKEN = "ghs_notAToken"
DOCS = "https://docs.github.com/rest"

SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


@dataclass
class User:
    login: str
    id: int
    type: str  # "Bot" or "User"
    write: bool

    def json(self) -> dict[str, Any]:
        return {"login": self.login, "id": self.id, "type": self.type, "site_admin": False}


USERS = {
    BOT_TOKEN: User("github-actions[bot]", 41898282, "Bot", True),
    FORK_TOKEN: User("github-actions[bot]", 41898282, "Bot", False),
    USER_TOKEN: User("alice", 1001, "User", True),
}


@dataclass
class Fault:
    kind: str  # "secondary", "secondary-no-header", "primary", "502", "drop"
    method: str | None = None  # only requests with this method
    path: str | None = None  # only requests whose path contains this


@dataclass
class Issue:
    number: int
    title: str
    body: str
    user: User
    state: str = "open"
    state_reason: str | None = None
    pull: dict[str, Any] | None = None  # head/base for a pull request
    created: float = field(default_factory=time.time)


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    user: User


class FakeGitHub:
    """One repository's worth of GitHub. `url` is the API base URL to hand PyGithub."""

    user_scopes = "repo, workflow"  # what USER_TOKEN, a classic token, is said to hold

    def __init__(self, repository: str = "octo/mirrors", default_branch: str = "main") -> None:
        self.repository = repository
        self.default_branch = default_branch
        self.lock = threading.Lock()
        self.issues: dict[int, Issue] = {}
        self.comments: dict[int, Comment] = {}
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, str]] = {}  # sha -> path -> blob sha (flattened)
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}  # "heads/main" -> commit sha
        self.protected: set[str] = set()  # "heads/main": updates refused with 422
        self.check_runs: dict[int, list[dict[str, Any]]] = {}
        self.graphql: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, str]] = []  # method, path, login or "-"
        self.faults: list[Fault] = []
        self._ids = iter(range(1000, 10**9))
        self.server = FakeServer(("127.0.0.1", 0), _Handler, self)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        root = self.commit({".gitkeep": b""}, [], "initial")
        self.refs[f"heads/{default_branch}"] = root

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- setting the scene ---------------------------------------------------------------------

    def commit(self, files: dict[str, bytes], parents: list[str], message: str) -> str:
        """A commit whose tree holds exactly `files`; its sha."""
        tree = {path: self._blob(data) for path, data in files.items()}
        tree_sha = self._tree(tree)
        return self._commit(tree_sha, parents, message, {"name": "x", "email": "x@example.com"})

    def add_issue(
        self, title: str, body: str, user: User, pull: dict[str, Any] | None = None
    ) -> int:
        with self.lock:
            number = len(self.issues) + 1
            self.issues[number] = Issue(number, title, body, user, pull=pull)
            return number

    def add_pull(
        self, head_sha: str, head_repo: str | None = None, user: User | None = None
    ) -> int:
        branch = f"feature-{len(self.issues) + 1}"
        return self.add_issue(
            "add an image",
            "",
            user or USERS[USER_TOKEN],
            pull={
                "head": {"ref": branch, "sha": head_sha, "repo": head_repo or self.repository},
                "base": {"ref": self.default_branch},
            },
        )

    def add_comment(self, issue: int, body: str, user: User) -> int:
        with self.lock:
            cid = next(self._ids)
            self.comments[cid] = Comment(cid, issue, body, user)
            return cid

    def fail(
        self, kind: str, *, method: str | None = None, path: str | None = None, count: int = 1
    ) -> None:
        self.faults.extend(Fault(kind, method, path) for _ in range(count))

    def annotate_from_log(self, log: str) -> int:
        """A check run with the annotations the runner makes of `::error …::` lines in a step's
        output (docs: "Workflow commands for GitHub Actions"); its id."""
        annotations = []
        for m in re.finditer(r"^::(error|warning|notice)( [^:]*)?::(.*)$", log, re.M):
            props = dict(p.split("=", 1) for p in (m.group(2) or "").strip().split(",") if "=" in p)
            path = _unescape(props.get("file", ""))
            line = int(props.get("line", "1") or 1)
            annotations.append(
                {
                    "path": path or ".github",
                    "start_line": line,
                    "end_line": int(props.get("endLine", line)),
                    "start_column": None,
                    "end_column": None,
                    "annotation_level": {"error": "failure"}.get(m.group(1), m.group(1)),
                    "title": _unescape(props.get("title", "")),
                    "message": _unescape(m.group(3)),
                    "raw_details": None,
                    "blob_href": f"https://github.com/{self.repository}/blob/HEAD/{path}",
                }
            )
        run_id = next(self._ids)
        self.check_runs[run_id] = annotations
        return run_id

    # --- reading the outcome ---------------------------------------------------------------------

    def tree_of(self, ref: str) -> dict[str, bytes]:
        """The files at a branch (`heads/B`) or commit."""
        sha = self.refs.get(ref, ref)
        tree = self.trees[self.commits[sha]["tree"]["sha"]]
        return {path: self.blobs[blob] for path, blob in tree.items()}

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m not in ("GET", "HEAD")]

    def comment_bodies(self, issue: int) -> list[str]:
        return [
            c.body for c in sorted(self.comments.values(), key=lambda c: c.id) if c.issue == issue
        ]

    # --- the git object store --------------------------------------------------------------------

    def _blob(self, data: bytes) -> str:
        sha = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        self.blobs[sha] = data
        return sha

    def _tree(self, entries: dict[str, str]) -> str:
        sha = hashlib.sha1(json.dumps(sorted(entries.items())).encode()).hexdigest()
        self.trees[sha] = dict(entries)
        return sha

    def _commit(self, tree: str, parents: list[str], message: str, author: dict[str, Any]) -> str:
        stamp = {**author, "date": "2026-01-01T00:00:00Z"}
        body = json.dumps([tree, parents, message, stamp], sort_keys=True)
        sha = hashlib.sha1(body.encode()).hexdigest()
        self.commits[sha] = {
            "sha": sha,
            "node_id": f"C_{sha[:10]}",
            "url": f"{self.url}/repos/{self.repository}/git/commits/{sha}",
            "html_url": f"https://github.com/{self.repository}/commit/{sha}",
            "tree": {"sha": tree, "url": f"{self.url}/repos/{self.repository}/git/trees/{tree}"},
            "parents": [
                {"sha": p, "url": f"{self.url}/repos/{self.repository}/git/commits/{p}"}
                for p in parents
            ],
            "message": message,
            "author": stamp,
            "committer": stamp,
            "verification": {"verified": False, "reason": "unsigned"},
        }
        return sha

    def _ancestors(self, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            s = todo.pop()
            if s in seen or s not in self.commits:
                continue
            seen.add(s)
            todo.extend(p["sha"] for p in self.commits[s]["parents"])
        return seen

    # --- JSON shapes -------------------------------------------------------------------------------

    def _repo_url(self) -> str:
        return f"{self.url}/repos/{self.repository}"

    def issue_json(self, issue: Issue) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": issue.number + 500,
            "node_id": f"I_{issue.number}",
            "number": issue.number,
            "url": f"{self._repo_url()}/issues/{issue.number}",
            "html_url": f"https://github.com/{self.repository}/issues/{issue.number}",
            "comments_url": f"{self._repo_url()}/issues/{issue.number}/comments",
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "user": issue.user.json(),
            "labels": [],
            "comments": sum(1 for c in self.comments.values() if c.issue == issue.number),
        }
        if issue.pull is not None:
            doc["pull_request"] = {"url": f"{self._repo_url()}/pulls/{issue.number}"}
        return doc

    def pull_json(self, issue: Issue) -> dict[str, Any]:
        assert issue.pull is not None
        head, base = issue.pull["head"], issue.pull["base"]
        repo_json = lambda full: {"full_name": full, "name": full.split("/")[1]}  # noqa: E731
        return {
            "id": issue.number + 700,
            "node_id": f"PR_{issue.number}",
            "number": issue.number,
            "url": f"{self._repo_url()}/pulls/{issue.number}",
            "html_url": f"https://github.com/{self.repository}/pull/{issue.number}",
            "issue_url": f"{self._repo_url()}/issues/{issue.number}",
            "state": issue.state,
            "title": issue.title,
            "body": issue.body,
            "user": issue.user.json(),
            "head": {
                "label": f"{head['repo'].split('/')[0]}:{head['ref']}",
                "ref": head["ref"],
                "sha": head["sha"],
                "repo": repo_json(head["repo"]) if head["repo"] else None,
            },
            "base": {
                "label": f"{self.repository.split('/')[0]}:{base['ref']}",
                "ref": base["ref"],
                "sha": self.refs.get(f"heads/{base['ref']}", ""),
                "repo": repo_json(self.repository),
            },
            "merged": False,
            "draft": False,
        }

    def comment_json(self, c: Comment) -> dict[str, Any]:
        return {
            "id": c.id,
            "node_id": f"IC_{c.id}",
            "url": f"{self._repo_url()}/issues/comments/{c.id}",
            "html_url": f"https://github.com/{self.repository}/issues/{c.issue}#issuecomment-{c.id}",
            "issue_url": f"{self._repo_url()}/issues/{c.issue}",
            "body": c.body,
            "user": c.user.json(),
            "author_association": "NONE" if c.user.type == "Bot" else "MEMBER",
        }

    def ref_json(self, name: str) -> dict[str, Any]:
        sha = self.refs[name]
        return {
            "ref": f"refs/{name}",
            "node_id": f"REF_{name}",
            "url": f"{self._repo_url()}/git/refs/{name}",
            "object": {"sha": sha, "type": "commit", "url": self.commits[sha]["url"]},
        }

    # --- request handling ------------------------------------------------------------------------

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = urllib.parse.unquote(url.path)
        token = (h.headers.get("Authorization") or "").split(" ", 1)[-1]
        user = USERS.get(token)
        with self.lock:
            self.requests.append((h.command, path, user.login if user else "-"))
            fault = next(
                (
                    f
                    for f in self.faults
                    if (f.method is None or f.method == h.command)
                    and (f.path is None or f.path in path)
                ),
                None,
            )
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None:
            self._fault(h, fault)
            return
        if user is None:
            self._send(h, 401, {"message": "Bad credentials", "documentation_url": DOCS})
            return
        if h.command not in ("GET", "HEAD") and not user.write:
            self._send(
                h,
                403,
                {"message": "Resource not accessible by integration", "documentation_url": DOCS},
            )
            return
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self._send(h, 400, {"message": "Problems parsing JSON"})
            return
        with self.lock:
            status, answer, headers = self._route(h.command, path, query, body, user)
        if token == USER_TOKEN:
            # A classic personal access token: GitHub lists its scopes on every answer
            # ("Scopes for OAuth apps", X-OAuth-Scopes); app and Actions tokens get none.
            headers = {**headers, "X-OAuth-Scopes": self.user_scopes}
        self._send(h, status, answer, headers)

    def _fault(self, h: BaseHTTPRequestHandler, fault: Fault) -> None:
        if fault.kind == "drop":
            h.close_connection = True
            h.connection.close()
            return
        if fault.kind == "502":
            data = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
            h.send_response(502)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        doc = {"message": SECONDARY_MESSAGE, "documentation_url": DOCS}
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4000"}
        if fault.kind == "secondary":
            headers["Retry-After"] = "1"
        elif fault.kind == "primary":
            doc = {
                "message": "API rate limit exceeded for installation ID 1.",
                "documentation_url": DOCS,
            }
            headers.update(
                {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 1)}
            )
        self._send(h, 403, doc, headers)

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        answer: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = b"" if status == 204 else json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("x-github-api-version-selected", "2022-11-28")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _page(
        self, path: str, query: dict[str, str], items: list[Any]
    ) -> tuple[int, Any, dict[str, str]]:
        per_page = min(100, int(query.get("per_page", "30")))
        page = int(query.get("page", "1"))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        other = {k: v for k, v in query.items() if k not in ("page", "per_page")}

        def link(p: int, rel: str) -> str:
            q = urllib.parse.urlencode({**other, "per_page": per_page, "page": p})
            return f'<{self.url}{path}?{q}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        return 200, chunk, ({"Link": ", ".join(links)} if links else {})

    def _route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any], user: User
    ) -> tuple[int, Any, dict[str, str]]:
        not_found = (404, {"message": "Not Found", "documentation_url": DOCS}, {})
        if method == "POST" and path == "/graphql":
            self.graphql.append(body)
            name = "enablePullRequestAutoMerge"
            if name in body.get("query", ""):
                return (
                    200,
                    {"data": {name: {"actor": {"login": user.login}, "clientMutationId": None}}},
                    {},
                )
            return 200, {"errors": [{"message": "unsupported by the fake"}]}, {}
        prefix = f"/repos/{self.repository}"
        if not path.startswith(prefix):
            return not_found
        rest = path[len(prefix) :]
        if rest == "" and method == "GET":
            owner, name = self.repository.split("/")
            return (
                200,
                {
                    "id": 1296269,
                    "node_id": "R_1",
                    "name": name,
                    "full_name": self.repository,
                    "owner": {"login": owner, "id": 1, "type": "Organization"},
                    "private": False,
                    "fork": False,
                    "default_branch": self.default_branch,
                    "url": self._repo_url(),
                    "html_url": f"https://github.com/{self.repository}",
                    "allow_auto_merge": True,
                },
                {},
            )
        # issues
        if rest == "/issues" and method == "GET":
            state = query.get("state", "open")
            items = [
                self.issue_json(i)
                for i in sorted(
                    self.issues.values(),
                    key=lambda i: i.number,
                    reverse=query.get("direction") != "asc",
                )
                if state == "all" or i.state == state
            ]
            return self._page(path, query, items)
        if rest == "/issues" and method == "POST":
            number = len(self.issues) + 1
            self.issues[number] = Issue(number, body["title"], body.get("body") or "", user)
            return 201, self.issue_json(self.issues[number]), {}
        m = re.fullmatch(r"/issues/(\d+)", rest)
        if m:
            issue = self.issues.get(int(m.group(1)))
            if issue is None:
                return not_found
            if method == "PATCH":
                issue.title = body.get("title", issue.title)
                issue.body = body.get("body", issue.body)
                issue.state = body.get("state", issue.state)
                issue.state_reason = body.get("state_reason", issue.state_reason)
            return 200, self.issue_json(issue), {}
        m = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if m:
            number = int(m.group(1))
            if number not in self.issues:
                return not_found
            if method == "POST":
                cid = next(self._ids)
                self.comments[cid] = Comment(cid, number, body["body"], user)
                return 201, self.comment_json(self.comments[cid]), {}
            items = [
                self.comment_json(c)
                for c in sorted(self.comments.values(), key=lambda c: c.id)
                if c.issue == number
            ]
            return self._page(path, query, items)
        m = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if m:
            comment = self.comments.get(int(m.group(1)))
            if comment is None:
                return not_found
            if method == "DELETE":
                del self.comments[comment.id]
                return 204, None, {}
            if method == "PATCH":
                if comment.user.login != user.login and user.type == "Bot":
                    # An integration may edit only its own comments.
                    return 403, {"message": "Resource not accessible by integration"}, {}
                comment.body = body["body"]
            return 200, self.comment_json(comment), {}
        # pulls
        if rest == "/pulls" and method == "GET":
            state = query.get("state", "open")
            head, base = query.get("head"), query.get("base")
            items = []
            for i in sorted(self.issues.values(), key=lambda i: i.number):
                if i.pull is None or (state != "all" and i.state != state):
                    continue
                doc = self.pull_json(i)
                if head and doc["head"]["label"] != head:
                    continue
                if base and doc["base"]["ref"] != base:
                    continue
                items.append(doc)
            return self._page(path, query, items)
        if rest == "/pulls" and method == "POST":
            if f"heads/{body['head']}" not in self.refs:
                return (
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [{"field": "head", "code": "invalid"}],
                    },
                    {},
                )
            number = len(self.issues) + 1
            self.issues[number] = Issue(
                number,
                body["title"],
                body.get("body") or "",
                user,
                pull={
                    "head": {
                        "ref": body["head"],
                        "sha": self.refs[f"heads/{body['head']}"],
                        "repo": self.repository,
                    },
                    "base": {"ref": body["base"]},
                },
            )
            return 201, self.pull_json(self.issues[number]), {}
        m = re.fullmatch(r"/pulls/(\d+)/files", rest)
        if m and method == "GET":
            issue = self.issues.get(int(m.group(1)))
            if issue is None or issue.pull is None:
                return not_found
            files = [
                {"sha": "0" * 40, "filename": name, "status": "modified"}
                for name in issue.pull.get("files", ["mirrors/images.yaml"])
            ]
            return self._page(path, query, files)
        m = re.fullmatch(r"/pulls/(\d+)", rest)
        if m:
            issue = self.issues.get(int(m.group(1)))
            if issue is None or issue.pull is None:
                return not_found
            if method == "PATCH":
                issue.title = body.get("title", issue.title)
                issue.body = body.get("body", issue.body)
                issue.state = body.get("state", issue.state)
            if issue.pull["head"]["repo"] == self.repository:
                issue.pull["head"]["sha"] = self.refs.get(
                    f"heads/{issue.pull['head']['ref']}", issue.pull["head"]["sha"]
                )
            return 200, self.pull_json(issue), {}
        # git data
        m = re.fullmatch(r"/git/commits/([0-9a-f]{40})", rest)
        if m and method == "GET":
            commit = self.commits.get(m.group(1))
            return (200, commit, {}) if commit else not_found
        if rest == "/git/commits" and method == "POST":
            if body.get("tree") not in self.trees or any(
                p not in self.commits for p in body.get("parents", [])
            ):
                return 422, {"message": "Tree SHA does not exist"}, {}
            author = body.get("author") or {
                "name": user.login,
                "email": f"{user.id}+{user.login}@users.noreply.github.com",
            }
            sha = self._commit(body["tree"], body.get("parents", []), body["message"], author)
            return 201, self.commits[sha], {}
        if rest == "/git/trees" and method == "POST":
            base = dict(self.trees.get(body.get("base_tree", ""), {}))
            for entry in body.get("tree", []):
                if "content" in entry:
                    base[entry["path"]] = self._blob(entry["content"].encode())
                elif entry.get("sha") is None:
                    if entry["path"] not in base:
                        return 422, {"message": "GitRPC::BadObjectState"}, {}
                    del base[entry["path"]]
                else:
                    base[entry["path"]] = entry["sha"]
            sha = self._tree(base)
            tree = [
                {"path": p, "mode": "100644", "type": "blob", "sha": s, "size": len(self.blobs[s])}
                for p, s in sorted(base.items())
            ]
            return (
                201,
                {
                    "sha": sha,
                    "url": f"{self._repo_url()}/git/trees/{sha}",
                    "tree": tree,
                    "truncated": False,
                },
                {},
            )
        m = re.fullmatch(r"/git/ref/(heads/.+)", rest)
        if m and method == "GET":
            return (200, self.ref_json(m.group(1)), {}) if m.group(1) in self.refs else not_found
        if rest == "/git/refs" and method == "POST":
            name = body["ref"].removeprefix("refs/")
            if name in self.refs:
                return 422, {"message": "Reference already exists"}, {}
            if body["sha"] not in self.commits:
                return 422, {"message": "Object does not exist"}, {}
            self.refs[name] = body["sha"]
            return 201, self.ref_json(name), {}
        m = re.fullmatch(r"/git/refs/(heads/.+)", rest)
        if m and method == "PATCH":
            name = m.group(1)
            if name not in self.refs:
                return 422, {"message": "Reference does not exist"}, {}
            if name in self.protected:
                message = f"Protected branch update failed for refs/{name}."
                return 422, {"message": message, "documentation_url": DOCS}, {}
            if not body.get("force") and self.refs[name] not in self._ancestors(body["sha"]):
                return (
                    422,
                    {"message": "Update is not a fast forward", "documentation_url": DOCS},
                    {},
                )
            self.refs[name] = body["sha"]
            return 200, self.ref_json(name), {}
        # contents
        m = re.fullmatch(r"/contents/(.+)", rest)
        if m and method == "GET":
            ref = query.get("ref", self.default_branch)
            sha = self.refs.get(f"heads/{ref}", ref)
            if sha not in self.commits:
                return not_found
            files = self.trees[self.commits[sha]["tree"]["sha"]]
            blob = files.get(m.group(1))
            if blob is None:
                return not_found
            data = self.blobs[blob]
            return (
                200,
                {
                    "type": "file",
                    "encoding": "base64",
                    "size": len(data),
                    "name": m.group(1).rsplit("/", 1)[-1],
                    "path": m.group(1),
                    "sha": blob,
                    "content": base64.encodebytes(data).decode(),
                    "url": f"{self._repo_url()}/contents/{m.group(1)}?ref={ref}",
                },
                {},
            )
        # check runs
        m = re.fullmatch(r"/check-runs/(\d+)(/annotations)?", rest)
        if m and method == "GET" and int(m.group(1)) in self.check_runs:
            run_id = int(m.group(1))
            if m.group(2):
                return self._page(path, query, self.check_runs[run_id])
            annotations = self.check_runs[run_id]
            return (
                200,
                {
                    "id": run_id,
                    "name": "plan",
                    "status": "completed",
                    "conclusion": "failure" if annotations else "success",
                    "url": f"{self._repo_url()}/check-runs/{run_id}",
                    "output": {
                        "title": "plan",
                        "summary": "",
                        "annotations_count": len(annotations),
                        "annotations_url": f"{self._repo_url()}/check-runs/{run_id}/annotations",
                    },
                },
                {},
            )
        return not_found


def _unescape(text: str) -> str:
    return (
        text.replace("%2C", ",")
        .replace("%3A", ":")
        .replace("%0A", "\n")
        .replace("%0D", "\r")
        .replace("%25", "%")
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner.handle(self)  # type: ignore[attr-defined]

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET  # noqa: N815


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()
