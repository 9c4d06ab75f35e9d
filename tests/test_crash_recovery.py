"""What the chaos runs (relay.sandbox.chaos, tests/test_chaos.py) found, one focused test each:
a run that stops half-way (SIGKILL, or retries running out) must leave nothing the next run
cannot see and finish."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.commands import acr as commands
from tests.fixtures.acr_world import World, fast_settings
from tests.fixtures.harbor import HarborEmulator
from tests.test_harbor_stage import NS, relay, use, write_repo


@pytest.mark.parametrize("edition", ["personal", "enterprise"])
def test_a_repository_created_but_never_bound_is_bound_by_the_next_run(
    world: World, edition: str
) -> None:
    # The create lands, the binding never does (a kill between the two calls, or its retries
    # running out): the repository must not look bound to the next run.
    settings = fast_settings(edition=edition, instance_id=world.emu.instance_id)
    bind = "UpdateRepoSourceRepo" if edition == "personal" else "CreateRepoSourceCodeRepo"
    world.emu.inject("5xx", count=1000, action=bind)
    report, text = world.apply(settings=settings)
    assert not report.ok and len(world.emu.state.repos) == 2, text
    assert all(repo.source is None for repo in world.emu.state.repos.values())
    world.emu.server.faults.clear()
    mirror_list, lock = world.load()
    planned = [
        str(a) for a in commands.plan(world.repo, settings, mirror_list, lock, env=world.env)
    ]
    binds = [a for a in planned if a.startswith("bind source")]
    assert len(binds) == 2, planned


@pytest.mark.slow
def test_what_a_stopped_run_never_handed_over_reaches_harbor(
    harbor_emulator: HarborEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # bb and cc were built by a delivery that was killed before it wrote --delivered; the
    # re-run found them built and delivered only aa. The Harbor run must still bring them.
    h = use(harbor_emulator, monkeypatch)
    images = {name: h.seed_acr_repo(NS, name, ["v1"]) for name in ("aa", "bb", "cc")}
    registry = f'registry: "{h.registry.host}"\n'
    ca = f'registries: {{ca_bundles: {{"127.0.0.1": "{h.pki.ca_file}"}}}}\n'
    write_repo(tmp_path, h, images, harbor_extra=registry, top_extra=ca)
    repo = str(tmp_path)
    assert relay("harbor", "apply", "--repo", repo) == 0
    assert relay("harbor", "replicate", "--wait", "--only", "aa", "--repo", repo) == 0
    assert h.harbor_digest("mirror/bb", "v1") is None
    h.reset_calls()
    assert relay("harbor", "replicate", "--wait", "--missing", "--repo", repo) == 0
    for name in ("bb", "cc"):
        assert h.harbor_digest(f"mirror/{name}", "v1") == images[name]["v1"]
    assert h.openapi_calls["GetRepoTags"] == 2  # bb and cc: aa was there already
    # Everything is in Harbor: nothing runs.
    executions = len(h.server.state.executions)
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--missing", "--repo", repo) == 0
    assert "Harbor holds every listed image: nothing to replicate" in capsys.readouterr().out
    assert len(h.server.state.executions) == executions
    # Named and missing together: the union, once.
    h.reset_calls()
    assert relay("harbor", "replicate", "--wait", "--missing", "--only", "aa", "--repo", repo) == 0
    assert h.openapi_calls["GetRepoTags"] == 1
