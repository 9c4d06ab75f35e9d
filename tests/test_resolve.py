"""`relay lock` against a real bearer-token registry, with skopeo as the digest oracle."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from relay import cli
from relay.config import lockfile as lock
from relay.registry.credentials import EnvCredentials


@pytest.fixture
def upstream(token_registry, image_factory, monkeypatch):
    """A fresh namespace on the token registry, and relay's credentials for it."""
    ns = f"lock-{uuid.uuid4().hex[:8]}"
    entries = {token_registry.host: f"{token_registry.username}:{token_registry.password}"}
    for name, value in EnvCredentials.environment(entries).items():
        monkeypatch.setenv(name, value)
    return token_registry, image_factory, ns


def make_repo(tmp_path: Path, registry, images: str) -> Path:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(textwrap.dedent(images))
    (tmp_path / "mirrors/relay.yaml").write_text(
        textwrap.dedent(
            f"""\
            naming:
              max_length: 64
            registries:
              ca_bundles:
                # a bare host covers every port: the registry and its token realm
                "127.0.0.1": "{registry.ca_file}"
            """
        )
    )
    return tmp_path


def relay(*args: str) -> int:
    return cli.main(list(args))


def test_lock_resolves_tags_rules_and_platforms(upstream, tmp_path, skopeo, capsys) -> None:
    registry, images, ns = upstream
    app = images.push(registry, f"{ns}/app", "1.0", "oci-index", seed="app")
    single = images.push(registry, f"{ns}/app", "1.1", "docker", seed="app11")
    for version in ("2.0.0", "2.1.0", "2.2.0", "3.0.0-rc.1", "latest"):
        images.push(registry, f"{ns}/tool", version, "oci", seed=f"tool{version}")
    repo = make_repo(
        tmp_path,
        registry,
        f"""\
        images:
          - source: {registry.host}/{ns}/app
            tags: ["1.0", "1.1"]
          - source: {registry.host}/{ns}/tool
            select:
              semver: ">=2.0.0 <3"
              latest: 2
        """,
    )
    assert relay("lock", "--repo", str(repo)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "4 tags resolved" in out and "lock written" in out
    lk = lock.read(repo)
    got = lk.get(f"{registry.host}/{ns}/app", "1.0")
    assert got is not None
    assert got.digest == app.digest == skopeo.digest(app.ref, registry)
    assert got.media_type == "application/vnd.oci.image.index.v1+json"
    assert got.platforms == ("linux/amd64", "linux/arm64/v8")
    one = lk.get(f"{registry.host}/{ns}/app", "1.1")
    assert one is not None and one.digest == single.digest and one.platforms == ("linux/amd64",)
    assert sorted(lk.images[f"{registry.host}/{ns}/tool"]) == ["2.1.0", "2.2.0"]
    assert all(t.selected_by == "rule" for t in lk.images[f"{registry.host}/{ns}/tool"].values())

    # The lock feeds generate: every selected tag gets its Dockerfile.
    assert relay("generate", "--repo", str(repo)) == 0
    assert len(list((repo / "mirrors/dockerfiles").rglob("Dockerfile"))) == 4

    # A re-run changes nothing.
    before = (repo / "mirrors/images.lock").read_bytes()
    assert relay("lock", "--repo", str(repo)) == 0
    assert "lock unchanged" in capsys.readouterr().out
    assert (repo / "mirrors/images.lock").read_bytes() == before


def test_check_reports_a_moved_tag_and_update_takes_it(upstream, tmp_path, capsys) -> None:
    registry, images, ns = upstream
    images.push(registry, f"{ns}/web", "stable", "oci", seed="old")
    repo = make_repo(
        tmp_path, registry, f"images:\n  - source: {registry.host}/{ns}/web\n    tags: [stable]\n"
    )
    assert relay("lock", "--repo", str(repo)) == 0
    old = lock.read(repo).get(f"{registry.host}/{ns}/web", "stable")
    assert relay("lock", "--check", "--repo", str(repo)) == 0
    assert "the lock matches upstream" in capsys.readouterr().out

    moved = images.push(registry, f"{ns}/web", "stable", "oci", seed="new")
    before = (repo / "mirrors/images.lock").read_bytes()
    assert relay("lock", "--check", "--repo", str(repo)) == 1
    out, err = capsys.readouterr()
    assert f"moved   {registry.host}/{ns}/web:stable {old.digest} -> {moved.digest}" in out
    assert "differs from upstream in 1 tag(s)" in err
    assert (repo / "mirrors/images.lock").read_bytes() == before  # --check writes nothing

    # A plain lock keeps what is pinned; --update moves it.
    assert relay("lock", "--repo", str(repo)) == 0
    assert lock.read(repo).get(f"{registry.host}/{ns}/web", "stable").digest == old.digest
    assert relay("lock", "--update", "--repo", str(repo)) == 0
    assert lock.read(repo).get(f"{registry.host}/{ns}/web", "stable").digest == moved.digest


def test_missing_tag_and_platform_name_the_line(upstream, tmp_path, capsys) -> None:
    registry, images, ns = upstream
    images.push(registry, f"{ns}/multi", "1", "docker-list", seed="m")
    repo = make_repo(
        tmp_path,
        registry,
        f"""\
        images:
          - source: {registry.host}/{ns}/multi
            tags: ["1"]
            platforms: [linux/amd64, linux/s390x]
          - source: {registry.host}/{ns}/multi2
            tags:
              - "1"
              - nope
        """,
    )
    assert relay("lock", "--repo", str(repo)) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        f"mirrors/images.yaml:2: {registry.host}/{ns}/multi:1 has no linux/s390x upstream"
    )
    assert err[1] == f"mirrors/images.yaml:7: {registry.host}/{ns}/multi2:1 not found upstream"
    assert err[2] == f"mirrors/images.yaml:8: {registry.host}/{ns}/multi2:nope not found upstream"
    assert not (repo / "mirrors/images.lock").exists()


def test_warm_check_costs_one_request_per_tag(upstream, tmp_path, capsys) -> None:
    registry, images, ns = upstream
    lines = ["images:"]
    for r in range(3):
        for t in range(5):
            images.push(registry, f"{ns}/r{r}", f"v{t}", "oci-index", seed=f"{r}{t}", layer_size=64)
        lines.append(f"  - source: {registry.host}/{ns}/r{r}")
        lines.append("    tags: [" + ", ".join(f"v{t}" for t in range(5)) + "]")
    repo = make_repo(tmp_path, registry, "\n".join(lines) + "\n")
    registry.token_server.reset()
    assert relay("lock", "--repo", str(repo)) == 0
    out = capsys.readouterr().out
    # 15 GETs, plus one ping and one token per repository (no retries, no second manifest fetch)
    assert "15 tags resolved with 19 registry requests" in out, out
    assert registry.token_server.issued == 3
    registry.token_server.reset()
    assert relay("lock", "--check", "--repo", str(repo)) == 0
    assert "15 tags resolved with 19 registry requests" in capsys.readouterr().out
    records = [json.loads(x) for x in (repo / "mirrors/images.lock").read_text().splitlines()[1:]]
    assert len(records) == 15


def test_diff_is_sorted_and_complete() -> None:
    from relay.config.lockfile import Lock, LockedTag
    from relay.stages.lock import diff

    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    media = "application/vnd.oci.image.index.v1+json"
    old, new = Lock(), Lock()
    old.put("x/y", "1", LockedTag(a, media))
    old.put("x/y", "2", LockedTag(a, media))
    new.put("x/y", "2", LockedTag(b, media))
    new.put("x/y", "3", LockedTag(b, media))
    assert [str(c) for c in diff(old, new)] == [
        f"removed x/y:1 {a}",
        f"moved   x/y:2 {a} -> {b}",
        f"added   x/y:3 {b}",
    ]
    assert diff(new, new) == []


def test_platform_string() -> None:
    from relay.platforms import platform_string

    assert (
        platform_string({"os": "linux", "architecture": "arm", "variant": "v7"}) == "linux/arm/v7"
    )
    assert platform_string({"os": "linux", "architecture": "amd64"}) == "linux/amd64"


def test_dry_run_prints_the_plan_and_writes_nothing(upstream, tmp_path, capsys) -> None:
    registry, images, ns = upstream
    pushed = images.push(registry, f"{ns}/dry", "1", "oci", seed="dry")
    repo = make_repo(
        tmp_path, registry, f"images:\n  - source: {registry.host}/{ns}/dry\n    tags: ['1']\n"
    )
    assert relay("lock", "--dry-run", "--repo", str(repo)) == 0
    out = capsys.readouterr().out
    assert f"added   {registry.host}/{ns}/dry:1 {pushed.digest}" in out
    assert "dry run: lock not written" in out
    assert not (repo / "mirrors/images.lock").exists()


def test_config_digests_are_recorded_once_per_digest(upstream, tmp_path, capsys) -> None:
    from relay.config import lockfile as lock_mod
    from relay.config.mirrors import load as load_list
    from relay.config.settings import load as load_settings
    from relay.registry.pool import ClientPool
    from relay.stages.lock import resolve

    registry, images, ns = upstream
    index = images.push(registry, f"{ns}/cfg", "1", "oci-index", seed="cfg")
    repo = make_repo(
        tmp_path, registry, f"images:\n  - source: {registry.host}/{ns}/cfg\n    tags: ['1']\n"
    )
    cfg = load_settings(repo)
    ml = load_list(repo, max_name_length=cfg.naming.max_length)

    def amd64(entry):
        return ("linux/amd64",)

    with ClientPool(cfg.registries, repo=repo) as pool:
        first = resolve(ml, lock_mod.Lock(), pool, recheck=False, config_platforms=amd64)
        assert not first.problems
        got = first.lock.get(f"{registry.host}/{ns}/cfg", "1")
        amd = next(c for c in index.image.children if c.platforms == ["linux/amd64"])
        assert got.config("linux/amd64") == amd.config_digest
        assert pool.stats.count(kind="manifest") == 2  # the index, then the amd64 image
        lock_mod.write(repo, first.lock)
        assert '"configs": {"linux/amd64": "sha256:' in (repo / "mirrors/images.lock").read_text()
        before = pool.stats.count(kind="manifest")
        again = resolve(ml, lock_mod.read(repo), pool, recheck=True, config_platforms=amd64)
        assert again.lock.images == first.lock.images
        assert pool.stats.count(kind="manifest") - before == 1  # one HEAD, nothing more
