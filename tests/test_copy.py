"""`relay copy` between real registries; skopeo is the oracle for digests."""

from __future__ import annotations

import json
import uuid

import pytest

from relay import cli
from relay.registry.credentials import EnvCredentials


@pytest.fixture
def creds(monkeypatch, tls_registry, token_registry):
    entries = {r.host: f"{r.username}:{r.password}" for r in (tls_registry, token_registry)}
    for name, value in EnvCredentials.environment(entries).items():
        monkeypatch.setenv(name, value)
    # One CA signs every test registry; requests must not pick another bundle from the env.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")


@pytest.fixture
def repo_dir(tmp_path, tls_registry):
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/relay.yaml").write_text(
        f'registries:\n  ca_bundles:\n    "127.0.0.1": "{tls_registry.ca_file}"\n'
    )
    return tmp_path


def relay(*args: str) -> int:
    return cli.main(list(args))


@pytest.mark.parametrize("kind", ["oci-index", "docker-list", "docker", "oci", "oci-no-mediatype"])
def test_copy_keeps_digest(
    kind, creds, repo_dir, tls_registry, token_registry, image_factory, skopeo, capsys
):
    name = f"copy-{uuid.uuid4().hex[:8]}"
    pushed = image_factory.push(tls_registry, name, "1", kind, seed=kind)
    src = f"{tls_registry.host}/{name}:1"
    dst = f"{token_registry.host}/mirror/{name}:1"
    assert relay("copy", src, dst, "--repo", str(repo_dir)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert pushed.digest in out
    assert skopeo.digest(dst, token_registry) == pushed.digest == skopeo.digest(src, tls_registry)
    # A warm re-copy is one HEAD on each side and moves nothing.
    assert relay("copy", src, dst, "--repo", str(repo_dir)) == 0
    assert "nothing copied" in capsys.readouterr().out


def test_warm_destination_moves_no_blob_bytes(
    creds, repo_dir, tls_registry, token_registry, image_factory, capsys
):
    name = f"warm-{uuid.uuid4().hex[:8]}"
    image_factory.push(tls_registry, name, "a", "oci-index", seed="warm")
    image_factory.push(tls_registry, name, "b", "oci-index", seed="warm")  # same content, new tag
    src = f"{tls_registry.host}/{name}"
    dst = f"{token_registry.host}/mirror/{name}"
    assert relay("copy", f"{src}:a", f"{dst}:a", "--repo", str(repo_dir)) == 0
    capsys.readouterr()
    assert relay("copy", f"{src}:b", f"{dst}:b", "--repo", str(repo_dir)) == 0
    out = capsys.readouterr().out
    # Same digest under another tag: the tag HEAD misses, but every blob is already there.
    assert "0 blobs copied, 0 bytes" in out


def test_mount_within_one_registry(creds, repo_dir, token_registry, image_factory, skopeo, capsys):
    name = f"mount-{uuid.uuid4().hex[:8]}"
    pushed = image_factory.push(token_registry, f"{name}/src", "1", "docker-list", seed="mount")
    src = f"{token_registry.host}/{name}/src:1"
    dst = f"{token_registry.host}/{name}/dst:1"
    assert relay("copy", src, dst, "--repo", str(repo_dir)) == 0
    out = capsys.readouterr().out
    # two platforms x (config + two layers), each mounted rather than sent
    assert "0 blobs copied, 0 bytes; 6 mounted" in out, out
    assert skopeo.digest(dst, token_registry) == pushed.digest


def test_platform_narrowing_says_digest_changes(
    creds, repo_dir, tls_registry, token_registry, image_factory, skopeo, capsys, caplog
):
    name = f"plat-{uuid.uuid4().hex[:8]}"
    pushed = image_factory.push(tls_registry, name, "1", "oci-index", seed="plat")
    src = f"{tls_registry.host}/{name}:1"
    dst = f"{token_registry.host}/mirror/{name}:arm64"
    assert relay("copy", src, dst, "--platform", "linux/arm64/v8", "--repo", str(repo_dir)) == 0
    out = capsys.readouterr().out
    index = json.loads(pushed.manifest)
    arm = [m for m in index["manifests"] if m["platform"]["architecture"] == "arm64"][0]
    assert arm["digest"] in out
    assert skopeo.digest(dst, token_registry) == arm["digest"] != pushed.digest
    assert "digest is now" in caplog.text
    assert relay("copy", src, dst, "--platform", "linux/s390x", "--repo", str(repo_dir)) == 1
    assert "no linux/s390x in the source index" in capsys.readouterr().err


def test_failure_is_exit_1_with_a_clear_message(
    creds, repo_dir, tls_registry, token_registry, capsys
):
    assert (
        relay(
            "copy",
            f"{tls_registry.host}/nope/none:1",
            f"{token_registry.host}/x/y:1",
            "--repo",
            str(repo_dir),
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "not found" in err
    # Pushing with a pull-only account is refused, and said so.
    assert relay("copy", "nonsense::", "x", "--repo", str(repo_dir)) == 2


def test_corrupt_source_blob_is_refused_by_the_destination(
    creds, repo_dir, tls_registry, token_registry, image_factory, capsys
):
    """copy does not hash blobs itself; the destination's digest check must catch corruption."""
    from pathlib import Path

    name = f"corrupt-{uuid.uuid4().hex[:8]}"
    pushed = image_factory.push(tls_registry, name, "1", "oci", seed=name, layer_size=65536)
    layer = pushed.layer_digests[0].split(":", 1)[1]
    data = Path(tls_registry.data_dir, "docker/registry/v2/blobs/sha256", layer[:2], layer, "data")
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF  # same size, different bytes: the source registry serves it as is
    data.write_bytes(bytes(raw))
    dst = f"{token_registry.host}/mirror/{name}:1"
    assert relay("copy", f"{tls_registry.host}/{name}:1", dst, "--repo", str(repo_dir)) == 1
    err = capsys.readouterr().err
    assert "DIGEST_INVALID" in err, err


def test_missing_ca_bundle_in_the_environment_is_a_clear_error(
    repo_dir, tls_registry, capsys, monkeypatch
):
    # A per-registry CA from relay.yaml wins; without one, a broken REQUESTS_CA_BUNDLE is reported.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    (repo_dir / "mirrors/relay.yaml").write_text("")
    assert (
        relay(
            "copy",
            f"{tls_registry.host}/a/b:1",
            f"{tls_registry.host}/c/d:1",
            "--repo",
            str(repo_dir),
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "Traceback" not in err and "/nonexistent/bundle.pem" in err, err
