"""The ACR stage's apply step: carry out a plan and watch the builds (observing is
relay.stages.acr.observe, the report relay.stages.acr.report).

Builds run under a concurrency cap, polled with a growing interval and an overall deadline. A
failed build is reported against its tag and the others carry on; a build found already running
for a tag (a crashed run, a manual start) is waited for, never started twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from relay.errors import OperationFailed
from relay.net import cancel
from relay.output.progress import NULL, Progress, Task
from relay.stages.acr.api import AcrClient
from relay.stages.acr.errors import AcrError
from relay.stages.acr.observe import UpstreamConfig, upstream_of
from relay.stages.acr.plan import (
    MARKER,
    Action,
    Job,
    Plan,
    WantedRepo,
    binding_for,
    build_reason,
    is_managed,
    summary_for,
)
from relay.stages.acr.report import (
    ERROR,
    QUEUED,
    SKIPPED,
    STALE,
    STARTED,
    TIMEOUT,
    ApplyReport,
    Row,
)
from relay.stages.acr.settings import AcrSettings
from relay.stages.acr.state import Observed, RepoInfo, RepoState, outcome

log = logging.getLogger(__name__)


# --- carrying out a plan -------------------------------------------------------------------------


@dataclass
class _Running:
    job: Job
    row: Row
    repo: RepoInfo
    started: float
    build_id: str | None


class _Run:
    """One apply: setup actions, then the build scheduler. Holds the run's mutable state."""

    def __init__(
        self,
        client: AcrClient,
        settings: AcrSettings,
        wanted: list[WantedRepo],
        observed: Observed,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        progress: Progress = NULL,
        upstream_config: UpstreamConfig | None = None,
    ) -> None:
        self.client = client
        self.upstream_config = upstream_config
        # Tags built a second time because the first SUCCESS left the image still differing.
        self.rebuilt: set[tuple[str, str]] = set()
        self.progress = progress
        self.bar: Task | None = None
        self.settings = settings
        self.wanted = {w.name: w for w in wanted}
        self.observed = observed
        self.clock = clock
        self.sleep = sleep
        self.report = ApplyReport(
            stats=client.stats, registry=settings.registry, namespace=observed.namespace
        )
        self.repos: dict[str, RepoInfo] = {n: s.info for n, s in observed.repos.items()}
        self.failed_repos: dict[str, str] = {}
        # Build ids of each repository known before a start, to tell the new build from old ones
        # when the start does not answer with an id (UNCONFIRMED for personal:
        # docs/vendors/acr.md#personal-edition-operations).
        self.known_builds: dict[str, set[str]] = {
            n: {b.build_id for b in s.builds or []} for n, s in observed.repos.items()
        }
        # Slots are per repository: (repo, slot) -> rule id, and the slots with a build running.
        self.slot_rule: dict[tuple[str, str], str] = {}
        self.busy: set[tuple[str, str]] = set()
        self.running: list[_Running] = []
        self.queue: list[tuple[Job, Row]] = []
        self.cap = settings.max_concurrent_builds

    # -- setup ------------------------------------------------------------------------------

    def setup(self, plan: Plan) -> None:
        namespace = [a for a in plan.setup if a.kind == "create-namespace"]
        for action in namespace:
            try:
                self.client.create_namespace(action.target)
            except AcrError as exc:
                if not exc.already_exists:
                    raise OperationFailed(
                        f"cannot create namespace {action.target}: {exc}"
                    ) from None
            self.report.done.append(str(action))
        per_repo: dict[str, list[Action]] = {}
        for action in plan.setup:
            if action.kind != "create-namespace":
                per_repo.setdefault(action.target, []).append(action)
        # Repositories are set up in parallel (a first run creates hundreds); the report keeps
        # the plan's order.
        with ThreadPoolExecutor(max_workers=self.settings.workers) as pool:
            results = pool.map(lambda item: self._setup_repo(*item), per_repo.items())
            for name, done, error in results:
                self.report.done.extend(done)
                if error is not None:
                    self.failed_repos[name] = error
                    self.report.errors.append(f"{name}: {error}")

    def _setup_repo(self, name: str, actions: list[Action]) -> tuple[str, list[str], str | None]:
        binding = binding_for(self.settings)
        want = self.wanted.get(name)
        done: list[str] = []
        for action in actions:
            try:
                if action.kind == "create-repo":
                    assert want is not None
                    # Created marked as relay's but not as bound: the binding is a second call
                    # (the personal RepoSource block is UNCONFIRMED, the enterprise one binds
                    # after the create: docs/vendors/acr.md#github-source-binding-and-overseas-
                    # build), and a run stopped before it must leave a repository the next
                    # plan binds. The bound marker follows the binding.
                    try:
                        info = self.client.create_repo(
                            self.observed.namespace,
                            name,
                            summary=summary_for(want.source, None),
                            detail=want.detail,
                            binding=binding,
                        )
                    except AcrError as exc:
                        # A create retried after a lost answer, or a run racing this one: the
                        # create that landed may not have bound the source, so bind it here.
                        # Only a repository carrying relay's marker is taken on: relay never
                        # touches one without it (someone made it meanwhile, by hand).
                        if not exc.already_exists:
                            raise
                        found = self.client.get_repo(self.observed.namespace, name)
                        if found is None or not is_managed(found):
                            return (
                                name,
                                done,
                                f"{action}: repository {name} already exists but is not "
                                f"managed by relay (no '{MARKER}' in its summary); left alone",
                            )
                        info = found
                        self.client.bind_source(info, binding)
                    self.repos[name] = info
                    self.client.update_repo(info, summary=want.summary, detail=want.detail)
                elif action.kind == "bind-source":
                    assert want is not None
                    info = self.repos[name]
                    self.client.bind_source(info, binding)
                    # The marker records the binding, so the next run need not read it back.
                    self.client.update_repo(info, summary=want.summary, detail=want.detail)
                elif action.kind == "delete-rule":
                    self.client.delete_rule(self.repos[name], action.rule_id)
                elif action.kind == "delete-repo":
                    self.client.delete_repo(self.repos[name])
                done.append(str(action))
            except AcrError as exc:
                hint = _name_hint(name, exc) if action.kind == "create-repo" else ""
                return name, done, f"{action}: {exc}{hint}"
        return name, done, None

    # -- builds -----------------------------------------------------------------------------

    def builds(self, plan: Plan, *, wait: bool, deadline: float) -> None:
        for skipped in plan.skipped:
            self.report.rows.append(
                Row(skipped.repo, skipped.tag, "skip", status=SKIPPED, note=skipped.reason)
            )
        for job in plan.jobs:
            row = Row(job.repo, job.tag, "wait" if job.running_build else "build", note=job.reason)
            self.report.rows.append(row)
            if job.repo in self.failed_repos:
                row.status, row.note = ERROR, "repository setup failed (see above)"
                continue
            if not job.slot.startswith(("new:", "build:")):
                self.slot_rule[(job.repo, job.slot)] = job.slot
            if job.running_build is not None:
                row.build_id, row.status = job.running_build, "BUILDING"
                self.running.append(
                    _Running(job, row, self.repos[job.repo], self.clock(), job.running_build)
                )
                self.busy.add((job.repo, job.slot))
            else:
                self.queue.append((job, row))

        if wait and (self.queue or self.running):
            self.bar = self.progress.task("builds", len(self.queue) + len(self.running))
        interval = self.settings.poll.interval
        while True:
            self._start_ready()
            if not wait or not self.running:
                break
            left = deadline - self.clock()
            if left <= 0:
                break
            self.sleep(min(interval, left))
            if self._poll():
                interval = self.settings.poll.interval
            else:
                interval = min(interval * 1.5, self.settings.poll.max_interval)
        if self.bar is not None:
            self.bar.finish()
        for run in self.running:
            if wait:
                run.row.status = TIMEOUT
                run.row.note = "timed out waiting; the build may still finish"
            elif run.row.status == "PENDING":
                run.row.status = STARTED
        for _, row in self.queue:
            row.status = TIMEOUT if wait else QUEUED
            if not wait:
                row.note += "; run apply again (or with --wait)"

    def _start_ready(self) -> None:
        """Start what the cap and the slots allow. Passes repeat while they change something,
        so a job moved to another rule (ACR refused a new one) starts in the same round."""
        while self.queue and len(self.running) < self.cap and self._start_pass():
            pass

    def _start_pass(self) -> bool:
        changed = False
        for item in list(self.queue):
            if len(self.running) >= self.cap:
                break
            job, row = item
            if (job.repo, job.slot) in self.busy:
                continue
            self.queue.remove(item)
            changed = True
            repo = self.repos[job.repo]
            try:
                rule_id = self._rule_for(job, repo)
                build_id = self.client.start_build(
                    repo, rule_id, job.tag, known=self._known_before(job.repo)
                )
            except AcrError as exc:
                if exc.limit_reached and self._requeue(job, row, exc):
                    if exc.action != "CreateRepoBuildRule":
                        return False  # the cap is above ACR's: wait for a build to end
                    continue
                row.status, row.note = ERROR, str(exc)
                log.error("%s:%s: %s", job.repo, job.tag, exc)
                continue
            self.busy.add((job.repo, job.slot))
            row.status = "PENDING"
            run = _Running(job, row, repo, self.clock(), build_id)
            if build_id is None:
                self._discover(run)
            else:
                self.known_builds.setdefault(job.repo, set()).add(build_id)
            row.build_id = run.build_id or "?"
            self.running.append(run)
            log.info("%s:%s: build %s started", job.repo, job.tag, row.build_id)
        return changed

    def _known_before(self, name: str) -> frozenset[str] | None:
        """The repository's builds before this start, when they are all known: it was read
        (observation reads builds for every repository with a tag to build) or made by this
        run. None: unknown, and a lost start is then recognised by a running build only."""
        state = self.observed.repos.get(name)
        if state is not None and state.builds is None:
            return None
        return frozenset(self.known_builds.get(name, set()))

    def _rule_for(self, job: Job, repo: RepoInfo) -> str:
        if job.rule_op == "add":
            rule_id = self.client.create_rule(repo, job.spec)
            if rule_id is None:  # no id in the answer: find the rule by what it builds
                found = [
                    r.rule_id
                    for r in self.client.list_rules(repo)
                    if r.matches(job.spec, check_platforms=False)
                ]
                if not found:
                    raise AcrError("CreateRepoBuildRule", "NoRule", "the new rule is not listed")
                rule_id = found[0]
            self.slot_rule[(job.repo, job.slot)] = rule_id
            return rule_id
        rule_id = self.slot_rule.get((job.repo, job.slot))
        if rule_id is None:
            raise AcrError("build", "NoRule", "the build rule this tag shares was not created")
        if job.rule_op == "update":
            self.client.update_rule(repo, rule_id, job.spec)
        return rule_id

    def _requeue(self, job: Job, row: Row, exc: AcrError) -> bool:
        """ACR said a limit is reached (its numbers are UNCONFIRMED, so a setting may be too
        high). A build: wait for one of those running, then start again. A rule: move this job,
        and the jobs queued behind it on the rule it could not create, onto an existing rule."""
        if exc.action in ("StartRepoBuildByRule", "CreateBuildRecordByRule"):
            if not self.running:
                return False
            self.cap = max(1, len(self.running))
            log.warning(
                "ACR refused another build (%s); waiting for one of the %d running "
                "(lower acr.max_concurrent_builds)",
                exc.code,
                len(self.running),
            )
            # Its rule is in place; point it here again on the retry, as a job sharing the rule
            # may have moved it meanwhile. First in line, so the rule's order is kept.
            self.queue.insert(0, (replace(job, rule_op="update" if job.rule_op else ""), row))
            return True
        if exc.action == "CreateRepoBuildRule":
            existing = [slot for repo, slot in self.slot_rule if repo == job.repo]
            if not existing:
                return False
            log.warning(
                "%s: ACR refused another build rule (%s); reusing one (lower acr.rules_per_repo)",
                job.repo,
                exc.code,
            )
            target = existing[0]
            moved = [(replace(job, slot=target, rule_op="update", reused=True), row)]
            for item in list(self.queue):
                other, other_row = item
                if other.repo == job.repo and other.slot == job.slot:
                    self.queue.remove(item)
                    moved.append((replace(other, slot=target, rule_op="update"), other_row))
            self.queue.extend(moved)
            return True
        return False

    def _discover(self, run: _Running) -> None:
        """Find the build a start made when its answer carried no id."""
        known = self.known_builds.setdefault(run.job.repo, set())
        try:
            builds = self.client.list_builds(run.repo)
        except AcrError as exc:
            log.warning("%s: cannot list builds: %s", run.job.repo, exc)
            return
        for build in builds:
            if build.tag == run.job.tag and build.build_id not in known:
                run.build_id = run.row.build_id = build.build_id
                known.add(build.build_id)
                return

    def _poll(self) -> bool:
        """Read each running build's status once; whether any finished."""
        finished = False
        for run in list(self.running):
            if run.build_id is None:
                self._discover(run)
                if run.build_id is None:
                    continue
            try:
                status = self.client.build_status(run.repo, run.build_id)
            except AcrError as exc:
                log.warning("%s:%s: cannot read build status: %s", run.job.repo, run.job.tag, exc)
                continue
            result = outcome(status)
            run.row.status = status.upper() or "RUNNING"
            if result == "running":
                continue
            run.row.duration = self.clock() - run.started
            self.running.remove(run)
            self.busy.discard((run.job.repo, run.job.slot))
            finished = True
            if result == "success" and self._still_differs(run):
                continue  # built again, or reported STALE
            if self.bar is not None:
                self.bar.advance()
            if result == "failed":
                log.error("%s:%s: build %s %s", run.job.repo, run.job.tag, run.build_id, status)
            else:
                log.info("%s:%s: build %s succeeded", run.job.repo, run.job.tag, run.build_id)
        return finished

    def _still_differs(self, run: _Running) -> bool:
        """After ACR said SUCCESS: read the tag's image again, as observing does, and decide as
        the plan does. A build's status says only that *a* build ended well; one already
        running when this apply began (an older commit's Dockerfile) or started from a rule
        someone moved ends SUCCESS with the wrong image. Such a tag is built once more (a fresh
        build of the rule as it is now); if it still differs it is reported STALE, never
        delivered. True when the row is not finished (re-queued) or is STALE."""
        name, tag = run.job.repo, run.job.tag
        want = self.wanted.get(name)
        wt = next((t for t in want.tags if t.tag == tag), None) if want else None
        if want is None or wt is None:
            return False
        try:
            images = self.client.list_images(run.repo)
        except AcrError as exc:
            log.warning("%s:%s: cannot read the built image back: %s", name, tag, exc)
            return False
        state = self.observed.repos.setdefault(name, RepoState(run.repo))
        state.images = images
        key = (want.source.name, tag)
        if self.observed.upstream.get(key) is None and self.upstream_config is not None:
            self.observed.upstream[key] = upstream_of(self.upstream_config, want, wt)
        reason = build_reason(want, wt, self.observed)
        if reason is None:
            return False
        if (name, tag) in self.rebuilt:
            run.row.status, run.row.note = STALE, f"built, but {reason}"
            log.error("%s:%s: build %s succeeded, but %s", name, tag, run.build_id, reason)
            if self.bar is not None:
                self.bar.advance()
            return True
        self.rebuilt.add((name, tag))
        log.warning(
            "%s:%s: build %s succeeded, but %s; building once more", name, tag, run.build_id, reason
        )
        known = (name, run.job.slot) in self.slot_rule
        slot = run.job.slot if known else f"new:{tag}"
        job = replace(
            run.job,
            slot=slot,
            rule_op="update" if known else "add",
            reason=f"rebuild: {reason}",
            running_build=None,
        )
        run.row.action, run.row.status, run.row.note = "build", "PENDING", job.reason
        self.queue.append((job, run.row))
        return True


def run(
    client: AcrClient,
    plan: Plan,
    wanted: list[WantedRepo],
    observed: Observed,
    settings: AcrSettings,
    *,
    wait: bool,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = cancel.pause,
    progress: Progress = NULL,
    upstream_config: UpstreamConfig | None = None,
) -> ApplyReport:
    """Carry out `plan`. Raises only when the namespace cannot be made; everything else is
    reported per repository or per tag. ``progress`` counts the builds that ended (--wait).
    ``upstream_config`` answers for tags whose upstream config was not read while observing,
    when a finished build's image is checked."""
    start = clock()
    state = _Run(
        client,
        settings,
        wanted,
        observed,
        clock=clock,
        sleep=sleep,
        progress=progress,
        upstream_config=upstream_config,
    )
    state.setup(plan)
    state.builds(plan, wait=wait, deadline=start + timeout)
    state.report.up_to_date = plan.up_to_date
    state.report.elapsed = clock() - start
    return state.report


def _name_hint(name: str, exc: AcrError) -> str:
    """When ACR refuses a repository name, which setting to change. ACR's own limit is
    unconfirmed (2-64 with '.' per ROS doc 135727, 2-30 without '.' per doc 72396:
    docs/vendors/acr.md#name-rules), so relay's defaults may be too generous for an account."""
    text = f"{exc.code} {exc.message}".lower()
    if "name" not in text or exc.already_exists:
        return ""
    advice = (
        f"; ACR refused the repository name '{name}' ({len(name)} characters): lower "
        f"naming.max_length in mirrors/relay.yaml below {len(name)} (try 30), run "
        "`relay validate` for the names to give"
    )
    if "." in name:
        advice += ", and give the entry a name: without '.'"
    return advice
