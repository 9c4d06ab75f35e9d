"""The pure ACR planner, against hand-built observed states."""

from __future__ import annotations

import textwrap

import pytest

from relay.config import mirrors
from relay.config.lockfile import Lock, LockedTag
from relay.errors import InputError, OperationFailed
from relay.stages.acr import plan as planner
from relay.stages.acr.plan import Action, WantedRepo, binding_for, desired
from relay.stages.acr.settings import AcrSettings, QuotaSettings, SourceSettings
from relay.stages.acr.state import Build, Image, Observed, RepoInfo, RepoState, Rule

from .helpers import DIGEST_A, DIGEST_B, DIGEST_C

CFG_A = "sha256:" + "1" * 64
CFG_B = "sha256:" + "2" * 64
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

SETTINGS = AcrSettings(namespace="mirrors", source=SourceSettings("octo/relay"))

LIST = (
    """
images:
  - source: nginx
    tags: ["1.27", "1.26@%s"]
  - source: registry.k8s.io/pause
    tags: ["3.9"]
    platforms: [linux/arm64, linux/amd64]
"""
    % DIGEST_C
)


def wanted(
    text: str = LIST, settings: AcrSettings = SETTINGS, lock: Lock | None = None
) -> list[WantedRepo]:
    mirror_list = mirrors.parse(textwrap.dedent(text), "mirrors/images.yaml")
    if lock is None:
        lock = Lock()
        lock.put("docker.io/library/nginx", "1.27", LockedTag(DIGEST_A, MANIFEST))
        lock.put("registry.k8s.io/pause", "3.9", LockedTag(DIGEST_B, MANIFEST))
    return desired(mirror_list, lock, settings)


def empty() -> Observed:
    return Observed("mirrors", namespace_exists=False, namespace_count=0, other_repo_count=0)


def managed(w: WantedRepo, images: dict[str, str] | None = None, **kw) -> RepoState:  # noqa: ANN003
    info = RepoInfo("mirrors", w.name, summary=w.summary, detail=w.detail)
    imgs = {t: Image(t, cfg, None) for t, cfg in (images or {}).items()}
    return RepoState(info, imgs, **kw)


def synced(ws: list[WantedRepo]) -> Observed:
    """Every tag built, with upstream's config."""
    obs = Observed("mirrors", True, 1)
    for w in ws:
        obs.repos[w.name] = managed(w, {wt.tag: CFG_A for wt in w.tags})
        for wt in w.tags:
            obs.upstream[(w.source.name, wt.tag)] = CFG_A
    return obs


def rule(rule_id: str, name: str, tag: str, branch: str = "main") -> Rule:
    return Rule(
        rule_id, "GIT_BRANCH", branch, f"/mirrors/dockerfiles/{name}/{tag}/", "Dockerfile", tag
    )


def strs(actions: list[Action]) -> list[str]:
    return [str(a) for a in actions]


def test_desired_state() -> None:
    ws = wanted()
    assert [w.name for w in ws] == ["nginx", "k8s_pause"]
    nginx = ws[0]
    assert [(t.tag, t.digest) for t in nginx.tags] == [("1.27", DIGEST_A), ("1.26", DIGEST_C)]
    spec = nginx.tags[0].rule
    assert (spec.location, spec.branch, spec.platforms) == (
        "/mirrors/dockerfiles/nginx/1.27/",
        "main",
        (),
    )
    assert (
        nginx.summary.startswith("managed-by: relay bind:")
        and "docker.io/library/nginx" in nginx.summary
    )
    assert len(nginx.summary) <= 100 and "managed-by: relay" in nginx.detail
    assert nginx.platform == "linux/amd64"
    # Enterprise rules carry the entry's platforms; the first is the one compared.
    ee = wanted(settings=AcrSettings(edition="enterprise", instance_id="cri-x", namespace="m"))
    assert ee[1].tags[0].rule.platforms == ("linux/arm64", "linux/amd64")
    assert ee[1].platform == "linux/arm64"
    # ACR is sent containerd's canonical spelling, whatever the list says.
    spelled = LIST.replace("[linux/arm64, linux/amd64]", "[linux/aarch64, linux/arm/v7]")
    ee = wanted(spelled, AcrSettings(edition="enterprise", instance_id="cri-x", namespace="m"))
    assert ee[1].tags[0].rule.platforms == ("linux/arm64", "linux/arm/v7")


def test_desired_needs_locked_digests() -> None:
    with pytest.raises(InputError, match="no digest yet"):
        wanted(lock=Lock())


def test_first_apply_creates_everything_and_builds_every_tag() -> None:
    ws = wanted()
    p = planner.plan(ws, empty(), SETTINGS)
    assert strs(p.actions) == [
        "create namespace mirrors",
        "create repo nginx (docker.io/library/nginx)",
        "create repo k8s_pause (registry.k8s.io/pause)",
        "add rule nginx:1.27",
        "build nginx:1.27 (new repository)",
        "add rule nginx:1.26",
        "build nginx:1.26 (new repository)",
        "add rule k8s_pause:3.9",
        "build k8s_pause:3.9 (new repository)",
    ]
    assert p.up_to_date == 0 and not p.skipped


def test_no_op() -> None:
    ws = wanted()
    p = planner.plan(ws, synced(ws), SETTINGS)
    assert p.actions == [] and p.up_to_date == 3


def test_changed_digest_rebuilds_exactly_that_tag() -> None:
    ws = wanted()
    obs = synced(ws)
    obs.upstream[("docker.io/library/nginx", "1.27")] = CFG_B
    obs.repos["nginx"].rules = [rule("11", "nginx", "1.27"), rule("12", "nginx", "1.26")]
    obs.repos["nginx"].builds = []
    p = planner.plan(ws, obs, SETTINGS)
    assert strs(p.actions) == [
        "build nginx:1.27 (config 111111111111 differs from upstream 222222222222)"
    ]
    assert p.jobs[0].slot == "11" and p.up_to_date == 2


def test_unknown_upstream_falls_back_to_build_if_missing() -> None:
    ws = wanted()
    obs = synced(ws)
    obs.upstream.clear()
    obs.repos["nginx"].images = {"1.26": Image("1.26", CFG_B, None)}
    obs.repos["nginx"].rules, obs.repos["nginx"].builds = [], []
    p = planner.plan(ws, obs, SETTINGS)
    assert strs(p.actions) == ["add rule nginx:1.27", "build nginx:1.27 (missing)"]
    assert planner.needs_rules(ws[0], obs) and not planner.needs_rules(ws[1], obs)


def test_rule_that_drifted_is_updated() -> None:
    ws = wanted()
    obs = synced(ws)
    del obs.repos["nginx"].images["1.27"]  # type: ignore[union-attr]
    obs.repos["nginx"].rules = [rule("11", "nginx", "1.27", branch="old")]
    obs.repos["nginx"].builds = []
    p = planner.plan(ws, obs, SETTINGS)
    assert strs(p.actions) == ["update rule nginx#11 -> 1.27", "build nginx:1.27 (missing)"]


def test_rule_limit_reuses_rules_round_robin() -> None:
    tags = [f"1.{i}" for i in range(8)]
    text = "images:\n  - source: nginx\n    tags: [%s]\n" % ", ".join(
        f'"{t}@{DIGEST_A}"' for t in tags
    )
    ws = wanted(text)
    limited = AcrSettings(
        namespace="mirrors", source=SourceSettings("octo/relay"), rules_per_repo=3
    )
    p = planner.plan(ws, empty(), limited)
    assert [j.rule_op for j in p.jobs] == ["add"] * 3 + ["update"] * 5
    assert [j.slot for j in p.jobs] == ["new:1.0", "new:1.1", "new:1.2"] + [
        "new:1.0",
        "new:1.1",
        "new:1.2",
        "new:1.0",
        "new:1.1",
    ]
    assert all(j.reused for j in p.jobs[3:])
    assert {j.tag for j in p.jobs} == set(tags)  # every tag still gets built
    assert "update rule nginx#new -> 1.3 (reused)" in strs(p.actions)


def test_reuse_prefers_spare_rules_and_respects_foreign_rules() -> None:
    text = "images:\n  - source: nginx\n    tags: [%s]\n" % ", ".join(
        f'"{t}@{DIGEST_A}"' for t in ("a", "b", "c")
    )
    ws = wanted(text)
    obs = Observed("mirrors", True, 1)
    foreign = Rule("90", "GIT_BRANCH", "main", "/docker/", "Dockerfile", "latest")
    obs.repos["nginx"] = managed(ws[0], {}, rules=[rule("10", "nginx", "gone"), foreign], builds=[])
    limited = AcrSettings(
        namespace="mirrors", source=SourceSettings("octo/relay"), rules_per_repo=3
    )
    p = planner.plan(ws, obs, limited)
    # One slot left under the limit, plus the rule of a tag no longer listed; the user's own
    # rule is never touched.
    assert [(j.tag, j.slot, j.rule_op) for j in p.jobs] == [
        ("a", "new:a", "add"),
        ("b", "10", "update"),
        ("c", "new:a", "update"),
    ]
    assert "90" not in {j.slot for j in p.jobs}


def test_foreign_rules_filling_the_limit_skip_until_pruned() -> None:
    text = 'images:\n  - source: nginx\n    tags: ["a@%s"]\n' % DIGEST_A
    ws = wanted(text)
    foreign = [Rule(str(i), "GIT_BRANCH", "main", f"/x{i}/", "Dockerfile", "t") for i in range(5)]
    obs = Observed("mirrors", True, 1)
    obs.repos["nginx"] = managed(ws[0], {}, rules=foreign, builds=[])
    p = planner.plan(ws, obs, SETTINGS)
    assert p.jobs == [] and len(p.skipped) == 1 and "prune" in p.skipped[0].reason
    pruned = planner.plan(ws, obs, SETTINGS, prune=True)
    assert strs(pruned.actions)[:5] == [f"delete rule nginx#{i} (prune)" for i in range(5)]
    assert strs(pruned.actions)[5:] == ["add rule nginx:a", "build nginx:a (missing)"]


def test_running_build_is_waited_for_not_restarted() -> None:
    ws = wanted()
    obs = synced(ws)
    del obs.repos["nginx"].images["1.27"]  # type: ignore[union-attr]
    obs.repos["nginx"].rules = [rule("11", "nginx", "1.27")]
    obs.repos["nginx"].builds = [
        Build("b2", "BUILDING", "1.27"),
        Build("b1", "FAILED", "1.27"),
    ]
    p = planner.plan(ws, obs, SETTINGS)
    assert strs(p.actions) == ["wait nginx:1.27 (build b2 running)"]
    assert p.jobs[0].slot == "11" and p.jobs[0].running_build == "b2"


def test_unmanaged_repository_is_never_touched() -> None:
    ws = wanted()
    obs = synced(ws)
    obs.repos["nginx"] = RepoState(RepoInfo("mirrors", "nginx", summary="hand made"))
    p = planner.plan(ws, obs, SETTINGS)
    assert p.actions == []
    assert [(s.repo, s.tag) for s in p.skipped] == [("nginx", "1.27"), ("nginx", "1.26")]
    assert "not managed by relay" in p.skipped[0].reason


def test_wrong_binding_is_rebound() -> None:
    ws = wanted()
    obs = synced(ws)
    info = obs.repos["nginx"].info
    obs.repos["nginx"].info = RepoInfo(info.namespace, info.name, summary="managed-by: relay")
    p = planner.plan(ws, obs, SETTINGS)
    assert strs(p.actions) == ["bind source nginx (github octo/relay)"]
    other = AcrSettings(
        namespace="mirrors", source=SourceSettings("octo/relay"), overseas_build=False
    )
    assert planner.binding_hash(binding_for(other)) != planner.binding_hash(binding_for(SETTINGS))


def test_prune_deletes_stale_managed_repos_only() -> None:
    ws = wanted()
    obs = synced(ws)
    obs.repos["old"] = RepoState(RepoInfo("mirrors", "old", summary="managed-by: relay x"))
    obs.repos["theirs"] = RepoState(RepoInfo("mirrors", "theirs", summary="someone else's"))
    for w in ws:
        obs.repos[w.name].rules, obs.repos[w.name].builds = [], []
    assert planner.plan(ws, obs, SETTINGS).actions == []
    assert strs(planner.plan(ws, obs, SETTINGS, prune=True).actions) == [
        "delete repo old (prune: not in the list)"
    ]


def test_quotas_fail_early() -> None:
    ws = wanted()
    tight = AcrSettings(
        namespace="mirrors", source=SourceSettings("octo/relay"), quotas=QuotaSettings(3, 300)
    )
    full = Observed("mirrors", False, 3, other_repo_count=0)
    with pytest.raises(
        OperationFailed, match=r"namespaces, over the quota of 3 \(acr.quotas.namespaces\)"
    ):
        planner.plan(ws, full, tight)
    crowded = Observed("mirrors", True, 1, other_repo_count=299)
    with pytest.raises(OperationFailed, match=r"needs 2 new repositories, which would make 301"):
        planner.plan(ws, crowded, tight)
    crowded.other_repo_count = 298
    assert len(planner.plan(ws, crowded, tight).jobs) == 3


def test_enterprise_rule_and_compared_platform_hold_only_what_acr_builds() -> None:
    """An entry listing a platform ACR cannot build (linux/s390x) first: the rule names only
    the platforms ACR accepts, and the compared platform is one a build produces (else the tag
    would differ from upstream forever and rebuild every run)."""
    text = LIST.replace("[linux/arm64, linux/amd64]", "[linux/s390x, linux/amd64]")
    ee = wanted(text, AcrSettings(edition="enterprise", instance_id="cri-x", namespace="m"))
    assert ee[1].tags[0].rule.platforms == ("linux/amd64",)
    assert ee[1].platform == "linux/amd64"
    only = LIST.replace("[linux/arm64, linux/amd64]", "[linux/s390x]")
    ee = wanted(only, AcrSettings(edition="enterprise", instance_id="cri-x", namespace="m"))
    assert ee[1].tags[0].rule.platforms == ("linux/amd64",)
    assert ee[1].platform == "linux/amd64"
