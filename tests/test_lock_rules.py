"""`relay lock` and `relay plan` on real-shaped data: inline pins checked upstream, version
rules that see `1.27`-style tags, a rule that matches nothing, `select: {all: true}`."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from relay import cli
from relay.config import lockfile
from relay.registry.credentials import EnvCredentials

MISSING = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def upstream(token_registry, image_factory, monkeypatch, tmp_path):
    entries = {token_registry.host: f"{token_registry.username}:{token_registry.password}"}
    for name, value in EnvCredentials.environment(entries).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    ns = f"rules-{uuid.uuid4().hex[:8]}"
    (tmp_path / "mirrors").mkdir()
    return token_registry, image_factory, ns, tmp_path


def write(repo: Path, registry, images: str, lock: str = "") -> None:
    (repo / "mirrors/images.yaml").write_text(textwrap.dedent(images))
    (repo / "mirrors/relay.yaml").write_text(
        f'registries:\n  ca_bundles:\n    "127.0.0.1": "{registry.ca_file}"\n{lock}'
    )


def relay(*args: str) -> int:
    return cli.main(list(args))


def test_lock_check_and_plan_verify_every_pin(upstream, capsys) -> None:
    registry, images, ns, repo = upstream
    web = images.push(registry, f"{ns}/web", "1.0", "oci-index", seed=f"{ns}-old", layer_size=64)
    source = f"{registry.host}/{ns}/web"
    write(
        repo,
        registry,
        f"""\
        images:
          - source: {source}
            tags:
              - "1.0@{web.digest}"
              - "2.0@{MISSING}"
        """,
    )
    # Nothing upstream has the second pin: an error on its line, for lock --check and plan.
    assert relay("lock", "--check", "--repo", str(repo)) == 1
    err = capsys.readouterr().err
    assert (
        f"mirrors/images.yaml:5: {source}:2.0@{MISSING}: the pinned digest does not exist in "
        f"{source} upstream" in err
    )
    assert "mirrors/images.yaml:4" not in err  # the good pin is fine
    assert relay("plan", "--repo", str(repo)) == 1
    out, err = capsys.readouterr()
    # Once, on stderr with its line; the terminal rendering counts it; the PR comment has it.
    assert "the pinned digest does not exist" in err and "1 problem(s)" in out
    assert "the pinned digest does not exist" not in out
    assert relay("plan", "--format", "markdown", "--repo", str(repo)) == 1
    assert "the pinned digest does not exist" in capsys.readouterr().out

    # The tag moves upstream: the pin still exists, so a warning, not an error.
    write(repo, registry, f'images:\n  - source: {source}\n    tags: ["1.0@{web.digest}"]\n')
    moved = images.push(registry, f"{ns}/web", "1.0", "oci", seed=f"{ns}-new", layer_size=64)
    assert relay("lock", "--check", "--repo", str(repo)) == 0
    err = capsys.readouterr().err
    assert (
        f"relay: warning: mirrors/images.yaml:3: {source}:1.0 now points to {moved.digest}, "
        f"not the pinned {web.digest}" in err
    )
    assert relay("plan", "--repo", str(repo)) == 0
    assert "now points to" in capsys.readouterr().out


def test_version_rules_see_short_versions(upstream, capsys) -> None:
    registry, images, ns, repo = upstream
    # postgres-shaped tags: 16, 16.4, 16.3, 15.8, a variant and a release candidate.
    for tag in ("16", "16.4", "16.3", "15.8", "16.4-bookworm", "17rc1", "latest"):
        images.push(registry, f"{ns}/postgres", tag, "oci", seed=f"{ns}{tag}", layer_size=64)
    source = f"{registry.host}/{ns}/postgres"
    write(
        repo,
        registry,
        f"""\
        images:
          - source: {source}
            select:
              semver: "^16"
              latest: 2
        """,
    )
    assert relay("lock", "--repo", str(repo)) == 0, capsys.readouterr().err
    assert sorted(lockfile.read(repo).images[source]) == ["16.3", "16.4"]


def test_a_rule_that_matches_nothing_is_an_error_and_writes_nothing(upstream, capsys) -> None:
    registry, images, ns, repo = upstream
    for tag in ("1.27", "1.27.3", "1.27.3-alpine", "1.28.0-rc.1", "mainline"):
        images.push(registry, f"{ns}/nginx", tag, "oci", seed=f"{ns}{tag}", layer_size=64)
    source = f"{registry.host}/{ns}/nginx"
    entry = f"images:\n  - source: {source}\n    select:\n      semver: '{{}}'\n"
    write(repo, registry, entry.format(">=1.27 <2"))
    assert relay("lock", "--repo", str(repo)) == 0, capsys.readouterr().err
    before = (repo / "mirrors/images.lock").read_bytes()
    assert sorted(lockfile.read(repo).images[source]) == ["1.27", "1.27.3"]

    write(repo, registry, entry.format(">=1.28 <2"))
    assert relay("lock", "--repo", str(repo)) == 1
    err = capsys.readouterr().err
    assert f"mirrors/images.yaml:2: {source}: select matches no upstream tag" in err
    assert "upstream has 5 tag(s), none taken" in err
    assert "1.28.0-rc.1 (a pre-release, and '>=1.28 <2' names none)" in err
    assert "1.27.3 (outside '>=1.28 <2')" in err
    assert "mainline (not a version)" in err
    assert (repo / "mirrors/images.lock").read_bytes() == before  # nothing written


def test_all_tags_with_a_warning_above_the_setting(upstream, capsys) -> None:
    registry, images, ns, repo = upstream
    for tag in ("a", "b", "c", "c.sig"):
        images.push(registry, f"{ns}/every", tag, "oci", seed=f"{ns}{tag}", layer_size=64)
    source = f"{registry.host}/{ns}/every"
    write(
        repo,
        registry,
        f"images:\n  - source: {source}\n    select: {{all: true, exclude: '\\.sig$'}}\n",
        "lock:\n  warn_tags: 2\n",
    )
    assert relay("lock", "--repo", str(repo)) == 0
    err = capsys.readouterr().err
    assert f"{source}: select takes 3 tags, more than lock.warn_tags (2)" in err
    assert sorted(lockfile.read(repo).images[source]) == ["a", "b", "c"]
