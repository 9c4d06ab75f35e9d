"""The Harbor stage (`relay harbor plan | apply | replicate`) against the Harbor emulator, which
validates every body against Harbor's swagger (unknown fields refused) and really replicates
from the ACR stand-in into a Harbor stand-in registry."""

from __future__ import annotations

import base64
import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from relay import cli
from relay.sandbox.harbor import Quirks
from tests import helpers
from tests.fixtures.harbor import HarborEmulator, HarborFactory, robot
from tests.fixtures.skopeo import docker_ref

pytestmark = pytest.mark.slow

NS = "myns"


def relay(*args: str) -> int:
    return cli.main(list(args))


def write_repo(
    repo: Path,
    h: HarborEmulator,
    images: dict[str, dict[str, str]],
    *,
    harbor_extra: str = "",
    top_extra: str = "",
) -> None:
    """A relay repository whose entries are the seeded ACR repositories (inline pins)."""
    (repo / "mirrors").mkdir(parents=True, exist_ok=True)
    lines = ["images:"]
    for name, digests in images.items():
        lines.append(f"  - source: quay.io/org/{name}")
        lines.append(f"    name: {name}")
        pins = ", ".join(f'"{t}@{d}"' for t, d in digests.items())
        lines.append(f"    tags: [{pins}]")
    (repo / "mirrors/images.yaml").write_text("\n".join(lines) + "\n")
    (repo / "mirrors/relay.yaml").write_text(
        textwrap.dedent(
            f"""\
            acr:
              namespace: {NS}
              source: {{github: octo/relay}}
            harbor:
              url: {h.url}
              project: mirror
              schedule: "0 7 * * * *"
              poll: {{interval: 0.05, max_interval: 0.3, timeout: 90, settle: 0.3}}
              retry: {{attempts: 4, backoff: 0.01, max_backoff: 0.05}}
            """
        )
        + textwrap.indent(textwrap.dedent(harbor_extra), "  ")
        + top_extra
    )


def use(h: HarborEmulator, monkeypatch: pytest.MonkeyPatch) -> HarborEmulator:
    """Point relay's environment at ``h``: its admin login and ACR's AccessKey."""
    monkeypatch.setenv("HARBOR_USERNAME", "admin")
    monkeypatch.setenv("HARBOR_PASSWORD", h.admin_password)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_ID", h.acr.access_key_id)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", h.acr.access_key_secret)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    return h


@pytest.fixture
def env(harbor_emulator: HarborEmulator, monkeypatch: pytest.MonkeyPatch) -> HarborEmulator:
    return use(harbor_emulator, monkeypatch)


def policy(h: HarborEmulator, name: str) -> dict:
    s = h.session()
    [found] = [p for p in s.get(h.api + "/replication/policies").json() if p["name"] == name]
    return s.get(h.api + f"/replication/policies/{found['id']}").json()


# --- apply ----------------------------------------------------------------------------------------


def test_first_apply_creates_everything_and_the_second_writes_nothing(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "plan", "--repo", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "create endpoint relay-acr: ali-acr, https://registry.cn-hangzhou.aliyuncs.com" in out
    assert "create project mirror: private" in out
    assert f"create policy relay-{NS}: pull {NS}/** into mirror, schedule 0 7 * * * *" in out
    assert f"create policy relay-{NS}-now" in out
    assert h.writes() == []

    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert [c.action for c in h.writes()] == [
        "createRegistry",
        "createProject",
        "createReplicationPolicy",
        "createReplicationPolicy",
    ]
    made = policy(h, f"relay-{NS}")
    assert made["trigger"] == {"type": "scheduled", "trigger_settings": {"cron": "0 7 * * * *"}}
    assert made["dest_namespace"] == "mirror" and made["dest_namespace_replace_count"] == 1
    assert made["filters"] == [{"type": "name", "value": f"{NS}/**"}]
    assert "managed-by: relay" in made["description"]
    project = h.session().get(h.api + "/projects/mirror").json()
    assert project["metadata"]["public"] == "false"

    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert h.writes() == []
    assert "0 change(s), 0 write(s)" in capsys.readouterr().out
    assert relay("harbor", "plan", "--repo", str(tmp_path)) == 0
    assert "Harbor is up to date: nothing to do" in capsys.readouterr().out


def test_a_policy_edited_in_the_ui_is_restored(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    edited = policy(h, f"relay-{NS}")
    edited["trigger"]["trigger_settings"]["cron"] = "0 30 2 * * *"
    edited["filters"] = [{"type": "name", "value": "other/**"}]
    edited["dest_namespace"] = "elsewhere"
    edited.pop("creation_time", None), edited.pop("update_time", None)
    body = {k: edited[k] for k in edited if k not in ("id", "dest_registry", "creator")}
    body["src_registry"] = {"id": edited["src_registry"]["id"]}
    resp = h.session().put(h.api + f"/replication/policies/{edited['id']}", json=body)
    assert resp.status_code == 200, resp.text
    capsys.readouterr()

    assert relay("harbor", "plan", "--repo", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert f"update policy relay-{NS}:" in out
    assert "schedule scheduled 0 30 2 * * * -> scheduled 0 7 * * * *" in out
    assert "destination project elsewhere -> mirror" in out
    assert f"filters name:other/** -> name:{NS}/**" in out
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert [c.action for c in h.writes()] == ["updateReplicationPolicy"]
    restored = policy(h, f"relay-{NS}")
    assert restored["dest_namespace"] == "mirror"
    assert restored["trigger"]["trigger_settings"]["cron"] == "0 7 * * * *"


def test_an_unmanaged_policy_of_the_same_name_is_refused_not_taken_over(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    s = h.session()
    registry = s.post(h.api + "/registries", json=h.acr_registry_body("theirs"))
    assert registry.status_code == 201
    theirs = {
        "name": f"relay-{NS}",
        "description": "made by hand",
        "src_registry": {"id": int(registry.headers["Location"].rsplit("/", 1)[1])},
        "dest_namespace": "manual",
        "dest_namespace_replace_count": 1,
        "filters": [{"type": "name", "value": "x/**"}],
        "trigger": {"type": "manual"},
        "enabled": True,
    }
    assert s.post(h.api + "/replication/policies", json=theirs).status_code == 201
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"replication policy relay-{NS} exists in Harbor without 'managed-by: relay'" in err
    assert h.writes() == []
    assert policy(h, f"relay-{NS}")["description"] == "made by hand"


def test_an_endpoint_of_another_type_is_refused_as_harbor_cannot_change_it(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    [endpoint] = h.state.registries.values()
    endpoint.type = "docker-registry"  # as if made by hand with relay's mark
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "registry endpoint relay-acr is of type docker-registry, not ali-acr" in err
    assert "delete the endpoint in Harbor, or set harbor.registry_name" in err
    assert h.writes() == []


def test_a_wrong_access_key_says_what_unhealthy_means(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", "not-the-secret-at-all")
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "HTTP 400 BAD_REQUEST: the registry is unhealthy" in err
    assert "the AccessKey is wrong" in err and "USER_NOT_EXIST" in err
    assert "not-the-secret-at-all" not in err


def test_no_cookie_is_kept_so_the_csrf_trap_never_springs(
    harbor_factory: HarborFactory, tmp_path: Path, monkeypatch
) -> None:
    h = harbor_factory(quirks=Quirks(sid_cookie="always"))
    use(h, monkeypatch)
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    # The emulator sets `sid` on every answer and refuses cookie-carrying writes: a client
    # that kept it would fail at the first POST after a GET.
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert len(h.writes()) == 4 and all(c.status < 400 for c in h.writes())


@pytest.mark.parametrize(
    ("version", "sent", "absent"),
    [
        ("v2.6.2", {"speed"}, {"copy_by_chunk", "single_active_replication"}),
        ("v2.12.0", {"speed", "copy_by_chunk"}, {"single_active_replication"}),
        ("v2.15.2", {"speed", "copy_by_chunk", "single_active_replication"}, set()),
    ],
)
def test_fields_are_sent_only_to_harbors_that_know_them(
    harbor_factory: HarborFactory,
    tmp_path: Path,
    monkeypatch,
    version: str,
    sent: set[str],
    absent: set[str],
) -> None:
    h = harbor_factory(version=version)  # strict: a field newer than the version is a 422
    use(h, monkeypatch)
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    [body, *_] = [c.body for c in h.writes() if c.action == "createReplicationPolicy"]
    assert sent <= set(body) and not absent & set(body)
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert h.writes() == []


def test_a_harbor_older_than_relay_supports_is_named(
    harbor_factory: HarborFactory, tmp_path: Path, monkeypatch, capsys
) -> None:
    h = harbor_factory(version="v2.2.4")
    monkeypatch.setenv("HARBOR_USERNAME", "admin")
    monkeypatch.setenv("HARBOR_PASSWORD", h.admin_password)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", "secret")
    write_repo(tmp_path, h, {"app": {"v1": "sha256:" + "a" * 64}})
    assert relay("harbor", "plan", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "is v2.2.4; relay needs v2.3.0 or newer" in err
    assert h.writes() == []


def test_a_robot_account_works_and_a_robot_without_rights_is_told_which(
    harbor_factory: HarborFactory, tmp_path: Path, monkeypatch, capsys
) -> None:
    full = robot("relay")
    weak = robot("weak", [("registry", "list"), ("registry", "read")])
    h = harbor_factory(robots=[full, weak])
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_ID", h.acr.access_key_id)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", h.acr.access_key_secret)
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    monkeypatch.setenv("HARBOR_USERNAME", "robot$weak")
    monkeypatch.setenv("HARBOR_PASSWORD", weak.secret)
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "HTTP 403" in err and "robot$weak lacks a permission" in err
    monkeypatch.setenv("HARBOR_USERNAME", "robot$relay")
    monkeypatch.setenv("HARBOR_PASSWORD", full.secret)
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0


# The system permissions the README's one-time setup asks for, and nothing more.
README_PERMISSIONS = (
    [("registry", a) for a in ("list", "read", "create", "update")]
    + [("replication-policy", a) for a in ("list", "read", "create", "update", "delete")]
    + [("replication", a) for a in ("list", "read", "create")]
    + [("project", a) for a in ("list", "create")]
)


def test_a_robot_with_the_readmes_permissions_plans_applies_and_replicates(
    harbor_factory: HarborFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = robot("relay", README_PERMISSIONS)
    h = harbor_factory(robots=[bot])
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_ID", h.acr.access_key_id)
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", h.acr.access_key_secret)
    monkeypatch.setenv("HARBOR_USERNAME", bot.username)
    monkeypatch.setenv("HARBOR_PASSWORD", bot.secret)
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0  # finds the project it made
    assert h.writes() == []
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 0


def test_throttling_5xx_and_a_create_that_landed_are_survived(
    env: HarborEmulator, tmp_path: Path
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    h.inject("throttling", 2, retry_after=0.01)
    h.inject("5xx", 1, action="createProject", status=502)
    # The policy is created, then the answer is a 500: the retry meets a 409 and reads it back.
    h.inject("5xx-after", 1, action="createReplicationPolicy")
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    names = [p["name"] for p in h.session().get(h.api + "/replication/policies").json()]
    assert sorted(names) == [f"relay-{NS}", f"relay-{NS}-now"]
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert h.writes() == []


def test_prune_removes_only_what_relay_made(env: HarborEmulator, tmp_path: Path) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    s = h.session()
    s.post(h.api + "/registries", json=h.acr_registry_body("by-hand"))
    (tmp_path / "mirrors/relay.yaml").write_text(
        (tmp_path / "mirrors/relay.yaml")
        .read_text()
        .replace("project: mirror", "project: mirror\n  policy_name: relay-renamed")
    )
    assert relay("harbor", "apply", "--repo", str(tmp_path), "--prune") == 0
    names = sorted(p["name"] for p in s.get(h.api + "/replication/policies").json())
    assert names == ["relay-renamed", "relay-renamed-now"]
    registries = sorted(r["name"] for r in s.get(h.api + "/registries").json())
    assert registries == ["by-hand", "relay-acr"]


def other_configuration(repo: Path, h: HarborEmulator, *, registry_name: str = "") -> Path:
    """A second configuration in the same Harbor: another ACR namespace, another project."""
    images = {"app": h.seed_acr_repo("otherns", "app", ["v1"])}
    write_repo(
        repo, h, images, harbor_extra=f"registry_name: {registry_name}\n" * bool(registry_name)
    )
    settings = repo / "mirrors/relay.yaml"
    text = settings.read_text().replace(f"namespace: {NS}", "namespace: otherns")
    settings.write_text(text.replace("project: mirror", "project: other"))
    return repo


def test_two_configurations_sharing_a_harbor_leave_each_others_objects_alone(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    mine = tmp_path / "mine"
    write_repo(mine, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(mine)) == 0
    assert f"(owner: {NS} -> mirror)" in policy(h, f"relay-{NS}")["description"]
    endpoint = h.session().get(h.api + "/registries").json()[0]
    # The other configuration keeps the default endpoint name: it must not rewrite mine.
    theirs = other_configuration(tmp_path / "theirs", h)
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "apply", "--repo", str(theirs)) == 1
    err = capsys.readouterr().err
    assert (
        f"registry endpoint relay-acr belongs to another relay configuration (owner: {NS} -> "
        "mirror; this one is otherns -> other)" in err
    )
    assert h.writes() == []
    assert h.session().get(h.api + "/registries").json()[0] == endpoint
    # With an endpoint of its own, its --prune removes nothing of mine.
    theirs = other_configuration(tmp_path / "theirs", h, registry_name="relay-acr-other")
    assert relay("harbor", "apply", "--prune", "--repo", str(theirs)) == 0
    assert not [c for c in h.writes() if c.action.startswith("delete")]
    s = h.session()
    assert sorted(p["name"] for p in s.get(h.api + "/replication/policies").json()) == [
        f"relay-{NS}",
        f"relay-{NS}-now",
        "relay-otherns",
        "relay-otherns-now",
    ]
    assert sorted(r["name"] for r in s.get(h.api + "/registries").json()) == [
        "relay-acr",
        "relay-acr-other",
    ]
    h.reset_calls()
    assert relay("harbor", "apply", "--prune", "--repo", str(mine)) == 0
    assert h.writes() == []


def _as_put_body(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy as read, less the fields Harbor sets itself: a body to PUT back."""
    return {
        k: v
        for k, v in policy.items()
        if k not in ("id", "dest_registry", "creation_time", "update_time")
    }


def test_objects_with_the_old_bare_mark_are_adopted_by_name_only(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    s = h.session()
    old = policy(h, f"relay-{NS}")
    body = _as_put_body(old)
    body["description"] = "managed-by: relay: pulls, as an older relay wrote it"
    assert s.put(h.api + f"/replication/policies/{old['id']}", json=body).status_code == 200
    stray = {**body, "name": "relay-stray"}
    assert s.post(h.api + "/replication/policies", json=stray).status_code == 201
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "apply", "--prune", "--repo", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert [c.action for c in h.writes()] == ["updateReplicationPolicy"]  # adopted, not pruned
    assert f"(owner: {NS} -> mirror)" in policy(h, f"relay-{NS}")["description"]
    assert "policy relay-stray carries relay's old mark without an owner; --prune leaves it" in out
    h.reset_calls()
    assert relay("harbor", "apply", "--prune", "--repo", str(tmp_path)) == 0
    assert h.writes() == []


# --- replicate --------------------------------------------------------------------------------------


def test_replicate_waits_and_the_images_are_in_harbor(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], skopeo
) -> None:
    h = env
    digests = h.seed_acr_repo(NS, "app", ["v1", "v2"])
    write_repo(tmp_path, h, {"app": digests})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "`mirror/app`" not in out  # the text table has no Markdown
    assert "mirror/app" in out and "v1, v2" in out and "Succeed" in out
    assert "1 task(s): 1 succeeded, 0 failed" in out
    for tag, digest in digests.items():
        assert skopeo.digest(f"mirror/app:{tag}", h.registry) == digest


def test_the_fast_path_reads_the_tags_of_the_named_repositories_only(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], skopeo
) -> None:
    h = env
    images = {name: h.seed_acr_repo(NS, name, ["v1"]) for name in ("aa", "bb", "cc", "dd")}
    write_repo(tmp_path, h, images)
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    h.reset_calls()
    assert (
        relay("harbor", "replicate", "--wait", "--only", "bb", "cc", "--repo", str(tmp_path)) == 0
    )
    assert h.openapi_calls["GetRepoTags"] == 2
    assert skopeo.digest("mirror/bb:v1", h.registry) == images["bb"]["v1"]
    assert h.harbor_digest("mirror/aa", "v1") is None
    fast = policy(h, f"relay-{NS}-now")
    assert {"type": "name", "value": f"{NS}/{{bb,cc}}"} in fast["filters"]
    # The fast path's filters belong to replicate: apply leaves them alone.
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert h.writes() == []
    capsys.readouterr()
    assert relay("harbor", "replicate", "--only", "zz", "--repo", str(tmp_path)) == 2
    assert "--only: zz not in mirrors/images.yaml" in capsys.readouterr().err


def test_many_names_are_replicated_in_batches_harbor_can_store(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    names = [f"a-rather-long-repository-name-for-batching-{i:02d}" for i in range(24)]
    images = {name: h.seed_acr_repo(NS, name, ["v1"]) for name in names}
    write_repo(tmp_path, h, images)
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--only", *names, "--repo", str(tmp_path)) == 0
    out = capsys.readouterr().out
    points = [c for c in h.writes() if c.action == "updateReplicationPolicy"]
    assert len(points) == 2 and all(c.status == 200 for c in points)
    assert "24 task(s): 24 succeeded, 0 failed" in out
    for name in names:
        assert h.harbor_digest(f"mirror/{name}", "v1") == images[name]["v1"]


def start_a_slow_execution(h: HarborEmulator, name: str, seconds: float = 3.0) -> int:
    """Start policy ``name`` by hand, its ACR listing held for ``seconds``."""
    h.acr.inject("latency", count=1, action="GetRepoListByNamespace", seconds=seconds)
    resp = h.session().post(
        h.api + "/replication/executions", json={"policy_id": policy(h, name)["id"]}
    )
    assert resp.status_code == 201
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def waited_for_running(h: HarborEmulator) -> bool:
    return any(
        c.action == "listReplicationExecutions" and c.query.get("status") == "InProgress"
        for c in h.calls
    )


def test_a_start_while_another_execution_runs_is_told_not_failed(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    running = start_a_slow_execution(h, f"relay-{NS}")
    # Without --wait relay waits for nothing; Harbor skips the start, and relay says why.
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "replicate", "--repo", str(tmp_path)) == 1
    out, err = capsys.readouterr()
    assert "skipped: another replication of the policy is running; retry later" in err
    assert "ended Failed" not in err and "skipped" in out
    assert not waited_for_running(h)
    # With --wait and a deadline before the running one ends: nothing is started.
    h.reset_calls()
    assert relay("harbor", "replicate", "--wait", "--timeout", "0.5", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "not started: another replication of it was still running at the deadline" in err
    assert not [c for c in h.writes() if c.action == "startReplication"]
    # With time enough, relay waits for it and then runs.
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 0
    assert h.wait_execution(running).id == running


def test_before_2_14_a_start_waits_for_nothing(
    harbor_factory: HarborFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = use(harbor_factory(version="v2.13.2"), monkeypatch)
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    start_a_slow_execution(h, f"relay-{NS}", seconds=1.0)
    h.reset_calls()
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 0
    assert not waited_for_running(h)  # Harbor < 2.14 runs executions side by side


def test_the_fast_path_writes_only_to_this_configurations_policy_and_endpoint(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    s = h.session()
    fast = policy(h, f"relay-{NS}-now")
    body = _as_put_body(fast)
    assert s.put(
        h.api + f"/replication/policies/{fast['id']}", json={**body, "description": "by hand"}
    ).ok
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "replicate", "--only", "app", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert f"replication policy relay-{NS}-now exists in Harbor without 'managed-by: relay'" in err
    assert h.writes() == []
    assert s.put(h.api + f"/replication/policies/{fast['id']}", json=body).ok
    [endpoint] = s.get(h.api + "/registries").json()
    theirs = "managed-by: relay (owner: theirs -> elsewhere)"
    assert s.put(h.api + f"/registries/{endpoint['id']}", json={"description": theirs}).ok
    h.reset_calls()
    assert relay("harbor", "replicate", "--only", "app", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "registry endpoint relay-acr belongs to another relay configuration" in err
    assert h.writes() == []


def test_names_asked_for_that_get_no_task_are_named(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    images = {"app": h.seed_acr_repo(NS, "app", ["v1"]), "ghost": {"v1": "sha256:" + "b" * 64}}
    write_repo(tmp_path, h, images)  # ghost is listed, but ACR never built it
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    capsys.readouterr()
    only = ("harbor", "replicate", "--wait", "--repo", str(tmp_path), "--only")
    assert relay(*only, "app", "ghost") == 1
    out, err = capsys.readouterr()
    assert f"Harbor made no task for ghost, asked for by name: it is not in {NS}" in err
    assert "no task for ghost" in out
    assert h.harbor_digest("mirror/app", "v1") == images["app"]["v1"]
    assert relay(*only, "ghost") == 1  # Succeed, "no resources need to be replicated"
    assert "Harbor made no task for ghost" in capsys.readouterr().err
    assert relay(*only, "app") == 0


def test_a_failure_before_any_task_shows_status_text(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    h.acr.server._access_keys.clear()  # the AccessKey is revoked after the endpoint was saved
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 1
    out, err = capsys.readouterr()
    assert "Harbor: failed to fetch artifacts" in out
    assert "ended Failed" in err


def test_a_failed_task_surfaces_the_tail_of_its_log(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    h.registry.stop()  # Harbor's own registry is down: every copy fails
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "Failed" in out
    assert "--- last lines of the log of mirror/app:" in out


def test_a_mass_failure_fetches_five_logs_and_counts_the_rest(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {f"app{i}": h.seed_acr_repo(NS, f"app{i}", ["v1"]) for i in range(7)})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    h.registry.stop()  # Harbor's own registry is down: every copy fails
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert out.count("--- last lines of the log of mirror/app") == 5
    assert "--- 2 more task(s) failed; relay fetched the logs of the first 5" in out
    assert len([c for c in h.calls if c.action == "getReplicationLog"]) == 5
    assert [c.query.get("status") for c in h.calls if c.action == "listReplicationTasks"] == [
        None,
        "Failed",
    ]


def test_secrets_appear_nowhere(
    env: HarborEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = env
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    caplog.set_level("DEBUG")
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    # A proxy's 502 is retried (Harbor's own 500 on an endpoint write is not): the retried
    # request, secret and all, must leave no trace either.
    h.inject("5xx", 1, action="createRegistry", status=502)
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert len([c for c in h.calls if c.action == "createRegistry"]) == 2
    assert relay("harbor", "replicate", "--wait", "--repo", str(tmp_path)) == 0
    monkeypatch.setenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET", "wrong-" + h.acr.access_key_secret)
    s = h.session()
    reg = s.get(h.api + "/registries").json()[0]
    s.delete(h.api + f"/registries/{reg['id']}")  # refused (referenced): the key stays
    out, err = capsys.readouterr()
    text = out + err + caplog.text + summary.read_text()
    basic = base64.b64encode(f"admin:{h.admin_password}".encode()).decode()
    for secret in (h.admin_password, h.acr.access_key_secret, basic):
        assert secret not in text
    # The emulator's own record of what relay sent masks the AccessKey secret too.
    assert h.acr.access_key_secret not in json.dumps([c.body for c in h.calls], default=str)


# --- settings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("harbor", "line", "message"),
    [
        ("  url: http://harbor.lan\n  project: m\n", 3, "harbor.url is plain http://"),
        (
            '  url: https://h.example\n  project: m\n  schedule: "* 0 * * * *"\n',
            5,
            "must start with 0",
        ),
        ('  url: https://h.example\n  project: m\n  schedule: "0 * * * * *"\n', 5, "minutes field"),
        ('  url: https://h.example\n  project: m\n  schedule: "0 0 * *"\n', 5, "needs 6 fields"),
        # Unicode digits are not numbers to Harbor's parser (nor an empty step)
        (
            '  url: https://h.example\n  project: m\n  schedule: "0 \u00b2 * * * *"\n',
            5,
            "minutes field '\u00b2': '\u00b2' is not a number",
        ),
        (
            '  url: https://h.example\n  project: m\n  schedule: "0 5/ * * * *"\n',
            5,
            "minutes field '5/': bad step ''",
        ),
        (
            '  url: https://h.example\n  project: m\n  schedule: "0 0 \u0663 * * *"\n',
            5,
            "is not a number",
        ),
        ("  url: https://h.example\n  project: Mirrors\n", 4, "harbor.project must be lower-case"),
        ("  url: https://h.example\n  project: m\n  ca_bundle: certs/ca.pem\n", 5, "no such file"),
        (
            "  url: https://h.example\n  projct: m\n",
            4,
            "unknown key 'projct'; did you mean 'project'?",
        ),
        ("  url: https://h.example\n", 3, "harbor.project is required"),
    ],
)
def test_validate_checks_the_harbor_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], harbor: str, line: int, message: str
) -> None:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text("images: []\n")
    (tmp_path / "mirrors/relay.yaml").write_text("acr: {namespace: ns}\nharbor:\n" + harbor)
    assert relay("validate", "--repo", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"mirrors/relay.yaml:{line}: " in err and message in err, err


def test_http_is_fine_for_loopback_and_insecure_hosts(tmp_path: Path) -> None:
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors/images.yaml").write_text("images: []\n")
    (tmp_path / "mirrors/relay.yaml").write_text(
        "registries: {insecure: ['harbor.lan:8080']}\nacr: {namespace: ns}\n"
        "harbor: {url: 'http://harbor.lan:8080', project: m}\n"
    )
    assert relay("validate", "--repo", str(tmp_path)) == 0


def test_requests_are_the_swaggers(env: HarborEmulator, tmp_path: Path) -> None:
    """Every write relay sent validated against the swagger with unknown fields refused (the
    emulator would have answered 422 otherwise)."""
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    refused = [(c.action, c.status) for c in h.calls if c.status >= 400]
    assert refused == []


# --- the whole way: upstream → ACR build → Harbor ------------------------------------------------


def _config(skopeo, ref: str, registry) -> tuple[str, list[str]]:
    """(config digest, diff_ids) of an image, read with skopeo, the independent oracle."""
    raw = skopeo.run(
        [
            "inspect",
            "--raw",
            "--config",
            *skopeo.registry_flags(registry),
            docker_ref(ref, registry),
        ]
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest(), json.loads(raw)["rootfs"]["diff_ids"]


@pytest.mark.buildah
def test_after_acr_builds_harbor_serves_the_image_acr_built(
    env: HarborEmulator,
    registry_factory,
    image_factory,
    skopeo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    h = env
    acr = h.acr
    upstream = registry_factory("plain")
    acr.map_upstream(upstream.host, upstream)
    image_factory.push(upstream, "org/app", "1.0", "docker", seed="harbor-e2e")
    repo = helpers.write_repo(
        tmp_path / "relay",
        f"images:\n  - source: {upstream.host}/org/app\n    name: app\n    tags: ['1.0']\n",
        f"""\
        acr:
          namespace: {NS}
          source: {{github: octo/e2e}}
          poll: {{interval: 0.05, max_interval: 0.2, timeout: 120}}
          retry: {{backoff: 0.01, max_backoff: 0.05}}
        harbor:
          url: {h.url}
          project: mirror
          poll: {{interval: 0.05, max_interval: 0.3, timeout: 90, settle: 0.3}}
        """,
    )
    monkeypatch.setenv("RELAY_ACR_ENDPOINT", acr.endpoint)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", acr.access_key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", acr.access_key_secret)
    monkeypatch.delenv("RELAY_HARBOR_ACR_ACCESS_KEY_ID")  # Harbor's key falls back to these
    monkeypatch.delenv("RELAY_HARBOR_ACR_ACCESS_KEY_SECRET")
    assert relay("lock", "--repo", str(repo)) == 0
    assert relay("generate", "--repo", str(repo)) == 0
    files = {
        str(p.relative_to(repo)): p.read_text()
        for p in (repo / "mirrors").rglob("*")
        if p.is_file()
    }
    acr.create_git_remote("octo/e2e", files)
    assert relay("acr", "apply", "--wait", "--repo", str(repo)) == 0
    assert relay("harbor", "apply", "--repo", str(repo)) == 0
    capsys.readouterr()
    assert relay("harbor", "replicate", "--wait", "--only", "app", "--repo", str(repo)) == 0
    out = capsys.readouterr().out
    assert "Succeed" in out and f"{h.url.split('//')[1]}/mirror/app:1.0" in out

    want = _config(skopeo, "org/app:1.0", upstream)
    assert _config(skopeo, f"{NS}/app:1.0", acr.registry) == want
    assert _config(skopeo, "mirror/app:1.0", h.registry) == want


def test_the_access_key_goes_again_when_the_url_changes(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    settings = tmp_path / "mirrors/relay.yaml"
    vpc = "https://registry-vpc.cn-hangzhou.aliyuncs.com"
    settings.write_text(
        settings.read_text().replace("project: mirror", f"project: mirror\n  source_url: {vpc}")
    )
    h.reset_calls()
    capsys.readouterr()
    assert relay("harbor", "plan", "--repo", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert (
        f"update endpoint relay-acr: url https://registry.cn-hangzhou.aliyuncs.com -> {vpc}" in out
    )
    assert "AccessKey re-sent" in out
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    [update] = [c for c in h.writes() if c.action == "updateRegistry"]
    assert update.body["url"] == vpc and "access_secret" in update.body
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0


def test_an_endpoint_update_without_a_url_change_sends_no_url_and_keeps_the_secret(
    harbor_factory: HarborFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Harbor after v2.15.2 clears the stored secret when a PUT's url differs from the stored
    # one without a secret; it stores cr.<region> as registry.<region>, so sending the
    # configured URL back would look like a change.
    h = use(harbor_factory(quirks=Quirks(clear_secret_on_url_change=True)), monkeypatch)
    write_repo(
        tmp_path,
        h,
        {"app": h.seed_acr_repo(NS, "app", ["v1"])},
        harbor_extra="source_url: https://cr.cn-hangzhou.aliyuncs.com\n",
    )
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    settings = tmp_path / "mirrors/relay.yaml"
    settings.write_text(
        settings.read_text().replace("project: mirror", "project: mirror\n  policy_name: renamed")
    )
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0  # the description changes
    [update] = [c for c in h.writes() if c.action == "updateRegistry"]
    assert "url" not in update.body and "access_secret" not in update.body
    [endpoint] = h.state.registries.values()
    assert endpoint.credential is not None
    assert endpoint.credential.access_secret == h.acr.access_key_secret
    h.reset_calls()
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 0
    assert h.writes() == []


def test_a_500_says_where_the_cause_is(
    env: HarborEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = env
    write_repo(tmp_path, h, {"app": h.seed_acr_repo(NS, "app", ["v1"])})
    h.inject("5xx", 10, action="createRegistry")
    assert relay("harbor", "apply", "--repo", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "HTTP 500 UNKNOWN: internal server error" in err
    assert "Harbor hides the cause of a 500 in its core log" in err
    # Harbor's 500 on an endpoint write is its answer to a wrong URL, an unknown provider or
    # a failed ping: asked again, it pings ACR again and says the same.
    assert len([c for c in h.calls if c.action == "createRegistry"]) == 1
