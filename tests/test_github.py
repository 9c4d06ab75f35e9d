"""`relay github …` against the GitHub stand-in (tests/fakes/github.py), driven by PyGithub:
the workflow_run commenter and its distrust of the artifact, the bot pull request and the push,
the failure issue, and the workflow settings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from relay import cli
from relay.config import lockfile
from relay.config.lockfile import Lock, LockedTag
from relay.gh import client as ghclient
from relay.gh import failures, planartifact
from relay.output import prcomment
from tests.fakes.github import (
    BOT_TOKEN,
    FORK_TOKEN,
    USER_TOKEN,
    USERS,
    FakeGitHub,
)

from .helpers import DIGEST_A, DIGEST_B, DIGEST_C, write_repo

HEAD = "c0ffee" + "1" * 34
INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def env(fake_github: FakeGitHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """The Actions environment of a step, pointing at the stand-in; returns a setter for the
    event payload."""
    for name, value in {
        "GITHUB_REPOSITORY": fake_github.repository,
        "GITHUB_TOKEN": BOT_TOKEN,
        "GITHUB_API_URL": fake_github.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "777",
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "RELAY_BOT_LOGIN", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ghclient, "SECONDS_BETWEEN_REQUESTS", 0)
    monkeypatch.setattr(ghclient, "SECONDS_BETWEEN_WRITES", 0)
    monkeypatch.setattr(ghclient, "BACKOFF", 0)

    def event(name: str, payload: dict) -> None:
        path = tmp_path / f"event-{name}.json"
        path.write_text(json.dumps(payload))
        monkeypatch.setenv("GITHUB_EVENT_NAME", name)
        monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))

    return event


def outputs(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "output.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return dict(line.split("=", 1) for line in lines)


# --- the workflow_run commenter -----------------------------------------------------------------


def workflow_run(fake: FakeGitHub, head_repo: str = "mallory/mirrors") -> dict:
    return {
        "action": "completed",
        "workflow_run": {
            "id": 555,
            "head_sha": HEAD,
            "html_url": f"https://github.com/{fake.repository}/actions/runs/555",
            "conclusion": "failure",
            "event": "pull_request",
            "head_repository": {"full_name": head_repo},
            "pull_requests": [],  # GitHub leaves this empty for pull requests from forks
        },
        "repository": {"default_branch": "main"},
    }


def write_artifact(directory: Path, **doc: object) -> Path:
    base: dict[str, object] = {
        "relayPlan": 1,
        "number": 1,
        "headSha": HEAD,
        "ok": False,
        "sections": [{"title": "Problems", "lines": ["mirrors/images.yaml:3: bad"], "empty": ""}],
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / planartifact.FILE).write_text(json.dumps(base | doc))
    return directory


def test_plan_out_then_comment_plan_posts_it_for_a_fork(
    fake_github: FakeGitHub,
    env,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    number = fake_github.add_pull(HEAD, head_repo="mallory/mirrors")
    # The pull request's run: a fork's read-only token, the plan written as an artifact.
    monkeypatch.setenv("GITHUB_TOKEN", FORK_TOKEN)
    env(
        "pull_request",
        {"number": number, "pull_request": {"number": number, "head": {"sha": HEAD}}},
    )
    # A tag the lock holds: the plan needs no registry (an inline pin is checked upstream).
    repo = write_repo(
        tmp_path / "repo",
        "images:\n  - source: nginx\n    tags: ['1.27']\n",
        lock=lockfile.dumps(lock_of(("1.27", DIGEST_A))),
    )
    artifact = tmp_path / "artifact"
    assert cli.main(["plan", "--out", str(artifact), "--repo", str(repo)]) == 0
    assert fake_github.requests == []  # the untrusted run never talks to GitHub
    # The trusted run: the default branch's code, a write token, the workflow_run event.
    monkeypatch.setenv("GITHUB_TOKEN", BOT_TOKEN)
    env("workflow_run", workflow_run(fake_github))
    assert cli.main(["github", "comment-plan", "--artifact", str(artifact)]) == 0
    (body,) = fake_github.comment_bodies(number)
    assert body.startswith(prcomment.MARKER) and "✅" in body
    assert f"for commit {HEAD[:12]}" in body and "actions/runs/555" in body
    assert "create mirrors/dockerfiles/nginx/1.27/Dockerfile" in body
    # Again: the one comment is found (marker and author) and left alone.
    assert cli.main(["github", "comment-plan", "--artifact", str(artifact)]) == 0
    assert len(fake_github.comment_bodies(number)) == 1


def test_plan_comment_from_a_fork_warns_with_a_real_annotation(
    fake_github: FakeGitHub,
    env,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI's Console neutralises workflow commands it did not write itself; the fork's
    # "no plan comment" warning is relay's own, so it must reach the runner as `::warning::`.
    number = fake_github.add_pull(HEAD, head_repo="mallory/mirrors")
    monkeypatch.setenv("GITHUB_TOKEN", FORK_TOKEN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    env(
        "pull_request",
        {"number": number, "pull_request": {"number": number, "head": {"sha": HEAD}}},
    )
    repo = write_repo(
        tmp_path / "repo",
        "images:\n  - source: nginx\n    tags: ['1.27']\n",
        lock=lockfile.dumps(lock_of(("1.27", DIGEST_A))),
    )
    assert cli.main(["plan", "--comment", "--repo", str(repo)]) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("::warning::")]
    assert len(warnings) == 1 and "no plan comment" in warnings[0], err
    assert not any(line.startswith("\\::warning") for line in err)
    assert fake_github.comment_bodies(number) == []


def test_a_commit_that_fails_validation_replaces_the_ready_comment(
    fake_github: FakeGitHub,
    env,  # noqa: ANN001
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pr.yml runs the Plan step even when `relay validate` failed: the plan of a broken list is
    # an artifact with its problems, so the comment run replaces the previous commit's ✅.
    number = fake_github.add_pull(HEAD, head_repo="mallory/mirrors")
    good = write_repo(
        tmp_path / "good",
        "images:\n  - source: nginx\n    tags: ['1.27']\n",
        lock=lockfile.dumps(lock_of(("1.27", DIGEST_A))),
    )
    bad = write_repo(tmp_path / "bad", "images:\n  - source: nginx\n    tags: ['1.27 final']\n")
    for repo, sha in ((good, HEAD), (bad, "d" * 40)):
        monkeypatch.setenv("GITHUB_TOKEN", FORK_TOKEN)
        env(
            "pull_request",
            {"number": number, "pull_request": {"number": number, "head": {"sha": sha}}},
        )
        artifact = tmp_path / f"artifact-{sha[:4]}"
        assert cli.main(["validate", "--repo", str(repo)]) == (0 if repo is good else 2)
        assert cli.main(["plan", "--out", str(artifact), "--repo", str(repo)]) == (
            0 if repo is good else 2
        )
        fake_github.issues[number].pull["head"]["sha"] = sha
        monkeypatch.setenv("GITHUB_TOKEN", BOT_TOKEN)
        payload = workflow_run(fake_github)
        payload["workflow_run"]["head_sha"] = sha
        env("workflow_run", payload)
        assert cli.main(["github", "comment-plan", "--artifact", str(artifact)]) == 0
    (body,) = fake_github.comment_bodies(number)
    assert "✅" not in body and "for commit dddddddddddd" in body
    assert "is not a valid tag" in body


@pytest.mark.parametrize(
    "files, named",
    [
        (["mirrors/images.yaml", "relay/commands/plan.py"], "relay/**"),
        ([".github/workflows/pr.yml"], ".github/**"),
        (["requirements/workflows.txt"], "requirements/**"),
        (["pyproject.toml", "mirrors/images.yaml"], "pyproject.toml"),
    ],
)
def test_a_pull_request_changing_relay_itself_gets_no_ready_verdict(
    files: list[str],
    named: str,
    fake_github: FakeGitHub,
    env,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    # pr.yml installs relay from the pull request: one that changes relay, the workflows or
    # the requirements wrote its own plan, so its ✅ would be its own word.
    number = fake_github.add_pull(HEAD, head_repo="mallory/mirrors")
    assert fake_github.issues[number].pull is not None
    fake_github.issues[number].pull["files"] = files
    env("workflow_run", workflow_run(fake_github))
    artifact = write_artifact(tmp_path / "a", number=number, ok=True, sections=[])
    assert cli.main(["github", "comment-plan", "--artifact", str(artifact)]) == 0
    (body,) = fake_github.comment_bodies(number)
    assert "✅" not in body and "ready to merge" not in body
    assert "⚠️" in body and named in body and "a maintainer reviews" in body


def test_the_artifact_is_hostile_data(fake_github: FakeGitHub, env, tmp_path: Path) -> None:  # noqa: ANN001
    number = fake_github.add_pull(HEAD, head_repo="mallory/mirrors")
    env("workflow_run", workflow_run(fake_github))
    hostile = write_artifact(
        tmp_path / "a",
        number=number,
        ok=True,
        sections=[
            {
                "title": "[win a prize](https://evil.example) @octo/admins",
                "lines": ["```", "<script>"],
            }
        ],
    )
    assert cli.main(["github", "comment-plan", "--artifact", str(hostile)]) == 0
    (body,) = fake_github.comment_bodies(number)
    assert "[win a prize](" not in body and "@octo" not in body
    assert "\n```\n'''\n<script>\n```\n" in body  # lines stay inside their code block

    def refused(directory: Path, message: str) -> None:
        before = len(fake_github.comments)
        assert cli.main(["github", "comment-plan", "--artifact", str(directory)]) == 1
        assert len(fake_github.comments) == before, message

    refused(write_artifact(tmp_path / "b", number=number, headSha="d" * 40), "for another commit")
    refused(write_artifact(tmp_path / "c", number="1; rm -rf /"), "number not a number")
    refused(
        write_artifact(tmp_path / "d", sections=[{"title": "x", "lines": ["y"], "run": "z"}]), "key"
    )
    refused(
        write_artifact(
            tmp_path / "e", number=number, sections=[{"title": "x", "lines": ["y" * 10]}] * 21
        ),
        "count",
    )
    big = tmp_path / "f"
    big.mkdir()
    (big / planartifact.FILE).write_bytes(b" " * (planartifact.MAX_BYTES + 1))
    refused(big, "size")
    link = tmp_path / "g"
    link.mkdir()
    (link / planartifact.FILE).symlink_to(hostile / planartifact.FILE)
    refused(link, "a symlink")
    refused(tmp_path / "missing", "no artifact")
    # A number naming another pull request (not from the run's repository) is refused.
    other = fake_github.add_pull(HEAD, head_repo=fake_github.repository)
    refused(write_artifact(tmp_path / "h", number=other), "another pull request")


def test_a_pull_request_that_moved_on_is_left_to_the_newer_run(
    fake_github: FakeGitHub,
    env,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    number = fake_github.add_pull("e" * 40, head_repo="mallory/mirrors")
    env("workflow_run", workflow_run(fake_github))
    assert (
        cli.main(
            [
                "github",
                "comment-plan",
                "--artifact",
                str(write_artifact(tmp_path / "a", number=number)),
            ]
        )
        == 0
    )
    assert fake_github.comment_bodies(number) == []


# --- changes to the default branch ----------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    environ = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=environ
    ).stdout


def lock_of(*tags: tuple[str, str]) -> Lock:
    lock = Lock()
    for tag, digest in tags:
        lock.put("docker.io/library/nginx", tag, LockedTag(digest, INDEX, ("linux/amd64",)))
    return lock


@pytest.fixture
def checkout(fake_github: FakeGitHub, env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: ANN001
    """A checkout of main after a merge: the list and an old lock committed; relay lock moved a
    tag and relay generate wrote the Dockerfiles, uncommitted."""
    repo = write_repo(
        tmp_path / "repo",
        "images:\n  - source: nginx\n    tags: ['1.27', '1.28']\n",
        "github:\n  repository: octo/mirrors\n",
        lockfile.dumps(lock_of(("1.27", DIGEST_A))),
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "list")
    lockfile.write(repo, lock_of(("1.27", DIGEST_B), ("1.28", DIGEST_C)))
    assert cli.main(["generate", "--repo", str(repo)]) == 0
    files = {p: (repo / p).read_bytes() for p in ("mirrors/images.yaml", "mirrors/relay.yaml")}
    files["mirrors/images.lock"] = lockfile.dumps(lock_of(("1.27", DIGEST_A))).encode()
    base = fake_github.commit(files, [fake_github.refs["heads/main"]], "list")
    fake_github.refs["heads/main"] = base
    monkeypatch.setenv("GITHUB_SHA", base)
    env("push", {"repository": {"default_branch": "main"}, "after": base})
    return repo


def test_changes_arrive_as_one_pull_request(
    fake_github: FakeGitHub, checkout: Path, tmp_path: Path
) -> None:
    base = fake_github.refs["heads/main"]
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    assert outputs(tmp_path)["deliver"] == "false"  # nothing is delivered before the merge
    assert fake_github.refs["heads/main"] == base  # main untouched
    files = fake_github.tree_of("heads/relay/lock")
    assert files["mirrors/images.lock"] == (checkout / "mirrors/images.lock").read_bytes()
    assert (
        "FROM docker.io/library/nginx:1.28@"
        in files["mirrors/dockerfiles/nginx/1.28/Dockerfile"].decode()
    )
    commit = fake_github.commits[fake_github.refs["heads/relay/lock"]]
    assert commit["parents"][0]["sha"] == base
    assert commit["author"]["email"] == "41898282+github-actions[bot]@users.noreply.github.com"
    (pr,) = [i for i in fake_github.issues.values() if i.pull]
    assert pr.title == "relay: 1 upstream tag(s) moved"
    assert f"| `docker.io/library/nginx:1.27` | `{DIGEST_A}` | `{DIGEST_B}` |" in pr.body
    assert (
        "seen by relay at 20" in pr.body
        and f"`docker.io/library/nginx:1.28` `{DIGEST_C}`" in pr.body
    )
    assert outputs(tmp_path)["pull-request"].endswith(f"/pull/{pr.number}")

    # The next run with the same changes: no new commit, no second pull request.
    (tmp_path / "output.txt").unlink()
    ref = fake_github.refs["heads/relay/lock"]
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    assert fake_github.refs["heads/relay/lock"] == ref
    assert sum(1 for i in fake_github.issues.values() if i.pull) == 1

    # Once main holds the lock (the merge), a run with nothing to change closes a leftover PR.
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", "merged")
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    assert outputs(tmp_path)["deliver"] == "true"
    assert pr.state == "closed" and "already matches" in fake_github.comment_bodies(pr.number)[0]


def test_auto_merge_is_asked_for(fake_github: FakeGitHub, checkout: Path) -> None:
    (checkout / "mirrors/relay.yaml").write_text(
        "github:\n  repository: octo/mirrors\n  auto_merge: true\n"
    )
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    (call,) = fake_github.graphql
    assert (
        "enablePullRequestAutoMerge" in call["query"]
        and call["variables"]["input"]["mergeMethod"] == "SQUASH"
    )


def test_push_mode_fast_forwards_or_stands_down(
    fake_github: FakeGitHub,
    checkout: Path,
    tmp_path: Path,
) -> None:
    (checkout / "mirrors/relay.yaml").write_text(
        "github:\n  repository: octo/mirrors\n  changes: push\n"
    )
    git(checkout, "add", "mirrors/relay.yaml")
    git(checkout, "commit", "-qm", "push mode")
    # Only a new tag (1.28), no moved one: push mode pushes it.
    lockfile.write(checkout, lock_of(("1.27", DIGEST_A), ("1.28", DIGEST_C)))
    assert cli.main(["generate", "--repo", str(checkout)]) == 0
    base = fake_github.refs["heads/main"]
    # Someone merged meanwhile: main moved, so this run is superseded and pushes nothing.
    fake_github.refs["heads/main"] = fake_github.commit({"x": b"y"}, [base], "meanwhile")
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    assert outputs(tmp_path)["result"] == "superseded" and outputs(tmp_path)["deliver"] == "false"
    # Main where the run started: one fast-forward commit, delivered from.
    fake_github.refs["heads/main"] = base
    (tmp_path / "output.txt").unlink()
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    new = fake_github.refs["heads/main"]
    assert fake_github.commits[new]["parents"][0]["sha"] == base
    assert outputs(tmp_path) | {} == outputs(tmp_path) and outputs(tmp_path)["sha"] == new
    assert outputs(tmp_path)["deliver"] == "true" and "relay/lock" not in str(fake_github.refs)


@pytest.fixture
def push_mode(fake_github: FakeGitHub, checkout: Path) -> Path:
    """The checkout in push mode, with only a new tag (nothing moved): a push is due."""
    (checkout / "mirrors/relay.yaml").write_text(
        "github:\n  repository: octo/mirrors\n  changes: push\n"
    )
    git(checkout, "add", "mirrors/relay.yaml")
    git(checkout, "commit", "-qm", "push mode")
    lockfile.write(checkout, lock_of(("1.27", DIGEST_A), ("1.28", DIGEST_C)))
    assert cli.main(["generate", "--repo", str(checkout)]) == 0
    return checkout


def test_a_push_blocked_by_protection_is_a_clear_failure_not_superseded(
    fake_github: FakeGitHub, push_mode: Path, tmp_path: Path, capsys
) -> None:
    # GitHub answers 422 for a ruleset or branch protection as for a lost fast-forward race; main
    # has not moved, so nothing was delivered and the run must not pass as "superseded".
    base = fake_github.refs["heads/main"]
    fake_github.protected.add("heads/main")
    assert cli.main(["github", "propose", "--repo", str(push_mode)]) == 1
    err = capsys.readouterr().err
    assert "Protected branch update failed" in err and "main has not moved" in err
    assert "changes: pull-request" in err and "RELAY_BOT_TOKEN" in err
    assert fake_github.refs["heads/main"] == base
    assert "result" not in outputs(tmp_path)


def test_an_unreachable_api_during_the_push_is_an_operation_failure(
    fake_github: FakeGitHub, push_mode: Path, capsys
) -> None:
    fake_github.fail("drop", method="PATCH", path="/git/refs/heads/main", count=10)
    assert cli.main(["github", "propose", "--repo", str(push_mode)]) == 1
    err = capsys.readouterr().err
    assert "push to main: GitHub" in err and "Traceback" not in err


def test_push_mode_still_proposes_a_moved_tag_as_a_pull_request(
    fake_github: FakeGitHub, checkout: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # main.yml's promise: a tag that now names another image is seen by a person before it is
    # rebuilt, whatever github.changes says.
    (checkout / "mirrors/relay.yaml").write_text(
        "github:\n  repository: octo/mirrors\n  changes: push\n"
    )
    git(checkout, "add", "mirrors/relay.yaml")
    git(checkout, "commit", "-qm", "push mode")
    base = fake_github.refs["heads/main"]
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 0
    assert fake_github.refs["heads/main"] == base  # nothing pushed
    assert outputs(tmp_path)["result"] == "pull-request" and outputs(tmp_path)["deliver"] == "false"
    (pr,) = [i for i in fake_github.issues.values() if i.pull]
    assert pr.title == "relay: 1 upstream tag(s) moved"
    assert "1 upstream tag(s) moved: proposing a pull request" in caplog.text


def test_an_unconfigured_fork_proposes_nothing(
    fake_github: FakeGitHub, checkout: Path, capsys
) -> None:
    (checkout / "mirrors/relay.yaml").write_text("naming:\n  max_length: 30\n")
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 2
    assert "github.repository is unset" in capsys.readouterr().err
    assert fake_github.writes() == []


def test_a_read_only_token_cannot_propose(
    fake_github: FakeGitHub, checkout: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", FORK_TOKEN)
    assert cli.main(["github", "propose", "--repo", str(checkout)]) == 1
    assert "the token may not do this (HTTP 403" in capsys.readouterr().err


# --- the failure issue --------------------------------------------------------------------------


def test_one_issue_for_failing_runs_closed_when_they_pass(fake_github: FakeGitHub, env) -> None:  # noqa: ANN001
    env("schedule", {"schedule": "17 */6 * * *"})
    alice = USERS[USER_TOKEN]
    decoy = fake_github.add_issue("not relay's", f"{failures.MARKER}\npasted", alice)
    assert cli.main(["github", "report-run", "--ok"]) == 0  # nothing open: nothing to do
    assert fake_github.writes() == []
    for _ in range(3):
        assert (
            cli.main(["github", "report-run", "--failed", "--what", "the scheduled lock update"])
            == 0
        )
    ours = [i for i in fake_github.issues.values() if i.user.login == "github-actions[bot]"]
    assert len(ours) == 1 and ours[0].title == failures.TITLE
    assert "the scheduled lock update failed in [run 777]" in ours[0].body
    assert len(fake_github.comment_bodies(ours[0].number)) == 2
    assert cli.main(["github", "report-run", "--ok"]) == 0
    assert ours[0].state == "closed" and ours[0].state_reason == "completed"
    assert fake_github.issues[decoy].state == "open" and fake_github.comment_bodies(decoy) == []


# --- settings -----------------------------------------------------------------------------------


def test_settings_outputs_for_the_workflows(env, tmp_path: Path, capsys, monkeypatch) -> None:  # noqa: ANN001
    entries = "".join(
        f"  - source: img{i}\n    tags: ['1@{DIGEST_A}', '2@{DIGEST_B}']\n" for i in range(5)
    )
    repo = write_repo(
        tmp_path / "r",
        "images:\n" + entries,
        "transport: copy\ngithub:\n  repository: Octo/Mirrors\n  shard_size: 4\n  max_shards: 2\n",
    )
    assert cli.main(["github", "settings", "--repo", str(repo)]) == 0
    got = outputs(tmp_path)
    assert got["enabled"] == "true"  # owner/name compare as GitHub does, case-insensitively
    assert got["transport"] == "copy" and got["tags"] == "10"
    assert json.loads(got["shards"]) == ["1/2", "2/2"]  # 10 tags / 4 a job, capped at 2
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/fork")
    (tmp_path / "output.txt").unlink()
    assert cli.main(["github", "settings", "--repo", str(repo)]) == 0
    assert outputs(tmp_path)["enabled"] == "false"
