"""One platform rule everywhere: containerd's normalisation (arm64 ≡ arm64/v8, arm ≡ arm/v7…).

The images are built like Docker Official Images publish them: an OCI index whose arm64 entry
carries ``variant: v8`` (alpine's and nginx's indexes do).
"""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path

import pytest

from relay import cli
from relay import platforms as rule
from relay.config import lockfile
from relay.config.mirrors import parse
from relay.errors import InputError
from relay.registry.credentials import EnvCredentials

# What `docker buildx imagetools inspect alpine:3.20` lists, arm64 with its variant.
OFFICIAL = ("linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64/v8", "linux/386")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64/v8.0"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64/v1"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/arm/6", "linux/arm/v6"),
        ("linux/i386", "linux/386"),
        ("Linux/AMD64", "linux/amd64"),
        ("macos/arm64", "darwin/arm64"),
    ],
)
def test_same_platform(a: str, b: str) -> None:
    assert rule.same(a, b) and rule.same(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("linux/arm/v6", "linux/arm/v7"),  # no "can also run" fallback: a mirror holds what's asked
        ("linux/amd64", "linux/386"),
        ("linux/arm64", "linux/arm64/v9"),
        ("linux/amd64/v3", "linux/amd64"),
        ("linux/arm64", "windows/arm64"),
    ],
)
def test_different_platforms(a: str, b: str) -> None:
    assert not rule.same(a, b)


def test_index_entries_match_by_the_rule() -> None:
    entry = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert rule.matches("linux/arm64", entry)
    assert rule.matches("linux/aarch64", entry)
    assert not rule.matches("linux/arm/v7", entry)
    assert rule.matches("linux/arm", {"os": "linux", "architecture": "arm", "variant": "v7"})
    assert rule.platform_string(entry) == "linux/arm64/v8"  # recorded as published
    assert rule.contains(OFFICIAL, "linux/arm64") and not rule.contains(OFFICIAL, "linux/s390x")


@pytest.mark.parametrize(
    ("platform", "message"),
    [
        ("linux/amd46", "unknown architecture 'amd46'; did you mean 'amd64'?"),
        ("linux/arn64", "unknown architecture 'arn64'; did you mean 'arm64'?"),
        ("linx/amd64", "unknown OS 'linx'; did you mean 'linux'?"),
        ("linux/armv7", "did you mean 'linux/arm/v7'?"),
        ("linux/ppc64el", "did you mean 'ppc64le'?"),
        ("amd64", "is not os/arch[/variant]"),
        ("linux/amd64/v2/x", "is not os/arch[/variant]"),
    ],
)
def test_validate_refuses_unknown_names(platform: str, message: str) -> None:
    text = (
        f"images:\n  - source: nginx\n    tags: ['1']\n    platforms: [linux/amd64, {platform}]\n"
    )
    with pytest.raises(InputError) as exc:
        parse(text, "mirrors/images.yaml")
    got = [str(p) for p in exc.value.problems]
    assert len(got) == 1 and got[0].startswith("mirrors/images.yaml:4: platform"), got
    assert message in got[0]


def test_validate_accepts_the_spellings_docker_accepts_and_refuses_doubles() -> None:
    ok = "images:\n  - source: nginx\n    tags: ['1']\n    platforms: [linux/aarch64, linux/x86_64, linux/arm]\n"
    assert parse(ok, "mirrors/images.yaml").entries[0].platforms == (
        "linux/aarch64",
        "linux/x86_64",
        "linux/arm",
    )
    twice = "images:\n  - source: nginx\n    tags: ['1']\n    platforms: [linux/arm64, linux/arm64/v8]\n"
    with pytest.raises(InputError) as exc:
        parse(twice, "mirrors/images.yaml")
    assert "duplicate platform 'linux/arm64/v8' ('linux/arm64' is the same platform" in str(
        exc.value
    )


def test_relay_validate_names_the_typo(tmp_path: Path, capsys) -> None:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        "images:\n  - source: nginx\n    tags: ['1.27']\n    platforms: [linux/amd46]\n"
    )
    assert cli.main(["validate", "--repo", str(tmp_path)]) == 2
    assert "did you mean 'amd64'?" in capsys.readouterr().err


# --- against a real registry ----------------------------------------------------------------


@pytest.fixture
def upstream(tls_registry, token_registry, image_factory, monkeypatch, tmp_path):
    entries = {r.host: f"{r.username}:{r.password}" for r in (tls_registry, token_registry)}
    for name, value in EnvCredentials.environment(entries).items():
        monkeypatch.setenv(name, value)
    ns = f"plat-{uuid.uuid4().hex[:8]}"
    # An official-image-shaped index: amd64, arm/v7 and arm64 with variant v8.
    pushed = image_factory.push(
        token_registry,
        f"{ns}/alpine",
        "3.20",
        "oci-index",
        seed=f"alpine-{ns}",
        platforms=["linux/amd64", "linux/arm/v7", "linux/arm64/v8"],
        layer_size=256,
    )
    assert json.loads(pushed.manifest)["manifests"][2]["platform"]["variant"] == "v8"
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/relay.yaml").write_text(
        "naming: {max_length: 64}\n"
        f'registries:\n  ca_bundles:\n    "127.0.0.1": "{token_registry.ca_file}"\n'
    )
    return token_registry, tls_registry, ns, pushed, tmp_path


def test_lock_takes_arm64_for_an_arm64_v8_image(upstream, capsys) -> None:
    registry, _, ns, pushed, repo = upstream
    (repo / "mirrors/images.yaml").write_text(
        textwrap.dedent(
            f"""\
            images:
              - source: {registry.host}/{ns}/alpine
                tags: ["3.20"]
                platforms: [linux/amd64, linux/arm64, linux/arm]
            """
        )
    )
    assert cli.main(["lock", "--repo", str(repo)]) == 0, capsys.readouterr().err
    got = lockfile.read(repo).get(f"{registry.host}/{ns}/alpine", "3.20")
    assert got is not None and got.digest == pushed.digest
    assert got.platforms == ("linux/amd64", "linux/arm/v7", "linux/arm64/v8")
    assert cli.main(["lock", "--check", "--repo", str(repo)]) == 0


def test_copy_platform_arm64_takes_the_v8_entry(upstream, skopeo, capsys) -> None:
    registry, other, ns, pushed, repo = upstream
    index = json.loads(pushed.manifest)
    arm64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    dst = f"{other.host}/mirror/{ns}:arm64"
    src = f"{registry.host}/{ns}/alpine:3.20"
    assert cli.main(["copy", src, dst, "--platform", "linux/arm64", "--repo", str(repo)]) == 0
    assert skopeo.digest(dst, other) == arm64["digest"]
    # Two platforms by other spellings: a narrowed index with exactly those two entries.
    dst2 = f"{other.host}/mirror/{ns}:two"
    argv = ["copy", src, dst2, "--platform", "linux/aarch64", "--platform", "linux/x86_64"]
    assert cli.main([*argv, "--repo", str(repo)]) == 0
    capsys.readouterr()
    assert cli.main(["copy", src, dst, "--platform", "linux/s390x", "--repo", str(repo)]) == 1
    err = capsys.readouterr().err
    assert (
        "no linux/s390x in the source index (it has linux/amd64, linux/arm/v7, linux/arm64/v8)"
        in err
    )
