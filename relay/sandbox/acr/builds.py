"""Real builds: git clone a stand-in "GitHub" repository, buildah bud, buildah push.

What ACR's build machines do with our single-FROM Dockerfiles, done locally and hermetically:

* the source is a local bare git repository registered as ``owner/repo`` (never GitHub);
* ``buildah bud`` runs with the vfs driver and chroot isolation (no daemon, no overlay, works
  in CI containers), with storage root, run root, registries.conf, auth file, policy,
  containers.conf, TMPDIR, HOME and the blob-info-cache all inside a per-build temp dir that is
  removed afterwards, and ``--pull=always`` (a fresh store per build also rules out stale bases);
* upstream names (``registry.k8s.io`` ...) reach local registries through registries.conf
  ``[[registry]] prefix=... location=127.0.0.1:PORT`` entries (containers-registries.conf(5));
* the result is pushed to the stand-in for ``registry.<region>.aliyuncs.com/<ns>/<repo>:<tag>``.

The blob-info-cache gotcha: as root, c/image writes it to
/var/lib/containers/cache, shared by every run, and it changes which compressed digests are
reused. c/image decides "root" from ``_CONTAINERS_ROOTLESS_UID`` when set, so setting it makes
the cache land in the per-build ``$XDG_DATA_HOME`` (the trick tests/fixtures/skopeo.py uses;
buildah 1.28 as root still builds with it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from relay.sandbox.acr.registry_view import RegistryTarget
from relay.sandbox.acr.state import (
    BUILDING,
    CANCELED,
    ENTERPRISE,
    FAILED,
    PENDING,
    SUCCESS,
    Build,
    State,
    now_ms,
)

DEAD_PROXY = "http://127.0.0.1:9"
LOG_LINES_PER_COMMAND = 200  # keep the tail of each command's output in the build log


@dataclass
class BuildSettings:
    """Knobs for how builds behave. Vendor numbers are UNCONFIRMED (no document states them)."""

    # Seconds a build stays PENDING / at least BUILDING: real builds take minutes and local ones
    # well under a second, so a poller would otherwise never see the intermediate states.
    pending_seconds: float = 0.0
    min_building_seconds: float = 0.0
    # ACR's builders run Docker, so pushed images are Docker schema2 (UNCONFIRMED); "oci" also
    # works.
    image_format: str = "docker"
    timeout: float = 600.0  # per build, clone to push
    workers: int = 1  # buildah processes at once: CI has 2 cores
    keep_workdirs: bool = False  # leave build dirs behind for post-mortem


@dataclass
class Upstream:
    """A registries.conf remap: pulls of ``prefix/...`` go to ``registry``."""

    prefix: str
    registry: RegistryTarget


class BuildFailed(Exception):
    pass


class BuildCanceled(Exception):
    pass


class BuildRunner:
    """Runs builds in background threads and records their progress in :class:`State`."""

    def __init__(
        self,
        state: State,
        workdir: Path,
        target: RegistryTarget,
        *,
        domain_for: Callable[[Build], str],
        settings: BuildSettings | None = None,
    ) -> None:
        self.state = state
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.target = target
        self.domain_for = domain_for  # e.g. "registry.cn-hangzhou.aliyuncs.com"
        self.settings = settings or BuildSettings()
        self.git_remotes: dict[str, str] = {}  # "owner/repo" -> local bare repository path
        self.upstreams: dict[str, Upstream] = {}
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, self.settings.workers), thread_name_prefix="acr-build"
        )
        self._closed = False

    # -- public ----------------------------------------------------------------------------

    def submit(self, build: Build) -> None:
        if self._closed:
            raise RuntimeError("build runner is closed")
        self._executor.submit(self._run, build)

    def cancel(self, build: Build) -> None:
        """Ask a build to stop; a running command is terminated (its process group, by PID)."""
        with self.state.lock:
            if not build.active:
                return
            build.cancel_requested = True
            if build.status == PENDING:
                # Not started: it will never run (the worker checks the flag first).
                self._finish(build, CANCELED, "canceled before start")
        with self._lock:
            proc = self._procs.get(build.build_id)
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # own session, see _command
            except ProcessLookupError:
                pass

    def wait_idle(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state.active_builds():
            if time.monotonic() > deadline:
                ids = [b.build_id for b in self.state.active_builds()]
                raise TimeoutError(f"builds still running after {timeout:.0f}s: {ids}")
            time.sleep(0.05)

    def close(self) -> None:
        """Cancel what is running and stop the workers."""
        self._closed = True
        for build in self.state.active_builds():
            self.cancel(build)
        self._executor.shutdown(wait=True, cancel_futures=True)
        # Futures dropped by cancel_futures never ran: they must not stay PENDING forever.
        with self.state.lock:
            for build in self.state.active_builds():
                self._finish(build, CANCELED, "emulator shut down")

    # -- the build ---------------------------------------------------------------------------

    def _log(self, build: Build, line: str) -> None:
        with self.state.lock:
            build.log.append(line)

    def _finish(self, build: Build, status: str, message: str | None = None) -> None:
        with self.state.lock:
            if message:
                build.log.append(message)
            build.status = status
            build.finished = now_ms()

    def _run(self, build: Build) -> None:
        s = self.settings
        end_pending = time.monotonic() + s.pending_seconds
        while time.monotonic() < end_pending and not build.cancel_requested:
            time.sleep(0.02)
        with self.state.lock:
            if build.status != PENDING:  # canceled while queued
                return
            if build.cancel_requested:
                self._finish(build, CANCELED, "canceled before start")
                return
            build.status = BUILDING
            build.started = now_ms()
        started = time.monotonic()
        work = Path(tempfile.mkdtemp(prefix=f"b-{build.build_id[:8]}-", dir=self.workdir))
        status, message = FAILED, None
        try:
            self._build(build, work, deadline=started + s.timeout)
            status, message = SUCCESS, f"build succeeded in {time.monotonic() - started:.2f}s"
        except BuildCanceled:
            status, message = CANCELED, "build canceled"
        except BuildFailed as exc:
            status, message = FAILED, f"build failed: {exc}"
        except Exception:  # an emulator bug must still end the build, with the trace in its log
            status, message = FAILED, "emulator error:\n" + traceback.format_exc()
        finally:
            if not s.keep_workdirs:
                try:
                    _remove_tree(work)
                except Exception as exc:  # never leave the build unfinished over cleanup
                    self._log(build, f"cleanup failed: {exc}")
        remaining = s.min_building_seconds - (time.monotonic() - started)
        while remaining > 0 and not build.cancel_requested:
            time.sleep(min(remaining, 0.02))
            remaining = s.min_building_seconds - (time.monotonic() - started)
        if build.cancel_requested and status == SUCCESS:
            # The push may have happened; ACR would still report the cancel. Keep it simple.
            status, message = CANCELED, "build canceled"
        self._finish(build, status, message)

    def _build(self, build: Build, work: Path, deadline: float) -> None:
        rule = build.rule
        if build.source is None:
            raise BuildFailed("repository has no code source bound")
        owner_repo = build.source.owner_repo
        remote = self.git_remotes.get(owner_repo)
        if remote is None:
            raise BuildFailed(f"source repository github.com/{owner_repo} not found")

        # 1. clone the branch or tag the rule names
        src = work / "src"
        home = work / "home"
        home.mkdir()
        git_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # no global git config
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "LANG": "C",
        }
        self._command(
            build,
            "clone",
            [
                _tool("git"),
                "-c",
                "advice.detachedHead=false",
                "clone",
                "--quiet",
                "--depth",
                "1",
                "--single-branch",
                "--branch",
                rule.push_name,
                "file://" + str(Path(remote).resolve()),
                str(src),
            ],
            env=git_env,
            deadline=deadline,
        )

        # 2. find the Dockerfile; its directory is the build context (UNCONFIRMED for ACR)
        location = rule.dockerfile_location.strip("/")
        context = (src / location).resolve()
        dockerfile = (context / rule.dockerfile_name).resolve()
        if not _inside(context, src.resolve()) or not _inside(dockerfile, src.resolve()):
            raise BuildFailed(f"Dockerfile location {rule.dockerfile_location!r} leaves the repo")
        if not dockerfile.is_file():
            raise BuildFailed(
                f"Dockerfile not found: {rule.dockerfile_location.rstrip('/')}/"
                f"{rule.dockerfile_name} (branch/tag {rule.push_name})"
            )

        # 3. buildah bud with everything isolated under work/
        env, cfg = self._containers_env(work)
        domain = self.domain_for(build)
        local_name = f"{domain}/{build.namespace}/{build.repo_name}:{rule.image_tag}"
        fmt = "docker" if self.settings.image_format == "docker" else "oci"
        storage = [
            "--root",
            str(work / "storage"),
            "--runroot",
            str(work / "runroot"),
            "--storage-driver",
            "vfs",
        ]
        bud = [
            _tool("buildah"),
            *storage,
            "bud",
            "--isolation",
            "chroot",
            "--pull=always",
            "--retry",
            "0",
            "--signature-policy",
            str(cfg["policy"]),
            "--authfile",
            str(cfg["auth"]),
            "--format",
            fmt,
            "--layers=false",
            "-f",
            str(dockerfile),
        ]
        # Personal-edition rules have no platform: build for the host (amd64), as a Docker
        # builder would. Enterprise rules name theirs; several make a manifest list.
        platforms = rule.platforms if build.edition == ENTERPRISE else []
        multi = len(platforms) > 1
        if platforms:
            bud += ["--platform", ",".join(platforms)]
        bud += ["--manifest", local_name] if multi else ["-t", local_name]
        for arg in rule.build_args:
            bud += ["--build-arg", arg]
        self._command(build, "build", [*bud, str(context)], env=env, deadline=deadline, cwd=work)

        # 4. push to the stand-in for registry.<region>.aliyuncs.com
        dest = f"docker://{self.target.host}/{build.namespace}/{build.repo_name}:{rule.image_tag}"
        digest_file = work / "digest"
        push = [
            _tool("buildah"),
            *storage,
            *(["manifest", "push", "--all"] if multi else ["push"]),
            "--signature-policy",
            str(cfg["policy"]),
            "--authfile",
            str(cfg["auth"]),
            # buildah 1.28's `manifest push` has no --retry; plain push retries 3x by default.
            *([] if multi else ["--retry", "0"]),
            "--format",
            "v2s2" if fmt == "docker" else "oci",
            "--digestfile",
            str(digest_file),
        ]
        if self.target.url.startswith("https://"):
            cert_dir = self.target.cert_dir or _cert_dir_for(work, self.target.ca_file)
            push += ["--cert-dir", cert_dir] if cert_dir else []
        else:
            push.append("--tls-verify=false")
        self._command(build, "push", [*push, local_name, dest], env=env, deadline=deadline)
        digest = digest_file.read_text().strip() if digest_file.exists() else None
        with self.state.lock:
            build.image_digest = digest
        self.state.note_tag_pushed(build.namespace, build.repo_name, rule.image_tag)
        self._log(build, f"pushed {domain}/{build.namespace}/{build.repo_name}:{rule.image_tag}")

    def _containers_env(self, work: Path) -> tuple[dict[str, str], dict[str, Path]]:
        cdir = work / "containers"
        for d in (cdir, work / "tmp", work / "xdg-data", work / "xdg-config", work / "xdg-run"):
            d.mkdir(parents=True, exist_ok=True)
        (work / "xdg-run").chmod(0o700)
        storage_conf = cdir / "storage.conf"
        storage_conf.write_text(
            "[storage]\n"
            'driver = "vfs"\n'
            f'graphroot = "{work / "storage"}"\n'
            f'runroot = "{work / "runroot"}"\n'
        )
        registries_conf = cdir / "registries.conf"
        registries_conf.write_text(self._registries_conf())
        containers_conf = cdir / "containers.conf"
        containers_conf.write_text("")  # nothing from /etc/containers/containers.conf
        policy = cdir / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        auth = cdir / "auth.json"
        auth.write_text(json.dumps({"auths": self._auths()}))
        auth.chmod(0o600)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work / "home"),
            "TMPDIR": str(work / "tmp"),
            "XDG_DATA_HOME": str(work / "xdg-data"),
            "XDG_CONFIG_HOME": str(work / "xdg-config"),
            "XDG_RUNTIME_DIR": str(work / "xdg-run"),
            "CONTAINERS_STORAGE_CONF": str(storage_conf),
            "CONTAINERS_REGISTRIES_CONF": str(registries_conf),
            "CONTAINERS_CONF": str(containers_conf),
            "REGISTRY_AUTH_FILE": str(auth),
            "BUILDAH_ISOLATION": "chroot",
            "LANG": "C",
            # Nothing may reach the internet: every registry that is not remapped to 127.0.0.1
            # goes to a proxy that refuses connections (port 9, discard), so an unmapped FROM
            # fails at once instead of trying docker.io.
            "HTTP_PROXY": DEAD_PROXY,
            "HTTPS_PROXY": DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        if os.geteuid() == 0:
            env["_CONTAINERS_ROOTLESS_UID"] = "1000"  # blob-info-cache into XDG_DATA_HOME
        return env, {"policy": policy, "auth": auth}

    def _registries_conf(self) -> str:
        # No search registries: an unqualified FROM must fail, never reach docker.io.
        lines = ["unqualified-search-registries = []", 'short-name-mode = "enforcing"', ""]
        for up in sorted(self.upstreams.values(), key=lambda u: u.prefix):
            lines += [
                "[[registry]]",
                f'prefix = "{up.prefix}"',
                f'location = "{up.registry.host}"',
                # insecure: plain-HTTP registries, and TLS ones signed by the test CA.
                "insecure = true",
                "",
            ]
        return "\n".join(lines)

    def _auths(self) -> dict[str, dict[str, str]]:
        auths: dict[str, dict[str, str]] = {}
        for reg in [self.target, *(u.registry for u in self.upstreams.values())]:
            if reg.username and reg.password:
                raw = f"{reg.username}:{reg.password}".encode()
                auths[reg.host] = {"auth": base64.b64encode(raw).decode()}
        return auths

    def _command(
        self,
        build: Build,
        step: str,
        argv: list[str],
        *,
        env: dict[str, str],
        deadline: float,
        cwd: Path | None = None,
    ) -> None:
        if build.cancel_requested:
            raise BuildCanceled()
        self._log(build, f"[{step}] {' '.join(_redact(argv))}")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd) if cwd else None,
            # Own process group, so cancel/timeout can stop buildah and its children by this PID.
            start_new_session=True,
        )
        with self._lock:
            self._procs[build.build_id] = proc
        try:
            try:
                out, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                self._log_output(build, out)
                raise BuildFailed(f"{step} timed out") from None
        finally:
            with self._lock:
                self._procs.pop(build.build_id, None)
        self._log_output(build, out)
        if build.cancel_requested:
            raise BuildCanceled()
        if proc.returncode != 0:
            raise BuildFailed(f"{step} exited with {proc.returncode}")

    def _log_output(self, build: Build, out: bytes | None) -> None:
        lines = (out or b"").decode(errors="replace").splitlines()
        for line in lines[-LOG_LINES_PER_COMMAND:]:
            self._log(build, "  " + line)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BuildFailed(f"{name} is not installed on the build machine")
    return path


def _redact(argv: list[str]) -> list[str]:
    # Credentials only ever travel in the auth file, but keep the log safe regardless.
    out, hide = [], False
    for arg in argv:
        out.append("***" if hide else arg)
        hide = arg == "--creds"
    return out


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _cert_dir_for(work: Path, ca_file: str | None) -> str | None:
    if not ca_file:
        return None
    d = work / "certs"
    d.mkdir(exist_ok=True)
    shutil.copyfile(ca_file, d / "ca.crt")
    return str(d)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    return [f.split()[4] for f in text.splitlines() if f.split()[4].startswith(prefix)]


def _remove_tree(root: Path) -> None:
    # buildah's chroot isolation bind-mounts into its rootfs inside a private mount namespace;
    # if anything is ever left mounted here, deleting would walk into the host: refuse.
    mounts = _mounts_under(root)
    if mounts:
        raise RuntimeError(f"refusing to delete {root}: still mounted: {mounts}")
    shutil.rmtree(root, ignore_errors=True)
