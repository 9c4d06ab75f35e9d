"""relay's ACR fallbacks against every reading of what ACR's documentation leaves open.

Each switch of the emulator's Quirks (relay/sandbox/acr/quirks.py; docs/vendors/acr.md marks the
point UNCONFIRMED) is played each way against relay's client (relay/stages/acr/) or the
`relay acr apply` flow, and each test fails if the fallback it names were taken out of relay.
Builds are held PENDING (and cancelled, or left to the emulator's shutdown), so no buildah build
runs here; tests/test_acr_stage.py runs real builds on the default readings. The tests through
`relay acr apply` (the `world` fixture) are marked slow; the client-level ones are not.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Literal

import pytest

from relay.sandbox.acr.quirks import (
    EXISTS_SPELLINGS,
    LIMIT_SPELLINGS,
    ExistsSpelling,
    LimitSpelling,
)
from relay.sandbox.acr.state import PERSONAL, Namespace, Repo
from relay.stages.acr.api import AcrClient
from relay.stages.acr.connect import connect
from relay.stages.acr.errors import AcrError
from relay.stages.acr.settings import AcrSettings, Credentials
from relay.stages.acr.state import Binding, RepoInfo, RuleSpec
from relay.stages.acr.wire import PAGE_SIZE
from tests.fixtures.acr import AcrEmulator
from tests.fixtures.acr_world import GITHUB, NAMESPACE, World, fast_settings, statuses

Edition = Literal["personal", "enterprise"]
EDITIONS: list[Edition] = ["personal", "enterprise"]


def settings_for(emu: AcrEmulator, edition: Edition, **kw: object) -> AcrSettings:
    if edition == "enterprise":
        kw = {"edition": "enterprise", "instance_id": emu.instance_id, **kw}
    return fast_settings(**kw)


def client_for(emu: AcrEmulator, edition: Edition = "personal", **kw: object) -> AcrClient:
    """relay's client for `edition`, aimed at the emulator (real signatures, no proxies)."""
    creds = Credentials(emu.access_key_id, emu.access_key_secret)
    settings = settings_for(emu, edition, **kw)
    return connect(settings, creds, env={"RELAY_ACR_ENDPOINT": emu.endpoint}, sleep=lambda _s: None)


def actions(emu: AcrEmulator, name: str) -> int:
    return sum(1 for c in emu.calls if c.action == name)


def bound(emu: AcrEmulator, edition: Edition, name: str) -> tuple[str, bool, bool] | None:
    source = emu.state.repos[(edition, NAMESPACE, name)].source
    return None if source is None else (source.owner_repo, source.oversea, source.disable_cache)


def hold_builds(world: World, edition: Edition, running: int = 3) -> AcrSettings:
    """Builds stay PENDING (nothing reaches buildah); up to `running` start at once."""
    world.emu.build_settings.pending_seconds = 600
    world.emu.set_limits(concurrent_builds=running)
    return replace(settings_for(world.emu, edition), max_concurrent_builds=running)


def cancel_all(emu: AcrEmulator) -> None:
    for build in emu.state.active_builds():
        emu.server.runner.cancel(build)


# --- CreateRepo's RepoSource block (Quirks.create_repo_source, unbound_source, source_layout) --


@pytest.mark.parametrize("unbound", ["not-exist", "empty"])
@pytest.mark.parametrize("repo_source", ["ignore", "honour"])
def test_create_repo_leaves_the_repository_bound_either_way(
    acr_emulator: AcrEmulator,
    repo_source: Literal["ignore", "honour"],
    unbound: Literal["not-exist", "empty"],
) -> None:
    """Fallback: PersonalClient._ensure_bound reads the binding back and binds with
    UpdateRepoSourceRepo when CreateRepo dropped RepoSource, also when the read answers an
    unbound repository with "not found"."""
    emu = acr_emulator
    emu.quirks.create_repo_source = repo_source
    emu.quirks.unbound_source = unbound
    client = client_for(emu)
    client.create_namespace(NAMESPACE)
    binding = Binding("octo", "mirrors", overseas=True, no_cache=True)
    client.create_repo(NAMESPACE, "app", summary="s", detail="d", binding=binding)
    assert bound(emu, PERSONAL, "app") == ("octo/mirrors", True, True)
    assert actions(emu, "GetRepoSourceRepo") == 1
    # The extra write only where CreateRepo dropped the block.
    assert actions(emu, "UpdateRepoSourceRepo") == (1 if repo_source == "ignore" else 0)
    assert emu.state.repos[(PERSONAL, NAMESPACE, "app")].repo_build_type == "MANUAL"


@pytest.mark.parametrize("layout", ["repoSource", "sourceRepo", "flat"])
def test_the_binding_is_read_back_in_every_layout(
    acr_emulator: AcrEmulator, layout: Literal["repoSource", "sourceRepo", "flat"]
) -> None:
    """Fallback: PersonalClient.get_binding reads the binding nested under either key or flat,
    so an honoured RepoSource costs no second write."""
    emu = acr_emulator
    emu.quirks.create_repo_source = "honour"
    emu.quirks.source_layout = layout
    client = client_for(emu)
    client.create_namespace(NAMESPACE)
    binding = Binding("octo", "mirrors", overseas=False, no_cache=True, auto_build=False)
    repo = client.create_repo(NAMESPACE, "app", summary="s", detail="d", binding=binding)
    assert client.get_binding(repo) == binding
    assert actions(emu, "UpdateRepoSourceRepo") == 0
    # And an unbound repository reads as unbound, not as an error, in every layout.
    emu.quirks.unbound_source = "empty"
    emu.state.repos[(PERSONAL, NAMESPACE, "app")].source = None
    assert client.get_binding(repo) is None


def test_a_missing_binding_api_is_not_an_unbound_repository(acr_emulator: AcrEmulator) -> None:
    """Fallback: when the gateway does not know GetRepoSourceRepo / UpdateRepoSourceRepo
    (Quirks.source_routes, an unknown route: InvalidAction.NotFound, HTTP 404), relay trusts
    CreateRepo's RepoSource instead of reading the 404 as "unbound" and failing to bind, so the
    repository's builds are not blocked; a *_NOT_EXIST 404 still means "unbound"."""
    emu = acr_emulator
    emu.quirks.create_repo_source = "honour"
    emu.quirks.source_routes = "absent"
    client = client_for(emu)
    client.create_namespace(NAMESPACE)
    binding = Binding("octo", "mirrors", overseas=True, no_cache=True)
    repo = client.create_repo(NAMESPACE, "app", summary="s", detail="d", binding=binding)
    client.bind_source(repo, binding)  # a plan's bind-source action: no error either
    assert bound(emu, PERSONAL, "app") == ("octo/mirrors", True, True)
    # Learned once: later repositories do not ask again.
    client.create_repo(NAMESPACE, "app2", summary="s", detail="d", binding=binding)
    assert actions(emu, "GetRepoSourceRepo") + actions(emu, "UpdateRepoSourceRepo") <= 2
    missing = AcrError("GetRepoSourceRepo", "InvalidAction.NotFound", "", http_status=404)
    unbound = AcrError("GetRepoSourceRepo", "REPO_SOURCE_NOT_EXIST", "", http_status=404)
    assert (missing.unknown_action, missing.not_found) == (True, False)
    assert (unbound.unknown_action, unbound.not_found) == (False, True)


# --- the overseas flag (Quirks.overseas_build) --------------------------------------------------


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize(
    ("offer", "overseas", "ok"),
    [("offered", True, True), ("refused", True, False), ("refused", False, True)],
    ids=["offered", "refused-by-acr", "refused-and-turned-off"],
)
def test_overseas_build_is_a_setting_that_reaches_the_binding(
    world: World, offer: Literal["offered", "refused"], overseas: bool, ok: bool
) -> None:
    """relay's way out when ACR refuses overseas builds is acr.overseas_build: false. A refusal
    fails that repository's setup with ACR's word (IsOversea) in the report."""
    world.emu.quirks.overseas_build = offer
    settings = replace(hold_builds(world, "personal"), overseas_build=overseas)
    report, text = world.apply(wait=False, settings=settings)
    assert report.ok is ok, text
    if ok:
        for name in ("k8s_pause", "quay_org_app"):
            assert bound(world.emu, PERSONAL, name) == (GITHUB, overseas, True)
    else:
        assert report.errors and all("IsOversea" in e for e in report.errors), report.errors
        assert set(statuses(report).values()) == {"ERROR"}
        assert world.emu.state.builds == {}


# --- StartRepoBuildByRule's answer (Quirks.start_build_returns_id) -------------------------------


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize("returns_id", [False, True], ids=["no-id", "id"])
def test_every_started_build_is_followed_by_its_id(world: World, returns_id: bool) -> None:
    """Fallback: without an id in the answer, apply finds the new build in GetRepoBuildList by
    its tag (apply._discover); with one, it needs no listing."""
    world.emu.quirks.start_build_returns_id = returns_id
    report, text = world.apply(wait=False, settings=hold_builds(world, "personal"))
    assert report.ok, text
    assert set(statuses(report).values()) == {"STARTED"}
    started = {b.image_tag: b.build_id for b in world.emu.state.builds.values()}
    assert {r.tag: r.build_id for r in report.rows} == started
    assert len(started) == 3
    assert actions(world.emu, "GetRepoBuildList") == (0 if returns_id else 3)


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize("returns_id", [False, True], ids=["no-id", "id"])
def test_a_lost_start_answer_does_not_start_twice(world: World, returns_id: bool) -> None:
    """Fallback: a start whose answer was lost is looked for (running, same tag) before it is
    sent again (SdkClient._write_once with _build_landed), whether or not answers carry ids."""
    world.emu.quirks.start_build_returns_id = returns_id
    world.emu.inject("5xx-after", count=2, action="StartRepoBuildByRule")
    report, text = world.apply(wait=False, settings=hold_builds(world, "personal"))
    assert report.ok, text
    tags = sorted(b.image_tag for b in world.emu.state.builds.values())
    assert tags == ["1.0", "3.10", "3.9"]
    started = {b.image_tag: b.build_id for b in world.emu.state.builds.values()}
    assert {r.tag: r.build_id for r in report.rows} == started


# --- the cancelled state (Quirks.canceled_status) -----------------------------------------------


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize("spelling", ["CANCELED", "CANCELLED"])
@pytest.mark.parametrize("edition", EDITIONS)
def test_a_cancelled_build_fails_its_row_in_either_spelling(
    world: World, edition: Edition, spelling: Literal["CANCELED", "CANCELLED"]
) -> None:
    """Fallback: relay.stages.acr.state.FAILURES knows both spellings, so a build cancelled in
    ACR ends its row as failed at once instead of being polled until the deadline."""
    world.emu.quirks.canceled_status = spelling

    def sleep(seconds: float) -> None:  # someone cancels the builds in the console meanwhile
        cancel_all(world.emu)
        time.sleep(min(seconds, 0.05))

    # A spelling relay did not know would leave the rows polled until the timeout: TIMEOUT.
    report, text = world.apply(settings=hold_builds(world, edition), sleep=sleep, timeout=15)
    assert set(statuses(report).values()) == {spelling}, text
    assert not report.ok and report.counts()["failed"] == 3


# --- page sizes (Quirks.personal_page_size_cap, enterprise_page_size_over_max) ------------------


@pytest.mark.parametrize("cap", [30, 7, None], ids=["cap-30", "cap-7", "no-cap"])
def test_listings_page_past_a_smaller_cap(acr_emulator: AcrEmulator, cap: int | None) -> None:
    """Fallback: wire.pages() goes on past a page shorter than PAGE_SIZE until the total."""
    emu = acr_emulator
    emu.quirks.personal_page_size_cap = cap
    with emu.state.lock:
        emu.state.namespaces[(PERSONAL, NAMESPACE)] = Namespace(PERSONAL, NAMESPACE)
        for i in range(65):
            repo_id = emu.state.new_repo_id(PERSONAL)
            repo = Repo(PERSONAL, NAMESPACE, f"app{i:02d}", repo_id)
            emu.state.repos[repo.key] = repo
    client = client_for(emu)
    assert [r.name for r in client.list_repos(NAMESPACE)] == [f"app{i:02d}" for i in range(65)]
    pages = [c for c in emu.calls if c.action == "GetRepoListByNamespace"]
    assert {c.query["PageSize"] for c in pages} == {str(PAGE_SIZE)}
    assert len(pages) == (1 if cap is None else -(-65 // cap))
    assert client.count_repos(NAMESPACE) == 65


@pytest.mark.parametrize("over_max", ["reject", "clamp"])
def test_enterprise_lists_never_ask_for_more_than_100(
    acr_emulator: AcrEmulator, over_max: Literal["reject", "clamp"]
) -> None:
    """relay's PAGE_SIZE stays within the Enterprise maximum, so the stricter reading (a
    parameter error above 100) costs nothing."""
    emu = acr_emulator
    emu.quirks.enterprise_page_size_over_max = over_max
    client = client_for(emu, "enterprise")
    client.create_namespace(NAMESPACE)
    repo = client.create_repo(
        NAMESPACE, "app", summary="s", detail="d", binding=Binding("octo", "mirrors")
    )
    client.create_rule(repo, RuleSpec("1.0", "/mirrors/app/1.0/", "main"))
    assert client.list_namespaces() == [NAMESPACE]
    assert [r.name for r in client.list_repos(NAMESPACE)] == ["app"]
    assert client.count_repos(NAMESPACE) == 1
    assert client.list_images(repo) == {}
    assert [r.image_tag for r in client.list_rules(repo)] == ["1.0"]
    assert client.list_builds(repo) == []
    sizes = {int(c.query["PageSize"]) for c in emu.calls if "PageSize" in c.query}
    assert max(sizes) == PAGE_SIZE <= 100


# --- which rule field names the image (Quirks.rule_image_tag_field) -----------------------------


@pytest.mark.parametrize("field", ["ImageTag", "Tag"])
def test_rules_build_the_wanted_tag_whichever_field_acr_reads(
    acr_emulator: AcrEmulator, field: Literal["ImageTag", "Tag"]
) -> None:
    """Fallback: relay sends the image tag as both ImageTag and Tag (PersonalClient._rule_body),
    so rules are created, recognised and updated whichever field ACR reads."""
    emu = acr_emulator
    emu.quirks.rule_image_tag_field = field
    client = client_for(emu)
    client.create_namespace(NAMESPACE)
    repo = client.create_repo(
        NAMESPACE, "app", summary="s", detail="d", binding=Binding("octo", "mirrors")
    )
    spec = RuleSpec("1.0", "/mirrors/app/1.0/", "main")
    rule_id = client.create_rule(repo, spec)
    (rule,) = client.list_rules(repo)
    assert rule.rule_id == rule_id and rule.matches(spec, check_platforms=False)
    moved = RuleSpec("2.0", "/mirrors/app/2.0/", "main")
    assert rule_id is not None
    client.update_rule(repo, rule_id, moved)
    (rule,) = client.list_rules(repo)
    assert rule.matches(moved, check_platforms=False)
    emu_rule = emu.state.repos[(PERSONAL, NAMESPACE, "app")].rules[rule_id]
    assert emu_rule.image_tag == "2.0"


# --- repository names (Quirks.repo_name_dots, Limits.repo_name_max) ------------------------------


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize(("dots", "longest"), [(False, 30), (True, 64)], ids=["doc-72396", "ros"])
def test_a_repository_name_acr_refuses_comes_with_the_setting_to_change(
    world: World, dots: bool, longest: int
) -> None:
    """Fallback: relay's names follow ROS doc 135727 (up to 64, `.` kept); where ACR keeps to
    doc 72396 (30, no `.`), apply says which setting to change (apply._name_hint) and builds the
    rest."""
    world.emu.quirks.repo_name_dots = dots
    world.emu.set_limits(repo_name_max=longest)
    dotted, long = "quay.io/org/app.v2", "quay.io/jetstack/cert-manager-cainjector"
    for source in (dotted, long):
        world.push(source, "1.0", "docker")
    world.entries = [(dotted, ["1.0"]), (long, ["1.0"]), ("quay.io/org/app", ["1.0"])]
    world.publish()
    report, text = world.apply(wait=False, settings=hold_builds(world, "personal"))
    names = {name for (_, _, name) in world.emu.state.repos}
    if dots:
        assert report.ok, text
        assert names == {"quay_org_app.v2", "quay_jetstack_cert-manager-cainjector", "quay_org_app"}
        return
    assert names == {"quay_org_app"}
    assert statuses(report)["quay_org_app:1.0"] == "STARTED"
    (refused_dot,) = [e for e in report.errors if "quay_org_app.v2" in e]
    assert "PARAM_INVALID" in refused_dot and "name: without '.'" in refused_dot
    (refused_long,) = [e for e in report.errors if "cert-manager" in e]
    assert "lower naming.max_length in mirrors/relay.yaml below 37" in refused_long


# --- "already exists" and limit codes (Quirks.already_exists, limit_exceeded) -------------------


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize("spelling", EXISTS_SPELLINGS)
@pytest.mark.parametrize("edition", EDITIONS)
def test_lost_create_answers_are_taken_as_done_in_every_spelling(
    world: World, edition: Edition, spelling: ExistsSpelling
) -> None:
    """Fallbacks: a create repeated after a lost answer meets "already exists", which relay
    recognises by the code alone (AcrError.already_exists); the repository it had created is
    then bound (apply._setup_repo), as the lost answer never said whether it was."""
    world.emu.quirks.already_exists = spelling
    create_repo = "CreateRepository" if edition == "enterprise" else "CreateRepo"
    world.emu.inject("5xx-after", count=1, action="CreateNamespace")
    world.emu.inject("5xx-after", count=1, action=create_repo)
    report, text = world.apply(wait=False, settings=hold_builds(world, edition))
    assert report.ok, text
    assert set(statuses(report).values()) == {"STARTED"}
    repeats = [c.code for c in world.emu.calls if c.action in ("CreateNamespace", create_repo)]
    assert repeats.count(f"NAMESPACE_{spelling}") == 1
    assert repeats.count(f"REPO_{spelling}") == 1  # one repository went through it
    for name in ("k8s_pause", "quay_org_app"):
        assert bound(world.emu, edition, name) == (GITHUB, True, True)


@pytest.mark.parametrize(
    ("rebind", "spelling"),
    [("error", "ALREADY_EXIST"), ("error", "EXIST"), ("error", "DUPLICATE"), ("overwrite", None)],
    ids=["error-already-exist", "error-exist", "error-duplicate", "overwrite"],
)
def test_an_enterprise_repository_is_rebound_either_way(
    acr_emulator: AcrEmulator,
    rebind: Literal["error", "overwrite"],
    spelling: ExistsSpelling | None,
) -> None:
    """Fallback: EnterpriseClient.bind_source updates a binding that CreateRepoSourceCodeRepo
    says exists."""
    emu = acr_emulator
    emu.quirks.enterprise_rebind = rebind
    if spelling is not None:
        emu.quirks.already_exists = spelling
    client = client_for(emu, "enterprise")
    client.create_namespace(NAMESPACE)
    repo = client.create_repo(
        NAMESPACE, "app", summary="s", detail="d", binding=Binding("someone", "else")
    )
    client.bind_source(repo, Binding("octo", "mirrors", overseas=True, no_cache=True))
    assert bound(emu, "enterprise", "app") == ("octo/mirrors", True, True)
    assert actions(emu, "UpdateRepoSourceCodeRepo") == (1 if rebind == "error" else 0)


@pytest.mark.slow  # relay acr apply end to end, on the world fixture
@pytest.mark.parametrize("spelling", LIMIT_SPELLINGS)
def test_limits_lower_than_the_settings_queue_builds_in_every_spelling(
    world: World, spelling: LimitSpelling
) -> None:
    """Fallback: a refused rule or build start is recognised by its code alone
    (AcrError.limit_reached), and apply queues the tag (onto an existing rule, or behind a
    running build) instead of failing it."""
    emu = world.emu
    emu.quirks.limit_exceeded = spelling
    settings = replace(hold_builds(world, "personal", running=3), rules_per_repo=3)
    emu.set_limits(rules_per_repo=1, concurrent_builds=1)  # below the settings
    report, text = world.apply(wait=False, settings=settings)
    assert report.ok, text
    assert sorted(statuses(report).values()) == ["QUEUED", "QUEUED", "STARTED"]
    refused = {c.code for c in emu.calls if c.code and c.action != "GetRepoSourceRepo"}
    expected = {
        "LIMIT_EXCEED": {"BUILD_RULE_LIMIT_EXCEED", "BUILD_CONCURRENCY_LIMIT_EXCEED"},
        "QUOTA": {"BUILD_RULE_QUOTA", "BUILD_CONCURRENCY_QUOTA"},
        "TOO_MANY": {"TOO_MANY_BUILD_RULES", "TOO_MANY_RUNNING_BUILDS"},
    }
    assert refused == expected[spelling]


def test_errors_of_the_other_family_are_not_mistaken(acr_emulator: AcrEmulator) -> None:
    """The word matching behind both fallbacks keeps "exists" and "limit" apart."""
    emu = acr_emulator
    client = client_for(emu)
    client.create_namespace(NAMESPACE)
    repo = RepoInfo(NAMESPACE, "app")
    emu.set_limits(rules_per_repo=0)
    client.create_repo(NAMESPACE, "app", summary="s", detail="d", binding=Binding("o", "r"))
    for exists in EXISTS_SPELLINGS:
        emu.quirks.already_exists = exists
        with pytest.raises(AcrError) as info:
            client.create_namespace(NAMESPACE)
        assert info.value.already_exists and not info.value.limit_reached, info.value
    for limit in LIMIT_SPELLINGS:
        emu.quirks.limit_exceeded = limit
        with pytest.raises(AcrError) as info:
            client.create_rule(repo, RuleSpec("1.0", "/", "main"))
        assert info.value.limit_reached and not info.value.already_exists, info.value


# --- the order of build listings (Quirks.build_list_order) ---------------------------------------


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("order", ["newest-first", "oldest-first"])
def test_builds_are_listed_newest_first_whatever_acr_serves(
    acr_emulator: AcrEmulator,
    edition: Edition,
    order: Literal["newest-first", "oldest-first"],
) -> None:
    """Fallback: the clients read every page of builds and sort them by start time, so the
    running build of a tag is found first in either order."""
    emu = acr_emulator
    emu.quirks.build_list_order = order
    emu.quirks.start_build_returns_id = True
    emu.build_settings.pending_seconds = 600
    client = client_for(emu, edition)
    client.create_namespace(NAMESPACE)
    repo = client.create_repo(
        NAMESPACE, "app", summary="s", detail="d", binding=Binding("octo", "mirrors")
    )
    rule_id = client.create_rule(repo, RuleSpec("1.0", "/mirrors/app/1.0/", "main"))
    assert rule_id is not None
    try:
        first = client.start_build(repo, rule_id, "1.0", known=frozenset())
        time.sleep(0.01)  # start times are in milliseconds
        second = client.start_build(repo, rule_id, "1.0", known=frozenset({first or ""}))
        ids = [b.build_id for b in client.list_builds(repo)]
        assert ids[0] == second and len(ids) == 2, (ids, first, second)
    finally:
        cancel_all(emu)
