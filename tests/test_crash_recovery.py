"""What the chaos runs (relay.sandbox.chaos, tests/test_chaos.py) found, one focused test each:
a run that stops half-way (SIGKILL, or retries running out) must leave nothing the next run
cannot see and finish."""

from __future__ import annotations

import pytest

from relay.commands import acr as commands
from tests.fixtures.acr_world import World, fast_settings


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
