"""The apply scheduler against an in-memory fake ACR: caps, rule reuse, failures, deadlines."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from relay.config import mirrors
from relay.config.lockfile import Lock
from relay.stages.acr import apply as applier
from relay.stages.acr import plan as planner
from relay.stages.acr.api import AcrClient, CallStats
from relay.stages.acr.errors import AcrError
from relay.stages.acr.observe import observe
from relay.stages.acr.report import ApplyReport, Row
from relay.stages.acr.settings import AcrSettings, PollSettings, SourceSettings
from relay.stages.acr.state import Binding, Build, Image, RepoInfo, Rule, RuleSpec

from .helpers import DIGEST_A

CFG = "sha256:" + "1" * 64


@dataclass
class FakeBuild:
    build_id: str
    repo: str
    tag: str
    polls_left: int
    result: str
    config: str = CFG  # the image config the build pushes


@dataclass
class FakeAcr(AcrClient):
    """Enough of ACR for the scheduler; every build takes `polls` status reads to finish."""

    polls: int = 2
    fail_tags: set[str] = field(default_factory=set)
    fail_create_repo: set[str] = field(default_factory=set)
    rule_limit: int = 100
    repo_name_max: int = 64
    build_limit: int = 100
    namespaces: list[str] = field(default_factory=list)
    repos: dict[str, RepoInfo] = field(default_factory=dict)
    rules: dict[str, dict[str, Rule]] = field(default_factory=dict)
    builds: dict[str, FakeBuild] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    max_running: int = 0
    config: str = CFG  # what a build started now pushes

    def __post_init__(self) -> None:
        self.stats = CallStats()
        self.edition = "personal"

    def running(self) -> list[FakeBuild]:
        return [b for b in self.builds.values() if b.polls_left > 0]

    def list_namespaces(self) -> list[str]:
        return list(self.namespaces)

    def create_namespace(self, name: str) -> None:
        self.namespaces.append(name)

    def list_repos(self, namespace: str) -> list[RepoInfo]:
        return list(self.repos.values())

    def count_repos(self, namespace: str) -> int:
        return 0

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo:
        if name in self.fail_create_repo:
            raise AcrError("CreateRepo", "REPO_LIMIT_EXCEED", "no room", http_status=400)
        if len(name) > self.repo_name_max:
            # What the ACR emulator (and the stricter ACR doc revisions) answer.
            raise AcrError(
                "CreateRepo",
                "PARAM_INVALID",
                f"RepoName is invalid: length must be 2-{self.repo_name_max}",
                http_status=400,
            )
        if name in self.repos:
            raise AcrError(
                "CreateRepo", "REPO_ALREADY_EXIST", "repository already exists", http_status=400
            )
        self.repos[name] = RepoInfo(namespace, name, None, summary, detail)
        self.rules[name] = {}
        return self.repos[name]

    def get_repo(self, namespace: str, name: str) -> RepoInfo | None:
        return self.repos.get(name)

    def list_images(self, repo: RepoInfo) -> dict[str, Image]:
        done = [b for b in self.builds.values() if b.repo == repo.name and b.polls_left == 0]
        return {b.tag: Image(b.tag, b.config, None) for b in done if b.result == "SUCCESS"}

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        return list(self.rules[repo.name].values())

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        if len(self.rules[repo.name]) >= self.rule_limit:
            raise AcrError("CreateRepoBuildRule", "BUILD_RULE_LIMIT_EXCEED", "", http_status=400)
        rule_id = str(100 + sum(len(r) for r in self.rules.values()))
        self.rules[repo.name][rule_id] = Rule(
            rule_id, spec.push_type, spec.branch, spec.location, spec.dockerfile_name, spec.tag
        )
        self.log.append(f"add {repo.name}#{rule_id} {spec.tag}")
        return rule_id

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None:
        busy = [b for b in self.running() if b.build_id.startswith(f"{repo.name}#{rule_id}/")]
        assert not busy, f"rule {rule_id} updated while its build runs"
        self.rules[repo.name][rule_id] = Rule(
            rule_id, spec.push_type, spec.branch, spec.location, spec.dockerfile_name, spec.tag
        )
        self.log.append(f"update {repo.name}#{rule_id} {spec.tag}")

    def start_build(
        self, repo: RepoInfo, rule_id: str, tag: str, *, known: frozenset[str] | None = None
    ) -> str | None:
        if len(self.running()) >= self.build_limit:
            raise AcrError(
                "StartRepoBuildByRule", "BUILD_CONCURRENCY_LIMIT_EXCEED", "", http_status=400
            )
        tag = self.rules[repo.name][rule_id].image_tag
        build_id = f"{repo.name}#{rule_id}/{len(self.builds)}"
        result = "FAILED" if tag in self.fail_tags else "SUCCESS"
        self.builds[build_id] = FakeBuild(build_id, repo.name, tag, self.polls, result, self.config)
        self.max_running = max(self.max_running, len(self.running()))
        self.log.append(f"start {repo.name}:{tag}")
        return build_id

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        return [
            Build(b.build_id, "BUILDING" if b.polls_left else b.result, b.tag)
            for b in reversed(self.builds.values())
            if b.repo == repo.name
        ]

    def build_status(self, repo: RepoInfo, build_id: str) -> str:
        build = self.builds[build_id]
        build.polls_left = max(0, build.polls_left - 1)
        return "BUILDING" if build.polls_left else build.result.lower()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def settings(**kw: object) -> AcrSettings:
    base: dict[str, object] = dict(
        namespace="mirrors",
        source=SourceSettings("octo/relay"),
        poll=PollSettings(interval=1.0, max_interval=4.0, timeout=1000),
    )
    return AcrSettings(**(base | kw))  # type: ignore[arg-type]


def wanted(tags: dict[str, int], cfg: AcrSettings) -> list[planner.WantedRepo]:
    lines = ["images:"]
    for source, n in tags.items():
        pins = ", ".join(f'"t{i}@{DIGEST_A}"' for i in range(n))
        lines += [f"  - source: {source}", f"    tags: [{pins}]"]
    ml = mirrors.parse(textwrap.dedent("\n".join(lines)), "mirrors/images.yaml")
    return planner.desired(ml, Lock(), cfg)


def run(
    fake: FakeAcr,
    cfg: AcrSettings,
    tags: dict[str, int],
    *,
    wait: bool = True,
    timeout: float = 1000,
    upstream: str | None = None,
) -> ApplyReport:
    clock = Clock()
    want = wanted(tags, cfg)
    upstream_config = (lambda *_: upstream) if upstream else None
    observed = observe(fake, cfg, want, upstream_config=upstream_config)
    the_plan = planner.plan(want, observed, cfg)
    return applier.run(
        fake,
        the_plan,
        want,
        observed,
        cfg,
        wait=wait,
        timeout=timeout,
        clock=clock,
        sleep=clock.sleep,
        upstream_config=upstream_config,
    )


def test_cap_and_rule_reuse() -> None:
    fake = FakeAcr()
    cfg = settings(rules_per_repo=2, max_concurrent_builds=3)
    report = run(fake, cfg, {"quay.io/a/x": 5, "quay.io/a/y": 2})
    assert report.ok, report.text()
    assert len(report.rows) == 7 and {r.status for r in report.rows} == {"SUCCESS"}
    assert fake.max_running <= 3
    assert all(len(r) <= 2 for r in fake.rules.values())
    # x's five tags went through two rules, each pointed at the next tag after its build ended.
    assert sum(1 for line in fake.log if line.startswith("update quay_a_x#")) == 3
    # Re-run: nothing to do.
    again = run(fake, cfg, {"quay.io/a/x": 5, "quay.io/a/y": 2})
    assert again.rows == [] and again.up_to_date == 7


def test_failed_build_does_not_stop_the_others() -> None:
    fake = FakeAcr(fail_tags={"t1"})
    report = run(fake, settings(), {"quay.io/a/x": 3})
    assert not report.ok
    assert {r.tag: r.status for r in report.rows} == {
        "t0": "SUCCESS",
        "t1": "FAILED",
        "t2": "SUCCESS",
    }
    assert "1 failed" in report.text() and "| **FAILED** |" in report.table().markdown()


def test_repo_setup_failure_is_reported_per_tag() -> None:
    fake = FakeAcr(fail_create_repo={"quay_a_x"})
    report = run(fake, settings(), {"quay.io/a/x": 2, "quay.io/a/y": 1})
    assert not report.ok
    assert {(r.repo, r.status) for r in report.rows} == {
        ("quay_a_x", "ERROR"),
        ("quay_a_y", "SUCCESS"),
    }
    assert any("REPO_LIMIT_EXCEED" in e for e in report.errors)


def test_limits_lower_than_settings_are_learned() -> None:
    fake = FakeAcr(rule_limit=1, build_limit=1)
    report = run(fake, settings(rules_per_repo=5, max_concurrent_builds=4), {"quay.io/a/x": 3})
    assert report.ok, report.text()
    assert fake.max_running == 1 and len(fake.rules["quay_a_x"]) == 1


def test_deadline_reports_timeouts() -> None:
    fake = FakeAcr(polls=1000)
    report = run(fake, settings(max_concurrent_builds=1), {"quay.io/a/x": 2}, timeout=10)
    assert not report.ok
    assert [r.status for r in report.rows] == ["TIMEOUT", "TIMEOUT"]


def test_without_wait_starts_and_returns() -> None:
    fake = FakeAcr()
    report = run(fake, settings(max_concurrent_builds=1), {"quay.io/a/x": 2}, wait=False)
    assert report.ok
    assert [r.status for r in report.rows] == ["STARTED", "QUEUED"]
    # The next run waits for the running build and starts the other: no tag built twice.
    report = run(fake, settings(max_concurrent_builds=1), {"quay.io/a/x": 2})
    assert report.ok and [r.action for r in report.rows] == ["wait", "build"]
    assert sorted(b.tag for b in fake.builds.values()) == ["t0", "t1"]


def test_report_text() -> None:
    report = ApplyReport(
        rows=[Row("nginx", "1.27", "build", "b1", "SUCCESS", 75.0, "missing")],
        done=["create repo nginx"],
        up_to_date=4,
    )
    text = report.text()
    assert text.splitlines()[0] == "create repo nginx"
    assert "nginx:1.27" in text and "1m15s" in text and "4 up to date" in text
    assert report.ok


def test_a_refused_name_says_which_setting_to_lower() -> None:
    # ACR's limit is 64 per ROS doc 135727, 30 per older pages: relay says what to change.
    fake = FakeAcr(repo_name_max=30)
    source = "quay.io/jetstack/cert-manager-controller"  # quay_jetstack_cert-manager-controller
    report = run(fake, settings(), {source: 1, "quay.io/a/y": 1})
    assert not report.ok
    (error,) = [e for e in report.errors if "PARAM_INVALID" in e]
    assert "lower naming.max_length in mirrors/relay.yaml below 37 (try 30)" in error
    assert {(r.repo, r.status) for r in report.rows} >= {("quay_a_y", "SUCCESS")}


OLD = "sha256:" + "0" * 64


def test_a_build_that_succeeds_with_the_wrong_image_is_built_once_more() -> None:
    """A build already running when apply began came from an older Dockerfile: ACR says
    SUCCESS, but the tag's config still differs from upstream. One fresh build fixes it."""
    fake = FakeAcr(config=OLD)
    assert run(fake, settings(), {"quay.io/a/x": 1}, wait=False).ok  # started, old commit
    fake.config = CFG  # the rule now builds the current Dockerfile
    report = run(fake, settings(), {"quay.io/a/x": 1}, upstream=CFG)
    assert report.ok, report.text()
    assert [(r.action, r.status) for r in report.rows] == [("build", "SUCCESS")]
    assert "rebuild: config 000000000000 differs" in report.rows[0].note
    assert [b.tag for b in fake.builds.values()] == ["t0", "t0"]


def test_a_build_still_wrong_after_one_rebuild_is_stale_not_delivered() -> None:
    fake = FakeAcr(config=OLD)
    report = run(fake, settings(), {"quay.io/a/x": 1}, upstream=CFG)
    assert not report.ok
    assert [r.status for r in report.rows] == ["STALE"]
    assert len(fake.builds) == 2  # bounded: one fresh build, not a loop


def test_a_repository_made_meanwhile_without_the_marker_is_never_adopted() -> None:
    """CreateRepo answers "already exists" for a repository someone made by hand between
    observing and applying: relay reads it, finds no marker, and leaves it alone."""
    fake = FakeAcr()
    cfg = settings()
    want = wanted({"quay.io/a/x": 1}, cfg)
    observed = observe(fake, cfg, want)
    the_plan = planner.plan(want, observed, cfg)
    fake.repos["quay_a_x"] = RepoInfo("mirrors", "quay_a_x", None, "hand-made", "")
    fake.rules["quay_a_x"] = {}
    clock = Clock()
    report = applier.run(
        fake, the_plan, want, observed, cfg, wait=True, timeout=100, clock=clock, sleep=clock.sleep
    )
    assert not report.ok
    assert any("not managed by relay" in e for e in report.errors), report.errors
    assert fake.repos["quay_a_x"].summary == "hand-made" and fake.builds == {}


def test_a_quota_refusal_is_not_already_exists() -> None:
    refusal = AcrError(
        "CreateRepo", "REPO_QUOTA", "you have already reached the maximum of 300 repositories"
    )
    assert refusal.limit_reached and not refusal.already_exists
    assert AcrError("CreateRepo", "REPO_ALREADY_EXIST", "repository already exists").already_exists
