"""`relay plan --comment` against a stand-in for GitHub's REST API, driven by PyGithub."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from relay import cli
from relay.output import prcomment

from .helpers import DIGEST_A, write_repo

TOKEN = "ghs_relayTestToken_0123456789abcdef"


class FakeGitHub:
    """Issues and issue comments of one repository, as GitHub's REST API serves them."""

    def __init__(self, repository: str = "octo/mirrors") -> None:
        self.repository = repository
        self.comments: dict[int, str] = {}
        self.requests: list[tuple[str, str, str]] = []  # method, path, Authorization
        self.fail_writes: int | None = None  # answer writes with this status
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake.handle(self)

            do_POST = do_PATCH = do_GET  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def comment_json(self, cid: int) -> dict:
        return {
            "id": cid,
            "body": self.comments[cid],
            "url": f"{self.url}/repos/{self.repository}/issues/comments/{cid}",
            "user": {"login": "github-actions[bot]", "id": 41898282},
        }

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length) or b"{}") if length else {}
        self.requests.append((h.command, h.path, h.headers.get("Authorization", "")))
        base = f"/repos/{self.repository}/issues"
        status, answer = 404, {"message": "Not Found"}
        if h.command != "GET" and self.fail_writes:
            status, answer = self.fail_writes, {"message": "Resource not accessible by integration"}
        elif h.command == "GET" and h.path.startswith(f"{base}/7/comments"):
            status, answer = 200, [self.comment_json(c) for c in sorted(self.comments)]
        elif h.command == "GET" and h.path == f"{base}/7":
            status, answer = 200, {"number": 7, "url": f"{self.url}{base}/7", "title": "add"}
        elif h.command == "POST" and h.path == f"{base}/7/comments":
            cid = len(self.comments) + 100
            self.comments[cid] = body["body"]
            status, answer = 201, self.comment_json(cid)
        elif h.command == "PATCH" and h.path.startswith(f"{base}/comments/"):
            cid = int(h.path.rsplit("/", 1)[1])
            self.comments[cid] = body["body"]
            status, answer = 200, self.comment_json(cid)
        data = json.dumps(answer).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def github(monkeypatch):
    fake = FakeGitHub()
    monkeypatch.setenv("GITHUB_REPOSITORY", fake.repository)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # PyGithub waits a second between writes by default; the fake needs no such courtesy.
    real_post = prcomment.post
    monkeypatch.setattr(prcomment, "post", lambda body, **kw: real_post(body, **kw, throttle=False))
    yield fake
    fake.close()


GOOD = f"images:\n  - source: registry.k8s.io/pause\n    tags: ['3.9@{DIGEST_A}']\n"


def test_plan_comment_is_posted_once_and_updated(github, tmp_path: Path, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    write_repo(tmp_path, GOOD)
    assert cli.main(["plan", "--comment", "--pr", "7", "--repo", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "create mirrors/dockerfiles/k8s_pause/3.9/Dockerfile" in out
    assert [c + "\n" for c in github.comments.values()] == [out]
    assert all(auth.endswith(TOKEN) for _, _, auth in github.requests)

    # The same plan again: nothing written. A changed plan: the one comment is edited.
    assert cli.main(["plan", "--comment", "--pr", "7", "--repo", str(tmp_path)]) == 0
    assert [m for m, _, _ in github.requests].count("PATCH") == 0
    assert cli.main(["generate", "--repo", str(tmp_path)]) == 0
    assert cli.main(["plan", "--comment", "--pr", "7", "--repo", str(tmp_path)]) == 0
    assert len(github.comments) == 1
    (body,) = github.comments.values()
    assert prcomment.MARKER in body and "Dockerfiles (relay generate)" in body
    assert "_up to date_" in body
    out, err = capsys.readouterr()
    assert TOKEN not in out + err + caplog.text


def test_invalid_list_is_commented_and_exits_2(github, tmp_path: Path, capsys) -> None:
    write_repo(tmp_path, "images:\n  - source: nginx\n    tag: [1]\n")
    assert cli.main(["plan", "--comment", "--pr", "7", "--repo", str(tmp_path)]) == 2
    (body,) = github.comments.values()
    assert "❌" in body and "mirrors/images.yaml:3: image entry: unknown key 'tag'" in body


def test_a_refused_comment_warns_but_the_plan_stands(
    github, tmp_path: Path, capsys, caplog
) -> None:
    github.fail_writes = 403
    write_repo(tmp_path, GOOD)
    assert cli.main(["plan", "--comment", "--pr", "7", "--repo", str(tmp_path)]) == 0
    assert "could not comment on octo/mirrors#7: HTTP 403" in caplog.text
    assert TOKEN not in caplog.text + capsys.readouterr().err


def test_pr_number_comes_from_the_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42}}))
    assert prcomment.pull_request_number({"GITHUB_EVENT_PATH": str(event)}) == 42
    assert prcomment.pull_request_number({}) is None


def test_render_cuts_a_huge_plan() -> None:
    body = prcomment.render([prcomment.Section("Lock", ["x" * 100] * 2000)], ok=True)
    assert len(body) < 65_536 and body.endswith("_…cut short; the job log has the whole plan._\n")
