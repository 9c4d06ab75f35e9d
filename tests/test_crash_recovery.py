"""What the chaos runs (relay.sandbox.chaos, tests/test_chaos.py) found, one focused test each:
a run that stops half-way (SIGKILL, or retries running out) must leave nothing the next run
cannot see and finish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.commands import acr as commands
from relay.config import lockfile, mirrors
from relay.config.lockfile import Lock, LockedTag
from relay.stages.acr import apply as applier
from relay.stages.acr import plan as planner
from relay.stages.acr.api import AcrClient
from relay.stages.acr.connect import connect
from relay.stages.acr.settings import Credentials
from relay.stages.acr.state import Binding, Observed, RepoInfo, RuleSpec
from tests.fixtures.acr import AcrEmulator
from tests.fixtures.acr_world import NAMESPACE, World, fast_settings
from tests.fixtures.harbor import HarborEmulator
from tests.test_harbor_stage import NS, relay, use, write_repo

from .helpers import DIGEST_A

INDEX = "application/vnd.oci.image.index.v1+json"


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
    assert relay("harbor", "replicate", "--missing", "-o", "json", "--repo", repo) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["executionId"], doc["missing"]) == (True, None, [])
    assert len(h.server.state.executions) == executions
    # Named and missing together: the union, once.
    h.reset_calls()
    assert relay("harbor", "replicate", "--wait", "--missing", "--only", "aa", "--repo", repo) == 0
    assert h.openapi_calls["GetRepoTags"] == 1


@pytest.mark.parametrize("edition", ["personal", "enterprise"])
def test_a_new_repository_is_marked_bound_only_after_the_bind(
    acr_emulator: AcrEmulator, edition: str
) -> None:
    # What apply does for create-repo: create marked as relay's but unbound, bind, then mark.
    settings = fast_settings(edition=edition, instance_id=acr_emulator.instance_id)
    wanted = planner.desired(*_one_entry(), settings)[0]
    creds = Credentials(acr_emulator.access_key_id, acr_emulator.access_key_secret)
    client = connect(settings, creds, env={"RELAY_ACR_ENDPOINT": acr_emulator.endpoint})
    client.create_namespace(NAMESPACE)
    observed = Observed(NAMESPACE, True, 1, {})
    plan = planner.plan([wanted], observed, settings)
    report = applier.run(client, plan, [wanted], observed, settings, wait=False, timeout=5)
    assert report.errors == [], report.errors
    [repo] = acr_emulator.state.repos.values()
    assert repo.summary == wanted.summary and repo.source is not None
    writes = [c.action for c in acr_emulator.writes()]
    bind = "UpdateRepoSourceRepo" if edition == "personal" else "CreateRepoSourceCodeRepo"
    mark = "UpdateRepo" if edition == "personal" else "UpdateRepository"
    assert writes.index(bind) < writes.index(mark), writes


def _bound_repo(acr_emulator: AcrEmulator, edition: str) -> tuple[AcrClient, RepoInfo]:
    """A client of the edition and one repository "app", relay's and bound, in NAMESPACE."""
    settings = fast_settings(edition=edition, instance_id=acr_emulator.instance_id)
    creds = Credentials(acr_emulator.access_key_id, acr_emulator.access_key_secret)
    client = connect(settings, creds, env={"RELAY_ACR_ENDPOINT": acr_emulator.endpoint})
    client.create_namespace(NAMESPACE)
    repo = client.create_repo(
        NAMESPACE, "app", summary="managed-by: relay", detail="", binding=Binding("octo", "app")
    )
    return client, repo


@pytest.mark.parametrize("edition", ["personal", "enterprise"])
def test_an_answer_lost_after_a_rule_or_build_was_made_makes_no_second_one(
    acr_emulator: AcrEmulator, edition: str
) -> None:
    # The server made the rule, then the connection broke before the answer came back (a
    # reset, a load balancer's idle timeout): the request may have landed, so it is not sent
    # again before looking.
    client, repo = _bound_repo(acr_emulator, edition)
    spec = RuleSpec("1.0", "/mirrors/dockerfiles/app/1.0/", "main")
    acr_emulator.inject("reset-after", count=1, action="CreateRepoBuildRule")
    acr_emulator.inject("reset-after", count=1, action="CreateRepoBuildRule")
    client.create_rule(repo, spec)
    rules = [r for (_, _, name), found in _repos(acr_emulator) if name == "app" for r in found]
    assert len(rules) == 1, rules


def _repos(emu: AcrEmulator) -> list[tuple[tuple[str, str, str], list[object]]]:
    return [(key, list(repo.rules.values())) for key, repo in emu.state.repos.items()]


@pytest.mark.parametrize("edition", ["personal", "enterprise"])
def test_a_start_whose_answer_was_lost_is_found_even_when_its_build_already_ended(
    acr_emulator: AcrEmulator, edition: str
) -> None:
    # The start landed and its build ended (here: at once, no git remote to clone) before
    # relay looked: a build of the tag that was not there before is this start's.
    client, repo = _bound_repo(acr_emulator, edition)
    rule = client.create_rule(repo, RuleSpec("1.0", "/mirrors/dockerfiles/app/1.0/", "main"))
    assert rule is not None
    start = "StartRepoBuildByRule" if edition == "personal" else "CreateBuildRecordByRule"
    listing = "GetRepoBuildList" if edition == "personal" else "ListRepoBuildRecord"
    acr_emulator.inject("reset-after", count=1, action=start)
    acr_emulator.inject("latency", count=1, action=listing, seconds=1.0)
    build_id = client.start_build(repo, rule, "1.0", known=frozenset())
    builds = list(acr_emulator.state.builds.values())
    assert len(builds) == 1 and build_id in (None, builds[0].build_id), builds


def test_a_lock_write_killed_half_way_leaves_nothing_the_next_run_keeps(tmp_path: Path) -> None:
    # `relay lock` killed between creating its temporary file and renaming it over the lock
    # leaves `.images.lock.relay-<pid>.tmp` beside it, empty or half written. The next write
    # (changed or not) removes it; the lock itself is never half written.
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    locked = Lock()
    locked.put("quay.io/org/app", "1.0", LockedTag(DIGEST_A, INDEX))
    assert lockfile.write(tmp_path, locked)
    strays = [mirrors / ".images.lock.relay-4242.tmp", mirrors / ".images.lock.relay-7.tmp"]
    strays[0].write_text('{"relayLock": 1')
    strays[1].touch()
    keep = mirrors / ".images.yaml.relay-4242.tmp"  # not the lock's: not lock's to remove
    keep.touch()
    assert not lockfile.write(tmp_path, locked)  # unchanged, and still tidied
    assert not any(p.exists() for p in strays) and keep.exists()
    assert lockfile.read(tmp_path) == locked


def _one_entry() -> tuple[mirrors.MirrorList, Lock]:
    text = "images:\n  - source: quay.io/org/app\n    tags: ['1.0']\n"
    listed = mirrors.parse(text, "mirrors/images.yaml")
    locked = Lock()
    locked.put("quay.io/org/app", "1.0", LockedTag(DIGEST_A, INDEX))
    return listed, locked
