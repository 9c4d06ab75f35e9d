"""`relay sandbox demo` (`make demo`): relay's whole main job on one machine, in under a minute.

In a scratch copy of the repository whose "GitHub" is a local bare repository: a pull request
adds images to the list (validate and plan shown), it is merged, and the main job runs:
lock → generate → commit and push → `relay acr apply --wait` (real buildah builds in the ACR
emulator) → `relay harbor apply` → `relay harbor replicate --wait --only …` (Harbor's emulator
really copies) → `relay verify`. Then the mapping from upstream names to Harbor addresses, the
pull commands, and one pull from Harbor checked against what upstream published.

Everything runs on loopback and is removed afterwards. With `--keep` it all stays up after the
job, for a look, until Ctrl-C: then it is stopped and removed the same way (the emulators are
threads of this process and the registries its children, so nothing may outlive it).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from relay import safety
from relay.errors import OperationFailed
from relay.sandbox.registries import MissingTool, RegistryStartError
from relay.sandbox.stack import GITHUB, Sandbox, SeedImage, git_env

# What the demo's pull request adds: one image from each upstream the sandbox stands in for.
DEMO_IMAGES = (
    SeedImage("docker.io/library/nginx", "1.27.3"),
    SeedImage("registry.k8s.io/pause", "3.10"),
    SeedImage("quay.io/coreos/etcd", "v3.5.17"),
)
PROJECT = "mirrors"


@dataclass
class Step:
    name: str
    seconds: float
    code: int


@dataclass
class DemoRun:
    sandbox: Sandbox
    repo: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.code == 0 for s in self.steps)


def list_yaml(images: Sequence[SeedImage]) -> str:
    lines = ["# yaml-language-server: $schema=./images.schema.json", "images:"]
    for image in images:
        lines += [f"  - source: {image.name}", f"    tags: ['{image.tag}']"]
    return "\n".join(lines) + "\n"


class Demo:
    """The demo's steps, usable one by one (the end-to-end test drives them too)."""

    def __init__(self, base: Path, source_repo: Path, out: TextIO | None = None) -> None:
        self.base = base
        self.source_repo = source_repo
        # sys.stdout when the demo runs, not when this module was imported: the CLI's (which
        # relay.safety guards) or a test's.
        self.out = out if out is not None else sys.stdout
        self.sandbox = Sandbox(base / "sandbox")
        self.repo = base / "repo"
        self.run = DemoRun(self.sandbox, self.repo)
        self._started = time.monotonic()

    # --- output ---------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def step(self, name: str, action: Callable[[], int]) -> int:
        self.say(f"\n==> {name}")
        started = time.monotonic()
        code = action()
        seconds = time.monotonic() - started
        self.run.steps.append(Step(name, seconds, code))
        mark = "ok" if code == 0 else f"exit {code}"
        self.say(f"    ({mark}, {seconds:.1f}s; {time.monotonic() - self._started:.1f}s in all)")
        if code != 0:
            raise DemoFailed(f"{name}: exit {code}")
        return code

    # --- pieces ---------------------------------------------------------------------------------

    def relay(self, *args: str) -> int:
        """One relay command, in this process, in the scratch repository."""
        from relay import cli

        with _environment(self.sandbox.env()):
            return cli.main([*args, "--repo", str(self.repo)] if _takes_repo(args) else list(args))

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args],
            cwd=self.repo,
            env=git_env(self.base),
            check=check,
            capture_output=True,
            text=True,
        )

    def start(self, images: Sequence[SeedImage] = DEMO_IMAGES) -> None:
        def up() -> int:
            self.sandbox.start()
            self.sandbox.seed(tuple(images))
            assert self.sandbox.upstream and self.sandbox.acr and self.sandbox.harbor
            self.say(
                f"    upstream stand-in (docker.io, registry.k8s.io, ghcr.io, quay.io): "
                f"{self.sandbox.upstream.url}"
            )
            self.say(
                f"    ACR emulator: {self.sandbox.acr.endpoint} (registry "
                f"{self.sandbox.acr_registry.host if self.sandbox.acr_registry else '?'})"
            )
            self.say(
                f"    Harbor emulator: {self.sandbox.harbor.url} (registry "
                f"{self.sandbox.harbor_host})"
            )
            return 0

        self.step("start the sandbox: upstream stand-ins, ACR, Harbor, a git remote for GitHub", up)

    def scratch_repository(self) -> None:
        def copy() -> int:
            remote = self.sandbox.init_git_remote()
            subprocess.run(
                [
                    "git",
                    "clone",
                    "--quiet",
                    "--no-hardlinks",
                    str(self.source_repo),
                    str(self.repo),
                ],
                check=True,
                env=git_env(self.base),
                capture_output=True,
            )
            # Whatever branch the source is on, the demo works on a local main.
            self.git("checkout", "--quiet", "-B", "main")
            # The shipped list pins real upstream digests the sandbox cannot serve: the demo's
            # repository starts from an empty list and the sandbox's settings.
            shutil.rmtree(self.repo / "mirrors/dockerfiles", ignore_errors=True)
            (self.repo / "mirrors/images.lock").unlink(missing_ok=True)
            (self.repo / "mirrors/images.yaml").write_text(list_yaml([]))
            (self.repo / "mirrors/relay.yaml").write_text(self.sandbox.settings(project=PROJECT))
            self.git("add", "--all", "mirrors")
            self.git("commit", "--quiet", "-m", "demo: start from an empty list")
            self.git("remote", "add", "github", str(remote))
            self.git("push", "--quiet", "github", "HEAD:main")
            self.say(f"    a copy of the repository in {self.repo}, GitHub stands as {remote}")
            return 0

        self.step("make a scratch copy of the repository", copy)

    def pull_request(self, images: Sequence[SeedImage], branch: str = "add-images") -> None:
        def open_pr() -> int:
            self.git("checkout", "--quiet", "-b", branch)
            (self.repo / "mirrors/images.yaml").write_text(list_yaml(images))
            self.git("commit", "--quiet", "-am", f"mirrors: add {len(images)} images")
            self.say("    the pull request adds:")
            for image in images:
                self.say(f"      {image.name}:{image.tag}")
            return self.relay("validate")

        self.step("open a pull request that adds images; CI validates it", open_pr)
        self.step("CI posts the plan on the pull request", lambda: self.relay("plan"))

        def merge() -> int:
            self.git("checkout", "--quiet", "main")
            self.git("merge", "--quiet", "--ff-only", branch)
            return 0

        self.step("merge it", merge)

    def main_job(self, *, lock_args: Sequence[str] = ()) -> list[str]:
        """The workflow's main job; returns the target names that were built."""
        self.step("relay lock: tags to digests", lambda: self.relay("lock", *lock_args))
        self.step("relay generate: one Dockerfile per tag", lambda: self.relay("generate"))

        def commit() -> int:
            self.git("add", "--all", "mirrors")
            if self.git("diff", "--cached", "--quiet", check=False).returncode == 0:
                self.say("    nothing to commit")
                return 0
            self.git("commit", "--quiet", "-m", "mirrors: lock and regenerate Dockerfiles")
            self.git("push", "--quiet", "github", "HEAD:main")
            return 0

        self.step("commit and push the lock and the Dockerfiles", commit)
        assert self.sandbox.acr is not None
        before = {b.build_id for b in self.sandbox.acr.state.builds.values()}
        self.step(
            "relay acr apply --wait: ACR builds them", lambda: self.relay("acr", "apply", "--wait")
        )
        built = sorted(
            {
                b.repo_name
                for b in self.sandbox.acr.state.builds.values()
                if b.build_id not in before
            }
        )
        self.step(
            "relay harbor apply: endpoint, project, policies", lambda: self.relay("harbor", "apply")
        )
        if built:
            self.step(
                "relay harbor replicate --wait --only <what was built>",
                lambda: self.relay("harbor", "replicate", "--wait", "--only", *built),
            )
        self.step("relay verify: upstream, ACR and Harbor agree", lambda: self.relay("verify"))
        return built

    def show_pulls(self, images: Sequence[SeedImage]) -> None:
        def show() -> int:
            from relay.commands.common import load

            cfg, mirrors = load(self.repo)
            harbor = cfg.harbor.registry_host
            code = self.relay("clients", "--format", "mapping-md")
            if code != 0:
                return code
            first = mirrors.entries[0]
            self.say("\n    on a node:")
            self.say(f"      docker pull {harbor}/{PROJECT}/{first.target}:{first.tags[0].tag}")
            return self.prove_pull(images[0], first.target)

        self.step("where the images are, and one pull from Harbor", show)

    def prove_pull(self, image: SeedImage, target: str) -> int:
        """Pull the image from Harbor's registry with relay's own client, log in as a node
        would, and check its linux/amd64 config is upstream's (a FROM-only build keeps it)."""
        from relay.ops.inspectimage import inspect_image
        from relay.registry.client import RegistryClient
        from relay.registry.credentials import Credential, StaticCredentials

        sandbox = self.sandbox
        assert sandbox.pki is not None and sandbox.upstream is not None
        login = StaticCredentials(
            {sandbox.harbor_host: Credential("admin", sandbox.harbor_password)}
        )
        configs = []
        for host, repository, credentials in (
            (sandbox.upstream.host, f"{image.host}/{image.path}", None),
            (sandbox.harbor_host, f"{PROJECT}/{target}", login),
        ):
            with RegistryClient(host, credentials=credentials, ca_file=sandbox.pki.ca_file) as c:
                manifest = c.get_manifest(repository, image.tag)
                found = inspect_image(c, repository, manifest, ["linux/amd64"])
                amd64 = found.images.get("linux/amd64")
                configs.append(amd64.config_digest if amd64 else None)
        same = configs[0] is not None and configs[0] == configs[1]
        self.say(
            f"    pulled {sandbox.harbor_host}/{PROJECT}/{target}:{image.tag} from Harbor: its "
            f"linux/amd64 config {configs[1]} {'is' if same else 'is NOT'} upstream's"
        )
        return 0 if same else 1

    def where(self) -> None:
        """Where everything is, for a look while it runs (`--keep`). The environment to point
        relay at it goes to a file only its owner reads: it holds the sandbox's logins."""
        self.say(f"\nthe scratch repository: {self.repo}")
        sandbox = self.sandbox
        if sandbox.upstream is None or sandbox.acr is None or sandbox.harbor is None:
            return
        self.say(f"upstream stand-in: {sandbox.upstream.url}")
        self.say(f"ACR emulator: {sandbox.acr.endpoint}")
        self.say(f"Harbor emulator: {sandbox.harbor.url} (registry {sandbox.harbor_host})")
        env = self.base / "env.sh"
        env.touch(mode=0o600)
        env.write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(sandbox.env().items()))
        )
        self.say(f"to run relay against it: . {env} && cd {self.repo} && relay verify")

    def stop(self) -> None:
        self.sandbox.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def wait_for_interrupt() -> None:
    """Until Ctrl-C (or SIGTERM). relay's own Ctrl-C handling would cancel and end the process
    a second later, before the registries are stopped: while waiting, the signals only end
    the wait."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("--keep waits for Ctrl-C in the main thread")
    done = threading.Event()

    def handler(signum: int, frame: object) -> None:
        done.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not done.wait(0.2):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class DemoFailed(Exception):
    pass


def run(source_repo: Path, *, keep: bool = False, out: TextIO | None = None) -> int:
    """The demo; with ``keep``, everything stays up after it until Ctrl-C."""
    base = Path(tempfile.mkdtemp(prefix="relay-demo-"))
    demo = Demo(base, source_repo, out)
    try:
        code = 0
        try:
            demo.start(DEMO_IMAGES)
            demo.scratch_repository()
            demo.pull_request(DEMO_IMAGES)
            demo.main_job()
            demo.show_pulls(DEMO_IMAGES)
        except DemoFailed as exc:
            demo.say(f"\nthe demo stopped: {exc}")
            code = 1
        total = sum(s.seconds for s in demo.run.steps)
        if code == 0:
            demo.say(f"\nthe whole job ran in {total:.1f}s")
        if keep:
            demo.where()
            demo.say("left running for a look; Ctrl-C stops and removes everything")
            wait_for_interrupt()
    except (MissingTool, RegistryStartError) as exc:
        # A tool the sandbox runs is not installed (the message names the package), or a
        # registry did not start: one line, not a traceback (its log goes with the directory).
        raise OperationFailed(
            f"the demo could not start the sandbox: {safety.first_line(exc)}"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise OperationFailed(f"the demo stopped: {_failed_command(exc)}") from None
    finally:
        demo.stop()
    demo.say("everything it started is stopped and removed")
    return code


def _failed_command(exc: subprocess.CalledProcessError) -> str:
    """`git clone failed (exit 128): fatal: …`: the command, its exit code and the first line
    of what it said on stderr."""
    command = exc.cmd if isinstance(exc.cmd, (list, tuple)) else str(exc.cmd).split()
    name = " ".join(str(part) for part in command[:2])
    stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
    said = next((line for line in (stderr or "").splitlines() if line.strip()), "")
    return safety.one_line(f"{name} failed (exit {exc.returncode})" + (f": {said}" if said else ""))


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _takes_repo(args: Sequence[str]) -> bool:
    return bool(args) and args[0] not in ("sandbox",)


__all__ = ["DEMO_IMAGES", "GITHUB", "Demo", "DemoFailed", "run"]
