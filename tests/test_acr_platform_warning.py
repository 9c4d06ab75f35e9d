"""`relay acr plan` and `relay acr apply` warn, on the list's line, about every entry that lists a
platform the build transport will not produce (Personal Edition builds linux/amd64 only;
docs/vendors/acr.md#github-source-binding-and-overseas-build), and suggest `transport: copy`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from relay import cli
from relay.config import mirrors
from relay.stages.acr import plan as planner
from relay.stages.acr.settings import AcrSettings, SourceSettings

from .helpers import DIGEST_A, DIGEST_B, DIGEST_C, write_repo

if TYPE_CHECKING:
    from tests.fixtures.acr import AcrEmulator

PERSONAL = AcrSettings(namespace="mirrors", source=SourceSettings("octo/relay"))
ENTERPRISE = AcrSettings(
    edition="enterprise",
    instance_id="cri-abc123",
    namespace="mirrors",
    source=SourceSettings("octo/relay"),
)

# Inline pins: `relay generate` needs no lock, and a plan against an empty ACR needs no upstream.
LIST = f"""\
images:
  - source: registry.k8s.io/pause
    tags: ["3.9@{DIGEST_A}"]
    platforms: [linux/amd64, linux/arm64]
  - source: nginx
    tags: ["1.27@{DIGEST_B}"]
    platforms: [linux/x86_64]
  - source: quay.io/org/app
    tags: ["1.0@{DIGEST_C}"]
"""
SETTINGS = """\
acr:
  namespace: relay-warn
  source:
    github: octo/relay-warn
"""


def warnings(text: str, settings: AcrSettings) -> list[str]:
    mirror_list = mirrors.parse(textwrap.dedent(text), "mirrors/images.yaml")
    return [str(p) for p in planner.platform_warnings(mirror_list, settings)]


def test_personal_edition_warns_for_every_platform_but_amd64_on_the_entry_line() -> None:
    found = warnings(LIST, PERSONAL)
    # pause (line 2) lists arm64; nginx's x86_64 is amd64; app lists nothing (amd64 is built).
    assert len(found) == 1, found
    assert found[0].startswith(
        "mirrors/images.yaml:2: registry.k8s.io/pause lists linux/arm64, which the build "
        "transport will not produce (ACR Personal Edition builds linux/amd64 only, under new "
        "digests): set `transport: copy` in mirrors/relay.yaml"
    ), found


def test_several_missing_platforms_are_one_warning() -> None:
    text = "images:\n  - source: x.io/a\n    tags: [v1]\n    platforms: [linux/arm64, linux/arm/v7, linux/amd64]\n"
    assert warnings(text, PERSONAL) == [
        "mirrors/images.yaml:2: x.io/a lists linux/arm64 and linux/arm/v7, which the build "
        "transport will not produce (ACR Personal Edition builds linux/amd64 only, under new "
        "digests): set `transport: copy` in mirrors/relay.yaml to keep every platform and "
        "upstream's digests, or remove linux/arm64 and linux/arm/v7 from the entry's platforms"
    ]


def test_enterprise_builds_its_four_platforms_and_warns_about_the_rest() -> None:
    text = (
        "images:\n"
        "  - source: x.io/a\n    tags: [v1]\n    platforms: [linux/arm64/v8, linux/armhf]\n"
        "  - source: x.io/b\n    tags: [v1]\n    platforms: [linux/amd64, linux/s390x]\n"
    )
    assert planner.built_platforms(
        mirrors.parse(text, "mirrors/images.yaml").entries[0], ENTERPRISE
    ) == ("linux/arm64", "linux/arm/v7")
    found = warnings(text, ENTERPRISE)
    assert len(found) == 1 and found[0].startswith(
        "mirrors/images.yaml:5: x.io/b lists linux/s390x, which the build transport will not "
        "produce (ACR Enterprise Edition builds linux/amd64, linux/arm64, linux/arm/v7 and "
        "linux/arm/v6 only"
    ), found


@pytest.mark.parametrize("verb", ["plan", "apply"])
def test_plan_and_apply_warn_before_asking_acr(
    verb: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    """The warning comes from the list alone: it is printed (and annotated under Actions) even
    when the run then stops for want of credentials."""
    for name in (
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIYUN_ACCESS_KEY_ID",
        "ALIYUN_ACCESS_KEY_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    repo = write_repo(tmp_path / "repo", LIST, SETTINGS)
    assert cli.main(["generate", "--repo", str(repo)]) == 0
    capsys.readouterr()
    assert cli.main(["acr", verb, "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert (
        "relay: warning: mirrors/images.yaml:2: registry.k8s.io/pause lists linux/arm64, "
        "which the build transport will not produce" in err
    ), err
    assert "::warning file=mirrors/images.yaml,line=2::registry.k8s.io/pause lists" in err, err
    assert err.count("lists linux/") == 2, err  # one log line, one annotation: pause only
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in err


def test_a_successful_plan_warns_and_still_succeeds(
    acr_emulator, tmp_path: Path, capsys, monkeypatch
) -> None:
    emu: AcrEmulator = acr_emulator
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", emu.endpoint)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", emu.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", emu.access_key_secret)
    repo = write_repo(tmp_path / "repo", LIST, SETTINGS)
    assert cli.main(["generate", "--repo", str(repo)]) == 0
    capsys.readouterr()
    assert cli.main(["acr", "plan", "--repo", str(repo)]) == 0
    out, err = capsys.readouterr()
    assert "build k8s_pause:3.9 (new repository)" in out, out + err
    assert "lists linux/" not in out  # data on stdout, the warning in the log
    assert "relay: warning: mirrors/images.yaml:2: registry.k8s.io/pause lists linux/arm64" in err
    assert "::warning" not in err  # annotations only under Actions
    assert emu.writes() == []

    # Dropping arm64 (or choosing the copy transport, which never runs this stage) ends it.
    (repo / "mirrors/images.yaml").write_text(
        LIST.replace("linux/amd64, linux/arm64", "linux/amd64")
    )
    assert cli.main(["acr", "plan", "--repo", str(repo)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_pull_requests_plan_warns_too(tmp_path: Path, capsys, monkeypatch) -> None:
    """`relay plan` (the pull request's check) is where the person adding `platforms:` looks: the
    warning is in its Warnings section and its JSON, from the list alone; not with `copy`."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    listed = "images:\n  - source: registry.k8s.io/pause\n    tags: ['3.9']\n"
    listed += "    platforms: [linux/amd64, linux/arm64]\n"
    lock = (
        '{"note": "generated by `relay lock`; do not edit by hand", "relayLock": 1}\n'
        f'{{"configs": {{"linux/amd64": "{DIGEST_B}"}}, "digest": "{DIGEST_A}", '
        '"mediaType": "application/vnd.oci.image.index.v1+json", '
        '"platforms": ["linux/amd64", "linux/arm64"], '
        '"source": "registry.k8s.io/pause", "tag": "3.9"}\n'
    )
    repo = write_repo(tmp_path / "repo", listed, SETTINGS, lock=lock)
    assert cli.main(["generate", "--repo", str(repo)]) == 0
    capsys.readouterr()
    assert cli.main(["plan", "--repo", str(repo), "--format", "markdown"]) == 0
    out, err = capsys.readouterr()
    line = "mirrors/images.yaml:2: registry.k8s.io/pause lists linux/arm64, which the build"
    assert "Warnings" in out and line in out, out + err
    assert cli.main(["plan", "--repo", str(repo), "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [w["line"] for w in doc["warnings"]] == [2], doc["warnings"]
    # The copy transport keeps every platform: nothing to warn about.
    (repo / "mirrors/relay.yaml").write_text(
        "transport: copy\ncopy: {registry: cr.example.com, namespace: mirrors}\n"
    )
    assert cli.main(["plan", "--repo", str(repo), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []
