"""`relay acr plan` and `relay acr apply` through the command line, against the ACR emulator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from relay import cli
from tests.helpers import write_repo

pytestmark = [pytest.mark.buildah, pytest.mark.slow]

if TYPE_CHECKING:
    from tests.fixtures.acr import AcrEmulator

GITHUB = "octo/relay-cli"


def relay(*args: str) -> int:
    return cli.main(list(args))


def test_plan_apply_plan(
    acr_emulator, registry_factory, image_factory, tmp_path, capsys, monkeypatch
):
    emu: AcrEmulator = acr_emulator
    upstream = registry_factory("plain")
    emu.map_upstream(upstream.host, upstream)
    image_factory.push(upstream, "org/app", "1.0", "docker", seed="cli-app")
    repo = write_repo(
        tmp_path / "relay",
        f"images:\n  - source: {upstream.host}/org/app\n    name: app\n    tags: ['1.0']\n",
        f"""\
        acr:
          namespace: relay-cli
          source:
            github: {GITHUB}
          poll:
            interval: 0.05
            max_interval: 0.2
            timeout: 120
          retry:
            backoff: 0.01
            max_backoff: 0.05
        """,
    )
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.access_key_secret)
    assert relay("lock", "--repo", str(repo)) == 0
    assert relay("generate", "--repo", str(repo)) == 0
    files = {
        str(p.relative_to(repo)): p.read_text()
        for p in (repo / "mirrors").rglob("*")
        if p.is_file()
    }
    emu.create_git_remote(GITHUB, files)
    capsys.readouterr()

    assert relay("acr", "plan", "--repo", str(repo)) == 0
    out = capsys.readouterr().out
    assert "create namespace relay-cli" in out and "build app:1.0" in out, out
    assert emu.writes() == []

    assert relay("acr", "apply", "--wait", "--repo", str(repo)) == 0
    out, err = capsys.readouterr()
    assert "SUCCESS" in out, out + err
    assert emu.access_key_secret not in out + err

    # The lock carries upstream's amd64 config, so checking ACR asks upstream nothing.
    from relay.config import lockfile as lock

    pushed_config = lock.read(repo).get(f"{upstream.host}/org/app", "1.0").config("linux/amd64")
    assert pushed_config is not None and pushed_config.startswith("sha256:")
    before = Path(upstream.log_file).read_text().count("relay-registry")
    assert relay("acr", "plan", "--repo", str(repo)) == 0
    assert "ACR is up to date: nothing to do" in capsys.readouterr().out
    assert Path(upstream.log_file).read_text().count("relay-registry") == before


def test_missing_settings_and_credentials_are_input_errors(tmp_path: Path, capsys, monkeypatch):
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text("images: []\n")
    assert relay("acr", "plan", "--repo", str(tmp_path)) == 2
    assert "the ACR stage needs acr.namespace, acr.source.github" in capsys.readouterr().err
    (tmp_path / "mirrors/relay.yaml").write_text("acr:\n  namespace: x1\n  source: {github: a/b}\n")
    for name in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    assert relay("acr", "plan", "--repo", str(tmp_path)) == 2
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in capsys.readouterr().err


def test_rule_location_over_128_characters_is_refused_before_asking_acr(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """A long name plus a cosign-style tag makes a DockerfileLocation ACR refuses (1-128
    characters): `relay validate` and `relay acr plan` say so with file:line, exit 2, and
    nothing is written or sent."""
    sig = "sha256-" + "a" * 64 + ".sig"
    name = "n" * 38
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text(
        f"images:\n  - source: x.io/a\n    name: {name}\n    tags:\n"
        f"      - 'v1@sha256:{'1' * 64}'\n      - '{sig}@sha256:{'2' * 64}'\n"
    )
    (tmp_path / "mirrors/relay.yaml").write_text("acr:\n  namespace: x1\n  source: {github: a/b}\n")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "secret")
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    assert relay("validate", "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mirrors/images.yaml:6: x.io/a:{sig}: the ACR build rule location ")
    assert "is 136 characters, over ACR's 128" in err and "v1" not in err
    assert relay("generate", "--repo", str(tmp_path)) == 0
    capsys.readouterr()
    assert relay("acr", "plan", "--repo", str(tmp_path)) == 2
    assert "is 136 characters, over ACR's 128" in capsys.readouterr().err
