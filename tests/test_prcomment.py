"""`relay plan --comment` and the plan comment, against the GitHub stand-in (tests/fakes/github.py)
driven by PyGithub: one comment found again by marker and author, racing runs, pagination,
a fork's read-only token, a bad token, rate limits, 502s, an unreachable API, annotations."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import pytest
from github import Auth, Github

from relay import cli
from relay.gh import client as ghclient
from relay.output import prcomment
from tests.fakes.github import (
    BAD_TOKEN,
    BOT_TOKEN,
    FORK_TOKEN,
    USER_TOKEN,
    USERS,
    FakeGitHub,
)

from .helpers import DIGEST_A, write_repo

GOOD = f"images:\n  - source: registry.k8s.io/pause\n    tags: ['3.9@{DIGEST_A}']\n"
HEAD = "c0ffee" + "0" * 34


@pytest.fixture
def github(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeGitHub:
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps({"number": 7, "pull_request": {"number": 7, "head": {"sha": HEAD}}})
    )
    for name, value in {
        "GITHUB_REPOSITORY": fake_github.repository,
        "GITHUB_TOKEN": BOT_TOKEN,
        "GITHUB_API_URL": fake_github.url,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_RUN_ID": "4242",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "RELAY_BOT_LOGIN"):
        monkeypatch.delenv(name, raising=False)
    # PyGithub paces requests and waits out rate limits; the stand-in needs neither courtesy.
    monkeypatch.setattr(ghclient, "SECONDS_BETWEEN_REQUESTS", 0)
    monkeypatch.setattr(ghclient, "SECONDS_BETWEEN_WRITES", 0)
    monkeypatch.setattr(ghclient, "BACKOFF", 0)
    monkeypatch.setattr(ghclient, "SECONDARY_RATE_WAIT", 0.2)
    fake_github.add_pull(HEAD)  # #1
    while len(fake_github.issues) < 7:
        fake_github.add_pull(HEAD)
    return fake_github


def plan(repo: Path) -> int:
    return cli.main(["plan", "--comment", "--repo", str(repo)])


def test_plan_comment_is_posted_once_and_updated(
    github: FakeGitHub, tmp_path: Path, capsys, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 0
    out, err = capsys.readouterr()
    assert "create mirrors/dockerfiles/k8s_pause/3.9/Dockerfile" in out
    (body,) = github.comment_bodies(7)
    assert body + "\n" == out
    assert f"for commit {HEAD[:12]}" in body  # the comment names the commit it is for
    assert {login for _, _, login in github.requests} == {"github-actions[bot]"}

    # The same plan again: nothing written. A changed plan: the one comment is edited.
    github.requests.clear()
    assert plan(tmp_path) == 0
    assert github.writes() == []
    assert cli.main(["generate", "--repo", str(tmp_path)]) == 0
    assert plan(tmp_path) == 0
    assert [m for m, _ in github.writes()] == ["PATCH"]
    (body,) = github.comment_bodies(7)
    assert prcomment.MARKER in body and "_up to date_" in body
    out, err = capsys.readouterr()
    assert BOT_TOKEN not in out + err + caplog.text


def test_another_users_marker_comment_is_not_relays(github: FakeGitHub, tmp_path: Path) -> None:
    alice = USERS[USER_TOKEN]
    theirs = github.add_comment(7, f"{prcomment.MARKER}\nI copied relay's marker", alice)
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 0
    assert github.comments[theirs].body == f"{prcomment.MARKER}\nI copied relay's marker"
    ours = [c for c in github.comments.values() if c.user.login == "github-actions[bot]"]
    assert len(ours) == 1 and "relay plan" in ours[0].body


def test_racing_runs_leave_one_comment(github: FakeGitHub, tmp_path: Path) -> None:
    bot = USERS[BOT_TOKEN]
    first = github.add_comment(7, f"{prcomment.MARKER}\nold plan", bot)
    second = github.add_comment(7, f"{prcomment.MARKER}\nthe other run's plan", bot)
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 0
    assert second not in github.comments  # the younger duplicate is deleted
    assert "k8s_pause/3.9" in github.comments[first].body  # the oldest carries the plan


def test_the_comment_is_found_on_a_later_page(github: FakeGitHub, tmp_path: Path) -> None:
    alice = USERS[USER_TOKEN]
    for i in range(70):
        github.add_comment(7, f"comment {i}", alice)
    ours = github.add_comment(7, f"{prcomment.MARKER}\nold", USERS[BOT_TOKEN])
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 0
    pages = [p for m, p, _ in github.requests if m == "GET" and p.endswith("/issues/7/comments")]
    assert len(pages) == 3  # 71 comments, 30 a page: PyGithub followed the Link header
    assert ("PATCH", f"/repos/{github.repository}/issues/comments/{ours}") in github.writes()
    assert sum(1 for c in github.comments.values() if prcomment.MARKER in c.body) == 1


def test_a_forks_read_only_token_warns_and_the_plan_stands(
    github: FakeGitHub, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", FORK_TOKEN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 0
    err = capsys.readouterr().err
    # A warning annotation on the run, not just a line in the log.
    assert (
        "::warning::no plan comment: comment on octo/mirrors#7: the token may not do this (HTTP 403"
        in err
    )
    assert "fork" in err and FORK_TOKEN not in err
    assert github.comment_bodies(7) == []


def test_a_bad_token_fails_the_check(
    github: FakeGitHub, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", BAD_TOKEN)
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 1
    err = capsys.readouterr().err
    assert "GitHub refused the token (HTTP 401: Bad credentials)" in err
    assert BAD_TOKEN not in err and "Traceback" not in err


def test_secondary_rate_limit_and_502_are_retried(github: FakeGitHub, tmp_path: Path) -> None:
    github.fail("secondary", method="POST")  # with Retry-After
    github.fail("secondary-no-header", method="GET", path="/comments")  # message only
    github.fail("502", method="GET", path="/comments")
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 0
    assert len(github.comment_bodies(7)) == 1
    assert github.faults == []
    posts = [p for m, p in github.writes() if m == "POST"]
    assert len(posts) == 2  # the refused one and the one that landed


def test_a_lasting_502_is_an_error_not_a_traceback(
    github: FakeGitHub, tmp_path: Path, capsys
) -> None:
    github.fail("502", count=ghclient.ATTEMPTS + 2)
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 1
    err = capsys.readouterr().err
    assert "GitHub kept failing after 5 tries" in err and "Traceback" not in err


def test_an_unreachable_api_is_an_error_not_a_traceback(
    github: FakeGitHub, tmp_path: Path, capsys, monkeypatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(ghclient, "ATTEMPTS", 2)
    write_repo(tmp_path, GOOD)
    assert plan(tmp_path) == 1
    err = capsys.readouterr().err
    assert f"GitHub's API at http://127.0.0.1:{port} is unreachable" in err or "kept failing" in err
    assert "Traceback" not in err and BOT_TOKEN not in err


def test_invalid_list_is_commented_exits_2_and_annotates_the_line(
    github: FakeGitHub, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write_repo(tmp_path, "images:\n  - source: nginx\n    tag: [1]\n")
    assert plan(tmp_path) == 2
    (body,) = github.comment_bodies(7)
    assert "❌" in body and "mirrors/images.yaml:3: image entry: unknown key 'tag'" in body
    # The runner turns relay's workflow commands into check-run annotations on the diff.
    run_id = github.annotate_from_log(capsys.readouterr().err)
    gh = Github(auth=Auth.Token(BOT_TOKEN), base_url=github.url)
    annotations = list(gh.get_repo(github.repository).get_check_run(run_id).get_annotations())
    assert [(a.path, a.start_line, a.annotation_level) for a in annotations] == [
        ("mirrors/images.yaml", 3, "failure")
    ]
    assert "unknown key 'tag'" in annotations[0].message


def test_a_hand_edited_dockerfile_fails_the_plan(
    github: FakeGitHub, tmp_path: Path, capsys
) -> None:
    write_repo(tmp_path, GOOD)
    assert cli.main(["generate", "--repo", str(tmp_path)]) == 0
    dockerfile = tmp_path / "mirrors/dockerfiles/k8s_pause/3.9/Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN echo pwned\n")
    assert plan(tmp_path) == 1
    (body,) = github.comment_bodies(7)
    assert "❌" in body and "ready to merge" not in body
    assert "k8s_pause/3.9/Dockerfile: differs from what `relay generate` writes" in body


def test_pr_number_and_head_come_from_the_event(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 42, "head": {"sha": HEAD}}}))
    env = {"GITHUB_EVENT_PATH": str(event)}
    assert prcomment.pull_request_number(env) == 42
    assert prcomment.pull_request_head(env) == HEAD
    assert prcomment.pull_request_number({}) is None
    event.write_text(json.dumps({"pull_request": {"number": True, "head": {"sha": "x; rm -rf"}}}))
    assert prcomment.pull_request_number(env) is None and prcomment.pull_request_head(env) is None


def test_render_cuts_a_huge_plan_and_escapes_titles() -> None:
    body = prcomment.render([prcomment.Section("Lock", ["x" * 100] * 2000)], ok=True)
    assert len(body) < 65_536 and body.endswith("_…cut short; the job log has the whole plan._\n")
    hostile = prcomment.Section(
        "[click](https://evil.example) @octo/team <img src=x>", ["```", "@x"]
    )
    body = prcomment.render(
        [hostile], ok=True, commit=HEAD, run_url="https://github.com/o/r/actions/runs/1"
    )
    # Escaped: no link, no HTML, no mention.
    assert "\\[click\\](https://evil.example)" in body and "\\<img src=x\\>" in body
    assert "@octo" not in body and "@\u200bocto/team" in body
    assert "\n```\n'''\n@x\n```\n" in body  # inside the block a fence cannot close it
    assert "[the run that made it](https://github.com/o/r/actions/runs/1)" in body
