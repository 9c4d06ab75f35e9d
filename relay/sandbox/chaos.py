"""Chaos across the pipeline: random faults on every server relay talks to, SIGKILLs at random
points of relay's own processes, re-runs until a clean pass, then an exact account.

One :class:`Chaos` run, on the sandbox (relay.sandbox.stack) with random faults on
(``rate`` of the requests relay makes meet a 429, a 5xx, a 5xx after the work was done, a
connection reset before or after the work, or latency: relay.sandbox.common.faults):

1. a pull request adds ``images`` images and is merged (as `make demo` does, faults off);
2. the pipeline runs as CI runs it, each step a separate `relay` process: ``lock`` →
   ``generate`` → commit and push → ``acr apply --wait --delivered FILE`` → ``harbor apply``
   → ``harbor replicate --wait --missing --only <the names delivered>`` (as
   .github/workflows/harbor.yml runs it) → ``verify --output json``;
3. while kills remain, a run SIGKILLs one step of ``KILLABLE`` (drawn evenly) with
   ``kill_chance``, at a point drawn from a seeded generator: after the k-th request that step
   makes of its server (the upstream front, the ACR API, the Harbor API), or after t seconds
   for a step that makes (almost) none, as ``generate`` (k and t up to what the step took the
   last time it ran to its end; a step that ends before its point is not killed);
4. a killed or failed step ends that run; the next run starts again from ``lock`` (a re-run of
   the workflow), until one run passes every step (``converged``) or ``max_runs`` is reached;
5. with ``moves``, that many tags then move upstream and 2-4 happen again with
   ``lock --update`` (the scheduled run), with a fresh kill budget;
6. the world is then read directly (the emulators' state, the registries, the repository) and
   checked (:meth:`Chaos.check`): nothing lost, nothing duplicated, and the last report exact.

What "duplicated" means, exactly: ACR holds one repository per entry and one build rule per
tag; each (repository, tag) was built exactly once per digest the lock took for it (once, and
once more for a tag that moved upstream: ``moves``); a kill or a retry must find the build
already started instead of starting another; Harbor holds one ali-acr endpoint, the two
policies once each, the project once; and no replicate run started more than one execution.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relay.output.tables import Column, Table
from relay.sandbox.common.faults import FAULT_KINDS, RandomFaults
from relay.sandbox.demo import PROJECT, Demo
from relay.sandbox.stack import (
    ACR_NAMESPACE,
    ACR_TOKEN_USER,
    GITHUB,
    HARBOR_ADMIN,
    SeedImage,
    seed_images,
)

STEPS = ("lock", "generate", "commit", "acr", "harbor-apply", "harbor-replicate", "verify")
KILLABLE = ("lock", "generate", "acr", "harbor-apply", "harbor-replicate")
REGISTRY_NAME = "relay-acr"  # harbor.registry_name's default
POLICY = f"relay-{ACR_NAMESPACE}"  # harbor.policy_name's default
FAST_POLICY = f"{POLICY}-now"
_RETRY_LINE = re.compile(r"; retry \d+ of \d+ in ")
_STRAY_TMP = re.compile(r"\A\..+\.relay-[0-9]+\.tmp\Z")  # relay.files.STRAY_TMP


# Upstream names for N images, one tag each; past the list a suffix makes more.
@dataclass(frozen=True)
class ChaosConfig:
    images: int = 3
    seed: int = 1
    rate: float = 0.2  # the share of relay's requests that meet a fault
    kinds: tuple[str, ...] = FAULT_KINDS
    kill_chance: float = 1.0  # that a run kills one of its steps, while kills remain
    max_kills: int = 3
    max_runs: int = 10  # per phase
    step_timeout: float = 600.0
    # Upstream tags that move once the pipeline has converged: it then runs again, as the
    # scheduled run does (`relay lock --update`), under the same faults and with its own kills.
    moves: int = 0


@dataclass
class Attempt:
    run: int
    step: str
    code: int | None  # None: killed by the driver
    seconds: float
    killed_at: str = ""  # "after 7 ACR requests", "after 0.61 s"
    retries: int = 0  # relay's own retries, from its log lines
    stderr: str = ""
    kill_missed: bool = False  # a kill was drawn, but the step ended before its point

    @property
    def killed(self) -> bool:
        return self.code is None

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass
class ChaosResult:
    config: ChaosConfig
    attempts: list[Attempt] = field(default_factory=list)
    runs: int = 0
    converged: bool = False
    seconds: float = 0.0  # from the first step to the end of the clean run
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the last `relay verify --output json`
    builds: int = 0  # ACR builds started, all runs
    executions: int = 0  # Harbor executions started, all runs

    @property
    def kills(self) -> int:
        return sum(1 for a in self.attempts if a.killed)

    @property
    def failures(self) -> int:
        return sum(1 for a in self.attempts if not a.killed and not a.ok)

    @property
    def retries(self) -> int:
        return sum(a.retries for a in self.attempts)

    @property
    def faults_injected(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.faults.values())

    @property
    def ok(self) -> bool:
        return self.converged and all(c.ok for c in self.checks)

    def kills_by_step(self) -> dict[str, int]:
        return dict(Counter(a.step for a in self.attempts if a.killed))

    def problems(self) -> list[str]:
        out = [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]
        if not self.converged:
            out.insert(0, f"did not converge in {self.runs} runs")
        return out

    def story(self) -> str:
        """One line per step attempt, for a failing test or a curious reader."""
        lines = []
        for a in self.attempts:
            state = f"killed {a.killed_at}" if a.killed else f"exit {a.code}"
            if a.kill_missed:
                state += " (ended before its kill)"
            lines.append(
                f"run {a.run} {a.step:<17} {state:<28} {a.seconds:6.1f}s retries {a.retries}"
            )
            if not a.killed and not a.ok and a.stderr:
                lines += [f"    {line}" for line in a.stderr.strip().splitlines()[-6:]]
        return "\n".join(lines)


@dataclass(frozen=True)
class _KillPoint:
    requests: int | None = None  # after this many requests of the step's server
    seconds: float | None = None  # or after this long

    def describe(self, server: str) -> str:
        if self.requests is not None:
            return f"after {self.requests} {server} requests"
        return f"after {self.seconds:.2f} s"


class Chaos:
    """``Chaos(base, source_repo, config).run()`` → :class:`ChaosResult`; everything it starts
    is under ``base`` and stopped by :meth:`stop` (``run`` stops it unless ``keep``)."""

    def __init__(self, base: Path, source_repo: Path, config: ChaosConfig) -> None:
        self.base = base
        self.config = config
        self.demo = Demo(base / "demo", source_repo, io.StringIO())
        self.sandbox = self.demo.sandbox
        self.repo = self.demo.repo
        self.logs = base / "logs"
        self.images = seed_images(config.images)
        self.rng = random.Random(config.seed)
        self.result = ChaosResult(config)
        self._kills_left = config.max_kills
        self.targets: dict[str, str] = {}  # source name -> target name, from the list
        self._victim: str | None = None  # the step this run kills
        self._where = 0.0  # where in it: a share of its span
        self.moved: set[tuple[str, str]] = set()  # (source, tag) moved upstream
        # The requests and seconds a step took the last time it ran to its end: where kills are
        # drawn from. Before a step has finished once, these guesses per image stand in.
        n = max(1, config.images)
        self._span: dict[str, tuple[int, float]] = {
            "lock": (3 * n, 1.0),
            "generate": (0, 0.4),
            "acr": (12 * n, 5.0),
            "harbor-apply": (12, 1.0),
            "harbor-replicate": (10 + 2 * n, 3.0),
        }

    # --- the whole run ------------------------------------------------------------------------

    def run(self, *, keep: bool = False) -> ChaosResult:
        try:
            self.setup()
            self.loop()
            self.result.faults = self.sandbox.faults_injected()
            self.sandbox.set_faults(None)  # the checks read the world as it is
            self.result.checks = self.check()
        finally:
            if not keep:
                self.stop()
        return self.result

    def setup(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        # The pull request's validate and plan run in this process (as `make demo` runs them):
        # their output and the logging they set up stay out of the chaos run's own.
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                self.demo.start(self.images)
                self.demo.scratch_repository()
                self.demo.pull_request(self.images)
            finally:
                root.handlers[:] = handlers
                root.setLevel(level)
        from relay.commands.common import load

        _, mirrors = load(self.repo)
        self.targets = {entry.source.name: entry.target for entry in mirrors.entries}
        self.sandbox.set_faults(
            RandomFaults(self.config.rate, self.config.seed, tuple(self.config.kinds))
        )

    def stop(self) -> None:
        self.demo.stop()

    def loop(self) -> None:
        """Run until a clean pass; with ``moves``, move tags upstream and do it again."""
        started = time.monotonic()
        number = 0
        for phase in range(2 if self.config.moves else 1):
            if phase:
                self._move()
                self._kills_left = self.config.max_kills
            for _ in range(self.config.max_runs):
                number += 1
                self.result.runs = number
                if self.one_run(number, update=bool(phase)):
                    break
            else:
                self.result.converged = False
                break
        else:
            self.result.converged = True
        self.result.seconds = time.monotonic() - started

    def _move(self) -> None:
        """Upstream re-pushes ``moves`` tags with other content (seeded choice)."""
        chosen = self.rng.sample(list(self.images), min(self.config.moves, len(self.images)))
        self.sandbox.seed(tuple(SeedImage(i.name, i.tag, seed=f"moved:{i.name}") for i in chosen))
        self.moved = {(i.name, i.tag) for i in chosen}

    def one_run(self, number: int, *, update: bool = False) -> bool:
        """One pass of the pipeline; whether every step passed. ``update``: the scheduled
        run's `relay lock --update`, which takes tags that moved."""
        delivered_file = self.logs / f"run{number}-delivered.txt"
        delivered_file.unlink(missing_ok=True)
        self._victim = self._draw_victim()
        steps: list[tuple[str, Callable[[], Attempt | None]]] = [
            (
                "lock",
                lambda: self.relay(number, "lock", ["lock", "--update"] if update else ["lock"]),
            ),
            ("generate", lambda: self.relay(number, "generate", ["generate"])),
            ("commit", lambda: self.commit(number)),
            (
                "acr",
                lambda: self.relay(
                    number, "acr", ["acr", "apply", "--wait", "--delivered", str(delivered_file)]
                ),
            ),
            ("harbor-apply", lambda: self.relay(number, "harbor-apply", ["harbor", "apply"])),
            ("harbor-replicate", lambda: self.replicate(number, delivered_file)),
            ("verify", lambda: self.verify(number)),
        ]
        for _, action in steps:
            attempt = action()
            if attempt is not None and not attempt.ok:
                return False
        return True

    # --- steps --------------------------------------------------------------------------------

    def relay(self, number: int, step: str, args: Sequence[str]) -> Attempt:
        """One relay command as its own process; maybe SIGKILLed at a drawn point."""
        kill = self._draw_kill(step)
        counter = self._counter(step)
        before = counter() if counter is not None else 0
        out = self.logs / f"run{number}-{step}.out"
        err = self.logs / f"run{number}-{step}.err"
        started = time.monotonic()
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "relay", *args, "--repo", str(self.repo)],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=self._env(),
                start_new_session=True,  # its own group: the kill reaches anything it started
            )
            killed = False
            deadline = started + self.config.step_timeout
            while process.poll() is None:
                now = time.monotonic()
                due = kill is not None and (
                    (kill.requests is not None and counter is not None)
                    and counter() - before >= kill.requests
                    or (kill.seconds is not None and now - started >= kill.seconds)
                )
                if due or now > deadline:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    killed = due
                    break
                time.sleep(0.005)
        seconds = time.monotonic() - started
        text = err.read_text(errors="replace")
        attempt = Attempt(
            number,
            step,
            None if killed else process.returncode,
            seconds,
            retries=len(_RETRY_LINE.findall(text)),
            stderr=text,
        )
        if killed:
            assert kill is not None
            self._kills_left -= 1
            attempt.killed_at = kill.describe(self._server(step))
        elif attempt.ok and step in self._span:
            # What the step took this time is what its re-run will take (a re-run is often a
            # no-op, much shorter than the first run): kill points are drawn within it.
            self._span[step] = (counter() - before if counter is not None else 0, seconds)
            attempt.kill_missed = kill is not None
        self.result.attempts.append(attempt)
        return attempt

    def commit(self, number: int) -> Attempt:
        """What CI does between generate and the delivery: commit and push what changed."""
        started = time.monotonic()
        self.demo.git("add", "--all", "mirrors")
        if self.demo.git("diff", "--cached", "--quiet", check=False).returncode != 0:
            self.demo.git("commit", "--quiet", "-m", f"mirrors: lock and regenerate (run {number})")
        self.demo.git("push", "--quiet", "github", "HEAD:main")
        attempt = Attempt(number, "commit", 0, time.monotonic() - started)
        self.result.attempts.append(attempt)
        return attempt

    def replicate(self, number: int, delivered_file: Path) -> Attempt:
        """The Harbor workflow's fast path (.github/workflows/harbor.yml): what the delivery
        built, and whatever Harbor lacks."""
        names = delivered_file.read_text().split() if delivered_file.exists() else []
        only = ["--only", *names] if names else []
        return self.relay(
            number, "harbor-replicate", ["harbor", "replicate", "--wait", "--missing", *only]
        )

    def verify(self, number: int) -> Attempt:
        attempt = self.relay(number, "verify", ["verify", "--output", "json"])
        try:
            report = json.loads((self.logs / f"run{number}-verify.out").read_text())
        except ValueError:
            report = None
        if attempt.code in (0, 1):
            self.result.report = report if isinstance(report, dict) else None
        return attempt

    # --- kills --------------------------------------------------------------------------------

    def _draw_victim(self) -> str | None:
        """Which step this run kills, if any: one of KILLABLE, evenly, with kill_chance while
        kills remain. Three draws per run whatever happens, so the draws of later runs do not
        depend on how earlier ones went."""
        roll, pick, self._where = self.rng.random(), self.rng.random(), self.rng.random()
        if self._kills_left <= 0 or roll >= self.config.kill_chance:
            return None
        return KILLABLE[min(int(pick * len(KILLABLE)), len(KILLABLE) - 1)]

    def _draw_kill(self, step: str) -> _KillPoint | None:
        if step != self._victim:
            return None
        requests, seconds = self._span[step]
        if requests >= 3:  # between two requests of a sequence: where interruptions hurt
            return _KillPoint(requests=1 + int(self._where * requests))
        # A step that talks to no server (generate), or hardly (a no-op lock): by the clock.
        return _KillPoint(seconds=0.05 + self._where * 0.95 * seconds)

    def _counter(self, step: str) -> Callable[[], int] | None:
        sandbox = self.sandbox
        if step == "lock":
            front = sandbox.upstream_front
            assert front is not None
            return lambda: len(front.calls)
        if step == "acr":
            acr = sandbox.acr
            assert acr is not None
            return lambda: len(acr.state.calls)
        if step in ("harbor-apply", "harbor-replicate"):
            harbor = sandbox.harbor
            assert harbor is not None
            return lambda: len(harbor.state.calls)
        return None

    @staticmethod
    def _server(step: str) -> str:
        return {"lock": "upstream", "acr": "ACR"}.get(step, "Harbor")

    def _env(self) -> dict[str, str]:
        # Nothing from a CI runner's environment may reach the steps (a job summary, a token).
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RELAY_"))}
        keep.pop("REGISTRY_AUTH_FILE", None)
        return {**keep, **self.sandbox.env()}

    # --- the account --------------------------------------------------------------------------

    def check(self) -> list[CheckResult]:
        checks: list[CheckResult] = []

        def add(name: str, problems: list[str], fine: str) -> None:
            checks.append(CheckResult(name, not problems, "; ".join(problems) or fine))

        lock = self._lock_entries()
        want = {(self.targets[image.name], image.tag) for image in self.images}
        add("lock", self._check_lock(lock), f"{len(lock)} entries, each upstream's digest")
        add("files", self._check_files(), "no stray or uncommitted file")
        acr = self._acr_world()
        add("acr repositories", self._check_acr_repos(acr, want), f"{len(want)}, one per entry")
        add("acr rules", self._check_acr_rules(acr, want), "one per tag")
        builds, build_problems = self._check_acr_builds(want)
        add("acr builds", build_problems, f"{builds} builds, one per digest locked")
        digests, image_problems = self._check_images(lock)
        add("images", image_problems, "ACR and Harbor hold upstream's image for every entry")
        add(
            "harbor objects",
            self._check_harbor_objects(),
            "one endpoint, two policies, one project",
        )
        add("harbor executions", self._check_executions(), "at most one per replicate run")
        add("report", self._check_report(lock, digests), "verify's JSON matches the world")
        return checks

    def _lock_entries(self) -> dict[tuple[str, str], dict[str, Any]]:
        entries: dict[tuple[str, str], dict[str, Any]] = {}
        path = self.repo / "mirrors/images.lock"
        for line in path.read_text().splitlines()[1:] if path.exists() else []:
            record = json.loads(line)
            entries[(record["source"], record["tag"])] = record
        return entries

    def _check_lock(self, lock: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
        problems = []
        want = {(image.name, image.tag) for image in self.images}
        for key in sorted(want - set(lock)):
            problems.append(f"{key[0]}:{key[1]} is not locked")
        for key in sorted(set(lock) - want):
            problems.append(f"{key[0]}:{key[1]} is locked but not listed")
        for key in sorted(want & set(lock)):
            pushed = self.sandbox.pushed[f"{key[0]}:{key[1]}"].digest
            if lock[key]["digest"] != pushed:
                problems.append(
                    f"{key[0]}:{key[1]} locked {lock[key]['digest']}, upstream {pushed}"
                )
        return problems

    def _check_files(self) -> list[str]:
        problems = []
        for path in sorted((self.repo / "mirrors").rglob("*")):
            if _STRAY_TMP.fullmatch(path.name):
                problems.append(f"{path.relative_to(self.repo)} left behind")
        status = self.demo.git("status", "--porcelain", "--untracked-files=all", "mirrors")
        problems += [f"not committed: {line}" for line in status.stdout.splitlines()]
        tracked = self.demo.git("ls-files", "mirrors").stdout.split()
        problems += [f"committed: {p}" for p in tracked if _STRAY_TMP.fullmatch(Path(p).name)]
        check = subprocess.run(
            [sys.executable, "-m", "relay", "generate", "--check", "--repo", str(self.repo)],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=120,
        )
        if check.returncode != 0:
            problems.append(f"generate --check: exit {check.returncode}: {check.stdout[-300:]}")
        return problems

    def _acr_world(self) -> list[Any]:
        acr = self.sandbox.acr
        assert acr is not None
        return [r for r in acr.state.repos.values() if r.namespace == ACR_NAMESPACE]

    @staticmethod
    def _check_acr_repos(repos: list[Any], want: set[tuple[str, str]]) -> list[str]:
        names = Counter(r.name for r in repos)
        wanted = {target for target, _ in want}
        problems = [f"{n} exists {c} times" for n, c in sorted(names.items()) if c > 1]
        problems += [f"{n} missing" for n in sorted(wanted - set(names))]
        problems += [f"{n} not wanted" for n in sorted(set(names) - wanted)]
        for repo in repos:
            source = repo.source
            if source is None or source.owner_repo != GITHUB or not source.oversea:
                problems.append(f"{repo.name}: source not bound to {GITHUB} with overseas build")
        return problems

    @staticmethod
    def _check_acr_rules(repos: list[Any], want: set[tuple[str, str]]) -> list[str]:
        problems = []
        tags_of: dict[str, set[str]] = {}
        for target, tag in want:
            tags_of.setdefault(target, set()).add(tag)
        for repo in repos:
            built = Counter(rule.image_tag for rule in repo.rules.values())
            for tag, count in sorted(built.items()):
                if count > 1:
                    problems.append(f"{repo.name}: {count} rules build {tag}")
            for tag in sorted(tags_of.get(repo.name, set()) - set(built)):
                problems.append(f"{repo.name}: no rule builds {tag}")
        return problems

    def _check_acr_builds(self, want: set[tuple[str, str]]) -> tuple[int, list[str]]:
        acr = self.sandbox.acr
        assert acr is not None
        builds = [b for b in acr.state.builds.values() if b.namespace == ACR_NAMESPACE]
        self.result.builds = len(builds)
        per = Counter((b.repo_name, b.image_tag) for b in builds)
        # One build per digest the lock took: the first, and one more for a tag that moved.
        moved = {(self.targets[source], tag) for source, tag in self.moved}
        justified = {key: 2 if key in moved else 1 for key in want}
        problems = [
            f"{repo}:{tag} built {count} times, {justified.get((repo, tag), 0)} justified"
            for (repo, tag), count in sorted(per.items())
            if count > justified.get((repo, tag), 0)
        ]
        problems += [
            f"{repo}:{tag} built {per[(repo, tag)]} times, {count} needed"
            for (repo, tag), count in sorted(justified.items())
            if 0 < per[(repo, tag)] < count
        ]
        problems += [f"{repo}:{tag} never built" for repo, tag in sorted(want - set(per))]
        problems += [
            f"{b.repo_name}:{b.image_tag} build {b.build_id} ended {b.status}"
            for b in builds
            if b.status != "SUCCESS"
        ]
        return len(builds), problems

    def _check_images(
        self, lock: dict[tuple[str, str], dict[str, Any]]
    ) -> tuple[dict[str, tuple[str | None, str | None]], list[str]]:
        """What ACR's and Harbor's registries hold for each entry, read directly: (ACR digest,
        Harbor digest) by "target:tag", and what is wrong with it."""
        from relay.ops.inspectimage import inspect_image
        from relay.registry.client import RegistryClient
        from relay.registry.credentials import Credential, StaticCredentials
        from relay.registry.errors import NotFoundError

        sandbox = self.sandbox
        assert sandbox.pki and sandbox.acr_registry and sandbox.harbor_registry
        assert sandbox.acr_registry.password is not None
        acr_host, harbor_host = sandbox.acr_registry.host, sandbox.harbor_host
        logins = StaticCredentials(
            {
                acr_host: Credential(ACR_TOKEN_USER, sandbox.acr_registry.password),
                harbor_host: Credential(HARBOR_ADMIN, sandbox.harbor_password),
            }
        )
        found: dict[str, tuple[str | None, str | None]] = {}
        problems: list[str] = []
        with (
            RegistryClient(acr_host, credentials=logins, ca_file=sandbox.pki.ca_file) as acr,
            RegistryClient(harbor_host, credentials=logins, ca_file=sandbox.pki.ca_file) as harbor,
        ):
            for image in self.images:
                target, key = self.targets[image.name], f"{self.targets[image.name]}:{image.tag}"
                locked = lock.get((image.name, image.tag), {})
                config = (locked.get("configs") or {}).get("linux/amd64")
                digests: list[str | None] = []
                for side, client, repository in (
                    ("ACR", acr, f"{ACR_NAMESPACE}/{target}"),
                    ("Harbor", harbor, f"{PROJECT}/{target}"),
                ):
                    try:
                        manifest = client.get_manifest(repository, image.tag)
                    except NotFoundError:
                        problems.append(f"{side} lacks {key}")
                        digests.append(None)
                        continue
                    digests.append(manifest.digest)
                    amd64 = inspect_image(client, repository, manifest, ["linux/amd64"])
                    got = amd64.images.get("linux/amd64")
                    if got is None or got.config_digest != config:
                        problems.append(f"{side} {key}: not upstream's linux/amd64 image")
                if None not in digests and digests[0] != digests[1]:
                    problems.append(f"Harbor {key} is not ACR's manifest")
                found[key] = (digests[0], digests[1])
        return found, problems

    def _check_harbor_objects(self) -> list[str]:
        harbor = self.sandbox.harbor
        assert harbor is not None
        state = harbor.state
        problems = []
        registries = Counter(r.name for r in state.registries.values())
        if registries != Counter({REGISTRY_NAME: 1}):
            problems.append(f"endpoints {dict(registries)}, want {{{REGISTRY_NAME!r}: 1}}")
        policies = Counter(p.name for p in state.policies.values())
        if policies != Counter({POLICY: 1, FAST_POLICY: 1}):
            problems.append(f"policies {dict(policies)}, want {POLICY} and {FAST_POLICY} once")
        projects = Counter(p.name for p in state.projects.values())
        if projects[PROJECT] != 1:
            problems.append(f"project {PROJECT} exists {projects[PROJECT]} times")
        return problems

    def _check_executions(self) -> list[str]:
        harbor = self.sandbox.harbor
        assert harbor is not None
        runs = sum(1 for a in self.result.attempts if a.step == "harbor-replicate")
        executions = self.result.executions = len(harbor.state.executions)
        if executions > runs:
            return [f"{executions} executions from {runs} replicate runs"]
        return []

    def _check_report(
        self,
        lock: dict[tuple[str, str], dict[str, Any]],
        digests: dict[str, tuple[str | None, str | None]],
    ) -> list[str]:
        report = self.result.report
        if report is None:
            return ["no verify report"]
        problems = []
        if report.get("ok") is not True:
            problems.append("verify says not ok")
        counts = report.get("counts") or {}
        n = len(self.images)
        if counts.get("tags") != n or counts.get("ok") != n:
            problems.append(f"counts {counts}, want {n} tags, {n} ok")
        results = {r.get("image"): r for r in report.get("results") or []}
        if set(results) != set(digests):
            problems.append(f"images {sorted(results)}, want {sorted(digests)}")
        for image in self.images:
            key = f"{self.targets[image.name]}:{image.tag}"
            row = results.get(key)
            if row is None:
                continue
            locked = lock.get((image.name, image.tag), {})
            acr_digest, harbor_digest = digests.get(key, (None, None))
            said = (
                row["upstream"]["digest"],
                row["target"]["digest"],
                (row.get("harbor") or {}).get("digest"),
            )
            if said != (locked.get("digest"), acr_digest, harbor_digest):
                problems.append(
                    f"{key}: report says {said}, the world holds "
                    f"{(locked.get('digest'), acr_digest, harbor_digest)}"
                )
        return problems


def table(results: Sequence[ChaosResult]) -> Table:
    """One row per chaos run, for the benchmark and for a person."""
    columns = [
        Column("Seed", "right"),
        Column("Images", "right"),
        Column("Runs", "right"),
        Column("Kills"),
        Column("Failed", "right"),
        Column("Faults (upstream/ACR/Harbor)"),
        Column("Retries", "right"),
        Column("Builds", "right"),
        Column("Converged in", "right"),
        Column("Result"),
    ]
    out = Table(
        "relay chaos",
        columns,
        status="ok" if all(r.ok for r in results) else "failed",
    )
    for r in results:
        faults = r.faults
        parts = [sum(faults.get(k, {}).values()) for k in ("upstream", "acr", "harbor")]
        kills = r.kills_by_step()
        out.add(
            str(r.config.seed),
            str(r.config.images),
            str(r.runs),
            f"{r.kills}"
            + (f" ({', '.join(f'{k} {n}' for k, n in sorted(kills.items()))})" if kills else ""),
            str(r.failures),
            f"{r.faults_injected} ({'/'.join(str(p) for p in parts)})",
            str(r.retries),
            str(r.builds),
            f"{r.seconds:.1f}s" if r.converged else "-",
            "ok" if r.ok else "; ".join(r.problems()),
            flag=not r.ok,
        )
    kinds: Counter[str] = Counter()
    for r in results:
        for counts in r.faults.values():
            kinds.update(counts)
    out.summary = (
        f"{len(results)} chaos runs, {sum(r.ok for r in results)} ok; "
        f"faults by kind: {', '.join(f'{k} {n}' for k, n in sorted(kinds.items())) or 'none'}"
    )
    return out
