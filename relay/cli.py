"""The command line. The only place that turns relay's exceptions into exit codes.

Exit codes: 0 success; 1 a check failed, drift was found or an operation failed; 2 invalid input
or usage; 130 interrupted (Ctrl-C: 128 + SIGINT, the shell's convention). Data goes to stdout,
logging to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from relay import __version__, safety
from relay.errors import (
    CheckFailed,
    InputError,
    Problem,
    ProblemsFound,
    RelayError,
)
from relay.output import ghactions

if TYPE_CHECKING:
    from relay.config.shard import Shard

log = logging.getLogger("relay")

# `relay clients --format` values; relay.stages.clients.FORMATS is the source (the CLI imports
# no stage at start-up), tests/test_clients.py checks that the two agree.
CLIENT_FORMATS = (
    "mapping-md",
    "mapping-csv",
    "mapping-json",
    "kustomize",
    "kyverno",
    "kubeadm",
    "crictl",
    "containerd",
    "docker",
)


INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    # Everything relay writes from here on goes through relay.safety: secrets the environment
    # holds are known before the first line is printed.
    safety.add_environment(os.environ)
    with _console(), _interrupts():
        try:
            return _main(argv)
        except KeyboardInterrupt:  # while an error was being reported
            return _interrupted()


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    _logging(verbose=getattr(args, "verbose", False))
    try:
        return _dispatch(args)
    except (InputError, ProblemsFound) as exc:
        _report(exc.problems)
        return exc.exit_code
    except CheckFailed as exc:
        for detail in exc.details:
            print(detail)
        print(f"relay: {exc}", file=sys.stderr)
        ghactions.error(str(exc))
        return exc.exit_code
    except RelayError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        ghactions.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return _interrupted()


# --- Ctrl-C ---------------------------------------------------------------------------------------
# The first Ctrl-C interrupts the run: requests in flight have their sockets shut down and no new
# one starts (relay.net.cancel), so the threads end and the command unwinds (finally blocks run,
# files relay writes are replaced whole or not at all) and says what it abandoned. A thread that
# cannot be woken (a DNS lookup, a TCP connect) does not hold the process: it ends _GRACE seconds
# after the Ctrl-C regardless. A second Ctrl-C ends it at once. Either way, writes in progress
# finish first (relay.files.settle), so no temporary file is left behind.
#
# The signal handler itself only writes a byte to a pipe and raises KeyboardInterrupt: it runs
# in the main thread between any two bytecodes, possibly while that thread holds a lock the
# cancelling would take. A watcher thread reading the pipe does the rest.
_GRACE = 1.0
_said = threading.Event()
_triggered = threading.Event()


def _interrupted() -> int:
    _triggered.wait(0.5)  # the watcher's list of what was in flight, for the message
    if not _said.is_set():
        _said.set()
        print(_abandoned(), file=sys.stderr)
    return INTERRUPTED


def _abandoned() -> str:
    cancel = sys.modules.get("relay.net.cancel")  # not loaded: no request was ever made
    hosts = cancel.abandoned() if cancel is not None else []
    what = "the work in progress"
    if hosts:
        count = f"{len(hosts)} request{'s' if len(hosts) > 1 else ''}"
        what = f"{count} in flight (to {', '.join(sorted(set(hosts)))}) and the work not started"
    return (
        f"relay: interrupted; abandoned {what}. Nothing is left half-written (files are "
        "replaced whole, and a registry shows an image only once all of it is there): run the "
        "command again to finish"
    )


def _exit_now(*, say: bool) -> None:
    """End the process without waiting for its threads; with ``say``, after saying what was
    abandoned (unless the command did) and flushing what it printed."""
    from relay import files

    files.settle(1.0)
    if say:
        try:
            if not _said.is_set():
                _said.set()
                print(_abandoned(), file=sys.stderr)
            for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
                if stream is not None:
                    stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(INTERRUPTED)


def _watch(read_end: int) -> None:
    """The watcher: the first byte interrupts the run, then waits out the grace period (a
    second byte: at once) and ends the process if it is still there. End of file without a
    byte: the command ended uninterrupted."""
    import select
    import time

    try:
        if not os.read(read_end, 1):
            return
        since = time.monotonic()
        from relay.net import cancel

        cancel.trigger()
        _triggered.set()
        ready, _, _ = select.select([read_end], [], [], _GRACE)
        if ready and os.read(read_end, 1):
            os.write(2, b"relay: interrupted again; exiting now\n")
            _exit_now(say=False)
        # The command has ended (the pipe closed) and the process is exiting, or it is still
        # unwinding: either way it has until _GRACE after the Ctrl-C.
        time.sleep(max(0.0, _GRACE - (time.monotonic() - since)))
        _exit_now(say=True)
    finally:
        os.close(read_end)


@contextmanager
def _interrupts() -> Iterator[None]:
    """relay's SIGINT handling for the length of a command (main thread only: a caller that
    runs relay in a thread keeps its own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _said.clear()
    _triggered.clear()
    read_end, write_end = os.pipe()
    hits = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal hits
        hits += 1
        os.write(write_end, b"!")
        if hits == 1:
            raise KeyboardInterrupt

    threading.Thread(target=_watch, args=(read_end,), name="relay-ctrl-c", daemon=True).start()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        os.close(write_end)


@contextmanager
def _console() -> Iterator[None]:
    """stdout and stderr through relay.safety.Console for the length of one command."""
    saved = sys.stdout, sys.stderr
    out, err = safety.Console(saved[0]), safety.Console(saved[1])
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        for stream in (out, err):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more can be said there
                pass
        sys.stdout, sys.stderr = saved


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # subscriptable at run time from Python 3.11 only
    _StreamHandler = logging.StreamHandler


class _Handler(_StreamHandler):
    """relay's log handler: writes to whatever sys.stderr is when a record is emitted (the
    Console of the running command)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def _logging(*, verbose: bool) -> None:
    """Logs on stderr, one redacted line a record, as logging.basicConfig would set them up:
    not when something else (a test runner) has configured logging already."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    if root.handlers:
        return
    handler = _Handler()
    handler.setFormatter(safety.LogFormatter("relay: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def _report(problems: list[Problem]) -> None:
    # Few problems in line order; many grouped by kind, with GitHub's annotation cap kept.
    ghactions.report(problems)
    if len(problems) > 1:
        print(f"relay: {len(problems)} problems", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay",
        description="Relay overseas container images to your Harbor by way of Alibaba Cloud ACR.",
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo",
        type=_directory,
        default=Path("."),
        metavar="DIR",
        help="the relay repository to act on (default: the current directory)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sharded = argparse.ArgumentParser(add_help=False)
    sharded.add_argument(
        "--shard",
        metavar="I/N",
        help="handle only part I of N of the list (stable by target name), for parallel jobs",
    )
    sharded.add_argument(
        "--only",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="handle only these target names (shell-style patterns such as 'k8s_*' allowed)",
    )
    delivered = argparse.ArgumentParser(add_help=False)
    delivered.add_argument(
        "--delivered",
        type=Path,
        metavar="FILE",
        help="write the target names built or copied by this run to FILE, one per line",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "validate", parents=[common], help="check mirrors/images.yaml and mirrors/relay.yaml"
    )

    p = sub.add_parser(
        "generate",
        parents=[common],
        help="render mirrors/dockerfiles/<name>/<tag>/Dockerfile from the list and the lock",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list what differs if the Dockerfiles are out of date",
    )

    p = sub.add_parser(
        "lock", parents=[common, sharded], help="resolve tags to digests into mirrors/images.lock"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a tag moved upstream or the lock is out of date",
    )
    mode.add_argument(
        "--update", action="store_true", help="re-resolve every tag and take new digests"
    )
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="resolve what a plain `relay lock` would and print the changes; write nothing",
    )

    p = sub.add_parser(
        "plan",
        parents=[common],
        help="what merging would do: the list checked, tags to lock, Dockerfiles to write",
    )
    p.add_argument(
        "--comment",
        action="store_true",
        help="also post the plan as a pull-request comment (updated in place on re-runs)",
    )
    p.add_argument("--pr", type=int, help="the pull request (default: from the Actions event)")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write the plan to DIR/relay-plan.json, the artifact the comment run posts",
    )

    p = sub.add_parser(
        "copy",
        parents=[common],
        help="copy an image between registries, keeping its digest and every platform",
    )
    p.add_argument("source", metavar="SRC", help="image reference with a tag or digest")
    p.add_argument("destination", metavar="DST", help="target reference (tag optional)")
    p.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH[/VARIANT]",
        help="copy only these platforms (repeatable); the digest will change",
    )
    p.add_argument("--jobs", type=int, default=4, help="blobs transferred at once (default 4)")

    p = sub.add_parser(
        "publish",
        parents=[common, sharded, delivered],
        help="copy transport: copy every pinned tag to copy.registry/copy.namespace",
    )

    p = sub.add_parser(
        "verify",
        parents=[common, sharded],
        help="check that upstream (the lock), ACR or the copy target, and Harbor agree per tag",
    )
    p.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="text: a table (default); json: one JSON document on stdout",
    )

    p = sub.add_parser(
        "sync",
        parents=[common],
        help="copy sets of images between registries from image-syncer's auth and images files",
    )
    p.add_argument("--images", required=True, metavar="FILE", help="image-syncer images file")
    p.add_argument("--auth", metavar="FILE", help="image-syncer auth file")
    p.add_argument("--proc", type=int, default=5, help="images copied at once (default 5)")
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="further passes over the images that failed (default 2)",
    )

    p = sub.add_parser(
        "clients",
        parents=[common],
        help="what nodes and manifests need to pull from Harbor: mapping, kustomize, Kyverno, "
        "kubeadm, crictl, containerd, docker",
    )
    clients_output = p.add_mutually_exclusive_group()
    clients_output.add_argument(
        "--format",
        choices=CLIENT_FORMATS,
        default="mapping-md",
        help="print one output on stdout (default: mapping-md)",
    )
    clients_output.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write every output into DIR; only files whose content changed are written",
    )
    gh = sub.add_parser("github", help="what the GitHub workflows ask of GitHub (see README)")
    gh_sub = gh.add_subparsers(dest="github_command", required=True, metavar="COMMAND")
    gh_sub.add_parser(
        "settings",
        parents=[common],
        help="print the workflow settings (github: section, transport) as step outputs",
    )
    p = gh_sub.add_parser(
        "comment-plan",
        parents=[common],
        help="in a workflow_run run: post the plan artifact of the pull request's run",
    )
    p.add_argument("--artifact", type=Path, required=True, metavar="DIR")
    gh_sub.add_parser(
        "propose",
        parents=[common],
        help="bring the lock and Dockerfiles to the default branch (a pull request, or a push)",
    )
    p = gh_sub.add_parser(
        "report-run",
        parents=[common],
        help="open, update or close the one issue about failing scheduled runs",
    )
    outcome = p.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--ok", action="store_true", help="the run succeeded")
    outcome.add_argument("--failed", action="store_true", help="the run failed")
    p.add_argument("--what", default="the scheduled run", help="what ran, for the issue")

    p = sub.add_parser(
        "import",
        parents=[common],
        help="add another tool's image list to mirrors/images.yaml (merging, never duplicating)",
    )
    p.add_argument(
        "format",
        metavar="FORMAT",
        choices=["images-txt", "image-syncer", "refs"],
        help="images-txt (docker_image_pusher), image-syncer (its images file), "
        "refs (one reference a line)",
    )
    p.add_argument("file", metavar="FILE", type=Path, help="the file to import")
    p.add_argument(
        "--dry-run", action="store_true", help="print the changes as a diff; write nothing"
    )

    acr = sub.add_parser(
        "acr", help="reconcile the ACR namespace, repositories and build rules; run builds"
    )
    acr_sub = acr.add_subparsers(dest="acr_command", required=True, metavar="COMMAND")
    p = acr_sub.add_parser(
        "plan",
        parents=[common, sharded],
        help="print what `relay acr apply` would do; change nothing",
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed rules no longer listed"
    )
    p = acr_sub.add_parser(
        "apply",
        parents=[common, sharded, delivered],
        help="create what is missing in ACR and build changed tags",
    )
    p.add_argument("--wait", action="store_true", help="watch the builds until they end")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="overall deadline with --wait (default: acr.poll.timeout)",
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed rules no longer listed"
    )

    harbor = sub.add_parser(
        "harbor",
        help="reconcile Harbor's ali-acr endpoint, project and pull policies; run replications",
    )
    harbor_sub = harbor.add_subparsers(dest="harbor_command", required=True, metavar="COMMAND")
    p = harbor_sub.add_parser(
        "plan",
        parents=[common],
        help="print what `relay harbor apply` would change; change nothing",
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed objects no longer wanted"
    )
    p = harbor_sub.add_parser(
        "apply", parents=[common], help="make the endpoint, project and policies match the settings"
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed objects no longer wanted"
    )
    p = harbor_sub.add_parser(
        "replicate",
        parents=[common],
        help="run the pull policy (or only some repositories) and watch it with --wait",
    )
    p.add_argument("--wait", action="store_true", help="watch the execution until it ends")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="overall deadline with --wait (default: harbor.poll.timeout)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="NAME",
        help="replicate only these target repositories (the fast path after a build)",
    )
    sandbox = sub.add_parser(
        "sandbox", help="relay's whole world on this machine: emulated upstreams, ACR and Harbor"
    )
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--dir", type=Path, default=None, metavar="DIR", help="where the sandbox keeps its state"
    )
    sandbox_sub.add_parser(
        "up", parents=[where], help="start it in the background and print how to point relay at it"
    )
    sandbox_sub.add_parser("status", parents=[where], help="say whether it is up, and where")
    sandbox_sub.add_parser("down", parents=[where], help="stop it and remove what it made")
    p = sandbox_sub.add_parser(
        "demo",
        parents=[common],
        help="run relay's main job through the sandbox, from a pull request to a pull",
    )
    p.add_argument("--keep", action="store_true", help="leave the sandbox and the copy behind")
    return parser


def _directory(value: str) -> Path:
    """--repo: an existing directory (a usage error otherwise, the path shown short)."""
    shown = value if len(value) <= 120 else value[:120] + f"... ({len(value)} characters)"
    try:
        if os.path.isdir(value):
            return Path(value)
        reason = "no such directory"
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte
        reason = getattr(exc, "strerror", None) or type(exc).__name__
    raise argparse.ArgumentTypeError(f"{shown!r}: {reason}")


def _dispatch(args: argparse.Namespace) -> int:
    """Call the command's typed function. Each command module is imported only when it runs:
    `relay generate` does not pay for requests, `relay copy` not for the mirrors list."""
    command = args.command
    if command == "validate":
        from relay.commands.validate import validate

        return validate(repo=args.repo)
    if command == "generate":
        from relay.commands.generate import generate

        return generate(repo=args.repo, check=args.check)
    if command == "lock":
        from relay.commands.lock import lock

        return lock(
            repo=args.repo,
            check=args.check,
            update=args.update,
            dry_run=args.dry_run,
            shard=_shard(args),
            only=tuple(args.only),
        )
    if command == "plan":
        from relay.commands.plan import plan

        return plan(repo=args.repo, comment=args.comment, pr=args.pr, out=args.out)
    if command == "copy":
        from relay.commands.copyimage import copy

        return copy(
            repo=args.repo,
            source=args.source,
            destination=args.destination,
            platforms=args.platform,
            jobs=args.jobs,
        )
    if command == "publish":
        from relay.commands.publish import publish

        return publish(
            repo=args.repo, shard=_shard(args), only=tuple(args.only), delivered=args.delivered
        )
    if command == "verify":
        from relay.commands.verify import verify

        return verify(repo=args.repo, output=args.output, shard=_shard(args), only=tuple(args.only))
    if command == "sync":
        from relay.commands.sync import sync

        return sync(
            repo=args.repo, images=args.images, auth=args.auth, proc=args.proc, retries=args.retries
        )
    if command == "clients":
        from relay.commands.clients import clients

        return clients(repo=args.repo, fmt=args.format, out=args.out)
    if command == "github":
        from relay.commands import github

        if args.github_command == "settings":
            return github.settings(repo=args.repo)
        if args.github_command == "comment-plan":
            return github.comment_plan(artifact=args.artifact)
        if args.github_command == "propose":
            return github.propose(repo=args.repo)
        return github.report_run(ok=args.ok, what=args.what)
    if command == "import":
        from relay.commands.importlist import import_list

        return import_list(repo=args.repo, fmt=args.format, file=args.file, dry_run=args.dry_run)
    if command == "acr":
        from relay.commands.acr import acr_apply, acr_plan

        if args.acr_command == "plan":
            return acr_plan(
                repo=args.repo, prune=args.prune, shard=_shard(args), only=tuple(args.only)
            )
        return acr_apply(
            repo=args.repo,
            wait=args.wait,
            timeout=args.timeout,
            prune=args.prune,
            shard=_shard(args),
            only=tuple(args.only),
            delivered=args.delivered,
        )
    if command == "harbor":
        from relay.commands.harbor import harbor_apply, harbor_plan, harbor_replicate

        if args.harbor_command == "plan":
            return harbor_plan(repo=args.repo, prune=args.prune)
        if args.harbor_command == "apply":
            return harbor_apply(repo=args.repo, prune=args.prune)
        return harbor_replicate(
            repo=args.repo, wait=args.wait, timeout=args.timeout, only=args.only
        )
    if command == "sandbox":
        from relay.commands import sandbox

        if args.sandbox_command == "demo":
            return sandbox.demo(repo=args.repo, keep=args.keep)
        base = args.dir or sandbox.default_dir()
        if args.sandbox_command == "up":
            return sandbox.up(base=base)
        if args.sandbox_command == "status":
            return sandbox.status(base=base)
        return sandbox.down(base=base)
    raise AssertionError(f"no dispatch for {command!r}")  # pragma: no cover - argparse checks


def _shard(args: argparse.Namespace) -> Shard | None:
    """`--shard I/N`, parsed by the one sharding rule (relay.config.shard)."""
    from relay.config.shard import parse

    return None if args.shard is None else parse(args.shard)


def run() -> NoReturn:
    """The console entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
