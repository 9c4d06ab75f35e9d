"""The ACR stage end to end, against the ACR emulator (real signatures, real buildah builds).

The `world` fixture (tests/fixtures/acr_world.py) holds upstream images in a local registry and
the generated Dockerfiles in a local bare git repository standing in for GitHub.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from relay.commands import acr as commands
from relay.stages.acr.api import CallStats
from tests.fixtures.acr_world import GITHUB, NAMESPACE, World, fast_settings, statuses

pytestmark = [pytest.mark.buildah, pytest.mark.slow]


def test_first_apply_builds_everything_second_is_a_no_op(
    world: World, monkeypatch, tmp_path
) -> None:  # noqa: ANN001
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    report, text = world.apply()
    assert report.ok, text
    assert statuses(report) == {
        "k8s_pause:3.9": "SUCCESS",
        "k8s_pause:3.10": "SUCCESS",
        "quay_org_app:1.0": "SUCCESS",
    }
    assert all(r.build_id and r.duration is not None for r in report.rows)
    assert "create namespace relay-test" in text and "create repo k8s_pause" in text
    assert "k8s_pause:3.10" in summary.read_text() and "relay acr apply: ok" in summary.read_text()
    # Every repository bound as wanted, manual builds, marked as relay's.
    for name in ("k8s_pause", "quay_org_app"):
        repo = world.emu.state.repos[("personal", NAMESPACE, name)]
        assert repo.source is not None
        assert (repo.source.owner_repo, repo.source.oversea, repo.source.disable_cache) == (
            GITHUB,
            True,
            True,
        )
        assert not repo.source.auto_build and repo.repo_build_type == "MANUAL"
        assert "managed-by: relay" in repo.summary
        assert {r.dockerfile_location for r in repo.rules.values()} <= {
            f"/mirrors/dockerfiles/{name}/{t}/" for t in ("3.9", "3.10", "1.0")
        }
    # ACR holds upstream's images: same config, same layers.
    for source, name, tag in [
        ("registry.k8s.io/pause", "k8s_pause", "3.9"),
        ("registry.k8s.io/pause", "k8s_pause", "3.10"),
        ("quay.io/org/app", "quay_org_app", "1.0"),
    ]:
        assert world.acr_image(name, tag) == world.upstream_image(source, tag)

    world.emu.reset_calls()
    builds_before = len(world.emu.state.builds)
    again, text = world.apply()
    assert again.ok and again.rows == [] and again.up_to_date == 3, text
    assert world.emu.writes() == []
    assert len(world.emu.state.builds) == builds_before
    # One tag read per repository, plus the list pages.
    reads = [c.action for c in world.emu.reads()]
    assert sorted(reads) == [
        "GetNamespaceList",
        "GetRepoListByNamespace",
        "GetRepoTags",
        "GetRepoTags",
    ]
    assert "0 writes" in text


def test_plan_writes_nothing(world: World) -> None:
    mirror_list, lock = world.load()
    actions = commands.plan(world.repo, world.settings, mirror_list, lock, env=world.env)
    assert [str(a) for a in actions][:3] == [
        "create namespace relay-test",
        "create repo k8s_pause (registry.k8s.io/pause)",
        "create repo quay_org_app (quay.io/org/app)",
    ]
    assert "build k8s_pause:3.10 (new repository)" in [str(a) for a in actions]
    assert world.emu.writes() == []


def test_changed_digest_rebuilds_exactly_that_tag(world: World) -> None:
    assert world.apply()[0].ok
    world.push("registry.k8s.io/pause", "3.9", "docker", seed="moved")
    world.publish()
    world.emu.reset_calls()
    report, text = world.apply()
    assert report.ok, text
    assert statuses(report) == {"k8s_pause:3.9": "SUCCESS"}
    assert "differs from upstream" in report.rows[0].note
    starts = [c for c in world.emu.writes() if c.action == "StartRepoBuildByRule"]
    assert len(starts) == 1
    assert world.acr_image("k8s_pause", "3.9") == world.upstream_image(
        "registry.k8s.io/pause", "3.9"
    )


@pytest.mark.parametrize("setting", [2, 3], ids=["setting-matches", "setting-too-high"])
def test_rule_limit_forces_reuse_and_every_tag_is_built(world: World, setting: int) -> None:
    tags = ["a1", "a2", "a3", "a4", "a5"]
    for i, tag in enumerate(tags):
        world.push("quay.io/org/many", tag, "docker", seed=f"many-{i}")
    world.entries = [("quay.io/org/many", tags)]
    world.publish()
    # ACR allows 2 rules. With the setting at 3 the third rule is refused and relay falls back
    # to reusing one, as it plans to from the start when the setting is right.
    world.emu.set_limits(rules_per_repo=2)
    report, text = world.apply(settings=replace(world.settings, rules_per_repo=setting))
    assert report.ok, text
    assert set(statuses(report).values()) == {"SUCCESS"} and len(report.rows) == 5
    repo = world.emu.state.repos[("personal", NAMESPACE, "quay_org_many")]
    assert len(repo.rules) == 2
    for tag in tags:
        assert world.acr_image("quay_org_many", tag) == world.upstream_image(
            "quay.io/org/many", tag
        )
    assert world.apply()[0].rows == []


def test_throttling_and_5xx_are_survived(world: World) -> None:
    world.emu.inject("throttling", count=2)
    world.emu.inject("5xx", count=2, action="CreateRepo")
    world.emu.inject("5xx-after", count=1, action="CreateNamespace")
    world.emu.inject("throttling", count=3, action="GetRepoBuildStatus", status=429)
    # Writes whose answer is lost after they happened must not happen twice.
    world.emu.inject("5xx-after", count=1, action="CreateRepoBuildRule")
    world.emu.inject("5xx-after", count=1, action="StartRepoBuildByRule")
    stats = CallStats()
    report, text = world.apply(stats=stats)
    assert report.ok, text
    assert stats.retries >= 10
    assert len(world.emu.state.repos) == 2
    assert sorted(b.image_tag for b in world.emu.state.builds.values()) == ["1.0", "3.10", "3.9"]
    assert sum(len(r.rules) for r in world.emu.state.repos.values()) == 3


def test_build_failure_is_reported_against_its_tag(world: World) -> None:
    # A lock digest upstream does not have: that build's FROM cannot be pulled.
    world.push("quay.io/org/app", "2.0", "oci")
    world.entries = [("registry.k8s.io/pause", ["3.9"]), ("quay.io/org/app", ["1.0", "2.0"])]
    missing = replace(world.pushed["quay.io/org/app"]["2.0"], digest="sha256:" + "e" * 64)
    world.pushed["quay.io/org/app"]["2.0"] = missing
    world.publish()
    report, text = world.apply()
    assert not report.ok
    assert statuses(report) == {
        "k8s_pause:3.9": "SUCCESS",
        "quay_org_app:1.0": "SUCCESS",
        "quay_org_app:2.0": "FAILED",
    }
    assert "FAILED" in text and "1 failed" in text


def test_concurrency_limit_and_crash_rerun(world: World) -> None:
    world.emu.set_limits(concurrent_builds=1)
    world.emu.build_settings.pending_seconds = 0.5
    # Start without waiting, as if the run crashed after starting the builds.
    first, text = world.apply(wait=False, settings=replace(world.settings, max_concurrent_builds=3))
    assert first.ok, text
    assert sorted(statuses(first).values()) == ["QUEUED", "QUEUED", "STARTED"]
    # The re-run waits for the running build instead of starting it again, then does the rest.
    report, text = world.apply(settings=replace(world.settings, max_concurrent_builds=3))
    assert report.ok, text
    assert [r.action for r in report.rows].count("wait") == 1
    assert set(statuses(report).values()) == {"SUCCESS"}
    per_tag: dict[str, int] = {}
    for build in world.emu.state.builds.values():
        per_tag[build.image_tag] = per_tag.get(build.image_tag, 0) + 1
    assert per_tag == {"3.9": 1, "3.10": 1, "1.0": 1}


def test_secrets_never_appear(world: World, capsys, caplog, monkeypatch) -> None:  # noqa: ANN001
    secret = world.emu.access_key_secret
    monkeypatch.setenv("DEBUG", "sdk")  # the SDK's own request/response dump
    caplog.set_level(logging.DEBUG)
    world.emu.inject("throttling", count=2)
    world.emu.inject("5xx", count=1)
    report, text = world.apply()
    assert report.ok
    # And a failing run: a wrong secret.
    env = world.env | {"ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret[::-1]}
    mirror_list, lock = world.load()
    with pytest.raises(Exception) as info:
        commands.plan(world.repo, world.settings, mirror_list, lock, env=env)
    captured = capsys.readouterr()
    everything = "\n".join(
        [text, captured.out, captured.err, caplog.text, str(info.value), repr(info.value)]
    )
    assert secret not in everything and secret[::-1] not in everything
    assert "InvalidAccessKeySecret" in str(info.value) or "Signature" in str(info.value)


def test_enterprise_edition(world: World) -> None:
    world.entries = [("registry.k8s.io/pause", ["3.10"]), ("quay.io/org/app", ["1.0"])]
    world.platforms = {"registry.k8s.io/pause": ["linux/amd64", "linux/arm64"]}
    world.publish()
    settings = fast_settings(edition="enterprise", instance_id=world.emu.instance_id)
    report, text = world.apply(settings=settings)
    assert report.ok, text
    assert statuses(report) == {"k8s_pause:3.10": "SUCCESS", "quay_org_app:1.0": "SUCCESS"}
    repo = world.emu.state.repos[("enterprise", NAMESPACE, "k8s_pause")]
    assert repo.source is not None and repo.source.oversea and repo.source.disable_cache
    assert [r.platforms for r in repo.rules.values()] == [["linux/amd64", "linux/arm64"]]
    assert world.acr_image("k8s_pause", "3.10") == world.upstream_image(
        "registry.k8s.io/pause", "3.10"
    )
    world.emu.reset_calls()
    again, text = world.apply(settings=settings)
    assert again.rows == [] and world.emu.writes() == [], text
    assert len(world.emu.reads()) == 4  # ListNamespace, ListRepository, 2 x ListRepoTag
