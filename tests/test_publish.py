"""The copy transport: `relay publish` copies every pinned tag to the target registry."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from relay import cli
from relay.registry.credentials import EnvCredentials


@pytest.fixture
def setup(tmp_path: Path, token_registry, tls_registry, image_factory, monkeypatch):
    entries = {r.host: f"{r.username}:{r.password}" for r in (token_registry, tls_registry)}
    for name, value in EnvCredentials.environment(entries).items():
        monkeypatch.setenv(name, value)
    ns = f"pub-{uuid.uuid4().hex[:6]}"
    index = image_factory.push(token_registry, f"{ns}/app", "1.0", "oci-index", seed=ns + "a")
    single = image_factory.push(token_registry, f"{ns}/tool", "2.0", "docker", seed=ns + "t")
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        textwrap.dedent(
            f"""\
            images:
              - source: {token_registry.host}/{ns}/app
                name: app
                tags: ["1.0"]
              - source: {token_registry.host}/{ns}/tool
                name: tool
                tags: ["2.0@{single.digest}"]
            """
        )
    )
    (tmp_path / "mirrors/relay.yaml").write_text(
        textwrap.dedent(
            f"""\
            transport: copy
            copy:
              registry: "{tls_registry.host}"
              namespace: {ns}
            registries:
              ca_bundles:
                "127.0.0.1": "{tls_registry.ca_file}"
            """
        )
    )
    return tmp_path, ns, index, single


def relay(*args: str) -> int:
    return cli.main(list(args))


def test_publish_copies_every_pin_with_its_digest(setup, tls_registry, skopeo, capsys, monkeypatch):
    repo, ns, index, single = setup
    assert relay("lock", "--repo", str(repo)) == 0
    capsys.readouterr()
    summary = repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert relay("publish", "--repo", str(repo)) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"{tls_registry.host}/{ns}/app:1.0" in out and "copied" in out
    assert skopeo.digest(f"{tls_registry.host}/{ns}/app:1.0", tls_registry) == index.digest
    assert skopeo.digest(f"{tls_registry.host}/{ns}/tool:2.0", tls_registry) == single.digest
    assert "| `" in summary.read_text()

    assert relay("publish", "--repo", str(repo)) == 0
    out = capsys.readouterr().out
    assert out.count("unchanged") == 2 and "2 images, 0 failed" in out


def test_one_failure_does_not_stop_the_others(setup, tls_registry, capsys):
    repo, ns, _, single = setup
    text = (repo / "mirrors/images.yaml").read_text()
    missing = "sha256:" + "0" * 64
    text = text.replace('tags: ["1.0"]', f'tags: ["1.0@{missing}"]')
    (repo / "mirrors/images.yaml").write_text(text)
    assert relay("publish", "--repo", str(repo)) == 1
    out, err = capsys.readouterr()
    assert "failed" in out and "copied" in out
    assert "1 of 2 images failed to copy" in err


def test_publish_needs_the_copy_transport(setup, capsys):
    repo, *_ = setup
    (repo / "mirrors/relay.yaml").write_text("transport: build\n")
    assert relay("publish", "--repo", str(repo)) == 2
    assert "transport: build" in capsys.readouterr().err
