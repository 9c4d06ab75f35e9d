"""`--shard I/N`: the one rule (relay/config/shard.py) and the commands that take it."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay import cli
from relay.config import lockfile, shard
from relay.errors import InputError

from .test_publish import setup  # noqa: F401 - the fixture, used by name below


def test_parse() -> None:
    assert shard.parse("2/4") == shard.Shard(2, 4) and str(shard.parse(" 1/1 ")) == "1/1"
    for bad in ("0/4", "5/4", "1/0", "1/257", "a/b", "1-4", "1/4/2", ""):
        with pytest.raises(InputError, match="expected I/N"):
            shard.parse(bad)


def test_every_name_in_exactly_one_shard_and_stable() -> None:
    names = [f"image-{i}" for i in range(1000)]
    for count in (1, 2, 7, 16):
        parts = [shard.select(names, str, shard.Shard(i, count)) for i in range(1, count + 1)]
        assert sorted(n for part in parts for n in part) == sorted(names)
        if count > 1:  # roughly even: no shard holds twice its share
            assert max(len(p) for p in parts) < 2 * len(names) / count
    # A name's shard depends on the name alone: adding others moves nothing.
    before = {n: shard.shard_of(n, 8) for n in names}
    assert {
        n: shard.shard_of(n, 8) for n in [*names, "new-one", "another"]
    }.items() >= before.items()
    # Pinned values: the rule must not change under users (a release would move their jobs).
    assert [shard.shard_of(n, 4) for n in ("nginx", "k8s_pause", "quay_org_app")] == [1, 1, 2]


def split(names: list[str]) -> int:
    """A shard count that puts these names in different shards."""
    return next(n for n in range(2, 50) if len({shard.shard_of(x, n) for x in names}) == len(names))


def test_lock_and_publish_by_shard(request, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    repo, ns, index, single = request.getfixturevalue("setup")
    count = split(["app", "tool"])
    mine = {name: f"{shard.shard_of(name, count)}/{count}" for name in ("app", "tool")}
    # Locking shard by shard ends where one unsharded lock would.
    assert cli.main(["lock", "--repo", str(repo), "--shard", mine["tool"]]) == 0
    assert lockfile.read(repo).images == {}  # tool is pinned inline: nothing to lock
    assert cli.main(["lock", "--repo", str(repo), "--shard", mine["app"]]) == 0
    sharded = lockfile.read(repo)
    assert cli.main(["lock", "--repo", str(repo), "--check"]) == 0
    assert [source.rsplit("/", 1)[-1] for source in sharded.images] == ["app"]
    # Each delivery job copies its own images and names them for the Harbor job.
    for name, part in mine.items():
        delivered = tmp_path / f"delivered-{name}.txt"
        assert (
            cli.main(
                ["publish", "--repo", str(repo), "--shard", part, "--delivered", str(delivered)]
            )
            == 0
        )
        assert delivered.read_text() == f"{name}\n"
        out = capsys.readouterr().out
        other = "tool" if name == "app" else "app"
        assert f"/{ns}/{name}:" in out and f"/{ns}/{other}:" not in out
    # Nothing left to copy: the names file is empty, not stale.
    delivered = tmp_path / "again.txt"
    assert (
        cli.main(
            ["publish", "--repo", str(repo), "--shard", mine["app"], "--delivered", str(delivered)]
        )
        == 0
    )
    assert delivered.read_text() == ""


def test_lock_shard_keeps_other_shards_lines(tmp_path: Path) -> None:
    from relay.commands.lock import _merge
    from relay.config.lockfile import Lock, LockedTag
    from relay.config.mirrors import parse

    listed = parse(
        "images:\n  - source: nginx\n    tags: ['1']\n  - source: redis\n    tags: ['7']\n", "x"
    )
    count = split(["nginx", "redis", "gone"])
    one = shard.Shard(shard.shard_of("nginx", count), count)
    old, new = Lock(), Lock()
    tag = LockedTag("sha256:" + "a" * 64, "application/vnd.oci.image.index.v1+json")
    for source in ("docker.io/library/nginx", "docker.io/library/redis", "docker.io/library/gone"):
        old.put(source, "1", tag)
    moved = LockedTag("sha256:" + "b" * 64, tag.media_type)
    new.put("docker.io/library/nginx", "1", moved)
    merged = _merge(old, new, listed, one)
    assert merged.get("docker.io/library/nginx", "1") == moved  # this shard's: resolved
    assert merged.get("docker.io/library/redis", "1") == tag  # another shard's: kept
    # An entry no longer listed is dropped by the shard its derived name falls in, only.
    gone_here = shard.shard_of("gone", count) == one.index
    assert (merged.get("docker.io/library/gone", "1") is None) == gone_here


def test_prune_and_shard_do_not_mix(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text("images: []\n")
    assert cli.main(["acr", "apply", "--prune", "--shard", "1/2", "--repo", str(tmp_path)]) == 2
    assert "run it without --shard" in capsys.readouterr().err
    assert cli.main(["lock", "--shard", "3/2", "--repo", str(tmp_path)]) == 2


def test_only_and_the_copy_targets_credentials_from_env(
    request, capsys, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    from relay.registry.credentials import EnvCredentials

    repo, ns, index, single = request.getfixturevalue("setup")
    tls = request.getfixturevalue("tls_registry")
    # The workflow hands the copy target's secrets over as RELAY_COPY_USERNAME/PASSWORD.
    token = request.getfixturevalue("token_registry")
    auth = {token.host: f"{token.username}:{token.password}"}  # none for the copy target
    for name, value in EnvCredentials.environment(auth).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RELAY_COPY_USERNAME", tls.username)
    monkeypatch.setenv("RELAY_COPY_PASSWORD", tls.password)
    assert cli.main(["lock", "--repo", str(repo), "--only", "app"]) == 0
    delivered = tmp_path / "d.txt"
    assert (
        cli.main(["publish", "--repo", str(repo), "--only", "t*", "--delivered", str(delivered)])
        == 0
    )
    assert delivered.read_text() == "tool\n"
    assert tls.password not in capsys.readouterr().out
    assert cli.main(["publish", "--repo", str(repo), "--only", "nothing-like-it"]) == 2
    assert "--only nothing-like-it: no image in the list" in capsys.readouterr().err
