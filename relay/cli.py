"""The command line. The only place that turns relay's exceptions into exit codes.

Exit codes: 0 success; 1 a check failed, drift was found, an operation failed, or (with
`--exit-code`) a plan has changes; 2 invalid input or usage; 130 interrupted (Ctrl-C: 128 +
SIGINT, the shell's convention). Data goes to stdout, logging to stderr. With `-o json` stdout
holds exactly one JSON document (relay.output.document), also when the command fails.

`-o/--output`, `-q/--quiet` and `-v/--verbose` work before or after the subcommand
(`relay -o json lock` and `relay lock -o json`), as kubectl's and helm's global flags do.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TextIO

from relay import __version__, safety
from relay.errors import (
    CheckFailed,
    InputError,
    Problem,
    ProblemsFound,
    RelayError,
)
from relay.output import document, ghactions, progress

if TYPE_CHECKING:
    from relay.commands.access import Access
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

# The commands with a JSON document (`-o json`), as `_command_name` spells them.
JSON_COMMANDS = (
    "validate",
    "plan",
    "lock",
    "copy",
    "publish",
    "sync",
    "acr plan",
    "acr apply",
    "harbor plan",
    "harbor apply",
    "harbor replicate",
    "verify",
    "doctor",
)

# shtab's completion hints, written out so that building the parser imports nothing
# (shtab.DIRECTORY and shtab.FILE; used only by `relay completion`).
_DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}
_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}


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
    command = _command_name(args)
    output: document.Format = getattr(args, "output", "text")
    if output == "json" and command not in JSON_COMMANDS:
        print(
            f"relay: error: relay {command} has no JSON output; -o json works with "
            f"{', '.join(JSON_COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    quiet = bool(getattr(args, "quiet", False))
    _logging(verbose=bool(getattr(args, "verbose", False)), quiet=quiet)
    progress.configure(quiet=quiet)
    if output == "json":
        with document.json_mode():
            return _run(args, command, json_out=True)
    return _run(args, command, json_out=False)


def _run(args: argparse.Namespace, command: str, *, json_out: bool) -> int:
    try:
        return _dispatch(args)
    except (InputError, ProblemsFound) as exc:
        _report(exc.problems)
        if json_out and not document.emitted():
            kind: document.ErrorKind = "input" if isinstance(exc, InputError) else "operation"
            document.error_document(command, kind, safety.first_line(exc, None), exc.problems)
        return exc.exit_code
    except CheckFailed as exc:
        for detail in exc.details:
            print(detail)
        print(f"relay: {exc}", file=sys.stderr)
        ghactions.error(str(exc))
        if json_out and not document.emitted():
            document.error_document(command, "check", str(exc), details=exc.details)
        return exc.exit_code
    except RelayError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        ghactions.error(str(exc))
        if json_out and not document.emitted():
            document.error_document(command, "operation", str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        if json_out and not document.emitted():
            document.error_document(command, "interrupted", "interrupted")
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


def _report(problems: list[Problem]) -> None:
    # Few problems in line order; many grouped by kind, with GitHub's annotation cap kept.
    ghactions.report(problems)
    if len(problems) > 1:
        print(f"relay: {len(problems)} problems", file=sys.stderr)


if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # subscriptable at run time from Python 3.11 only
    _StreamHandler = logging.StreamHandler


class _Handler(_StreamHandler):
    """relay's log handler: writes to whatever sys.stderr is when a record is emitted (the
    Console of the running command; while progress bars are shown, rich's proxy, which keeps
    log lines above the bars)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


_QUIET_LIBRARIES = ("urllib3", "requests")


def _logging(*, verbose: bool, quiet: bool) -> None:
    """Logs on stderr, one redacted line a record, as logging.basicConfig would set them up:
    not when something else (a test runner) has configured logging already. -q keeps warnings
    and errors only."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    # urllib3's debug lines carry each request's path and query string: a presigned blob
    # redirect's X-Amz-Signature / X-Amz-Security-Token (S3, OSS) among them. Those libraries
    # log at INFO at most, whatever -v says; relay's own debug lines name what they fetch.
    for library in _QUIET_LIBRARIES:
        logger = logging.getLogger(library)
        logger.setLevel(max(logger.level, logging.INFO))
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    if root.handlers:
        return
    handler = _Handler()
    handler.setFormatter(safety.LogFormatter("relay: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


# --- the parser -------------------------------------------------------------------------------


class _Formatter(argparse.HelpFormatter):
    """Descriptions wrapped to the terminal; example blocks (lines indented by two spaces) kept
    as written, so they can be copied."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out = []
        for block in textwrap.dedent(text).strip("\n").split("\n\n"):
            if block.startswith("  ") or block.rstrip().endswith(":\n") or "\n  " in block:
                out.append("\n".join(indent + line for line in block.splitlines()))
            else:
                out.append(
                    textwrap.fill(
                        " ".join(block.split()),
                        width,
                        initial_indent=indent,
                        subsequent_indent=indent,
                    )
                )
        return "\n\n".join(out)


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _add(
    sub: Any,
    name: str,
    *,
    parents: Sequence[argparse.ArgumentParser],
    help: str,
    description: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        parents=list(parents),
        help=help,
        description=description,
        epilog=_examples(*examples),
        formatter_class=_Formatter,
    )
    return parser


def _tls_verify(value: str) -> bool:
    """skopeo's `--src-tls-verify=false`: a boolean in any of the spellings Go's ParseBool
    takes."""
    lowered = value.strip().lower()
    if lowered in ("1", "t", "true", "yes", "on"):
        return True
    if lowered in ("0", "f", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{value!r} is not true or false")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay",
        description="Relay overseas container images to your Harbor by way of Alibaba Cloud "
        "ACR. Every command acts on the repository in the current directory (or --repo DIR); "
        "-o json, -q and -v work before or after the command.",
        epilog=_examples(
            "relay validate",
            "relay doctor",
            "relay -o json plan | jq .lock.changes",
            "relay copy docker://nginx:1.27 registry.example.cn/mirrors/nginx:1.27",
        ),
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    # The global flags: here with real defaults, on every subcommand with SUPPRESS, so a flag
    # given after the subcommand sets the value and one given before it is not reset.
    _global_flags(parser, suppress=False)
    parser.add_argument(
        "-o",
        "--output",
        choices=document.FORMATS,
        default="text",
        help="text (default) or json: one JSON document on stdout (docs/json.md)",
    )
    globals_ = argparse.ArgumentParser(add_help=False)
    _global_flags(globals_, suppress=True)
    reporting = argparse.ArgumentParser(add_help=False)
    reporting.add_argument(
        "-o",
        "--output",
        choices=document.FORMATS,
        default=argparse.SUPPRESS,
        help="text (default) or json: one JSON document on stdout (docs/json.md)",
    )
    common = argparse.ArgumentParser(add_help=False, parents=[globals_])
    repo_arg = common.add_argument(
        "--repo",
        type=_directory,
        default=Path("."),
        metavar="DIR",
        help="the relay repository to act on (default: the current directory)",
    )
    repo_arg.complete = _DIRECTORY  # type: ignore[attr-defined]  # read by shtab
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
    changes = argparse.ArgumentParser(add_help=False)
    changes.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when there are changes (as git diff --exit-code); 0 when there are none",
    )
    dry = argparse.ArgumentParser(add_help=False)
    dry.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be copied (one HEAD on each side per image); copy nothing",
    )
    access = _access_parser()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add(
        sub,
        "validate",
        parents=[common, reporting],
        help="check mirrors/images.yaml and mirrors/relay.yaml",
        description="Check the mirrors list, the settings and the lock, offline: every problem "
        "with its file and line, and a hint for the usual YAML mistakes. Exit 2 on any "
        "problem; nothing is written. Run it before every commit; CI runs it on every pull "
        "request.",
        examples=[
            "relay validate",
            "relay validate --repo ../my-mirrors",
            "relay validate -o json",
        ],
    )

    p = _add(
        sub,
        "generate",
        parents=[common],
        help="render mirrors/dockerfiles/<name>/<tag>/Dockerfile from the list and the lock",
        description="Render one single-FROM Dockerfile per locked tag under mirrors/dockerfiles "
        "(the build transport: ACR builds them). A re-run rewrites nothing; Dockerfiles of "
        "removed entries are deleted. A tag without a digest is an error: run relay lock.",
        examples=["relay generate", "relay generate --check   # in CI: exit 1 if out of date"],
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and list what differs if the Dockerfiles are out of date",
    )

    p = _add(
        sub,
        "lock",
        parents=[common, reporting, sharded],
        help="resolve tags to digests into mirrors/images.lock",
        description="Resolve every listed tag (and what select: rules pick from upstream's "
        "tags) to a digest, media type and platforms, and write mirrors/images.lock. Tags "
        "already locked cost no request; --check and --update re-ask upstream for every tag. "
        "Needs the upstream registries (or registries.mirrors).",
        examples=[
            "relay lock",
            "relay lock --check       # exit 1 if a tag moved upstream",
            "relay lock --dry-run -o json",
        ],
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

    p = _add(
        sub,
        "plan",
        parents=[common, reporting, changes],
        help="what merging would do: the list checked, tags to lock, Dockerfiles to write",
        description="What merging this branch would do: the list checked, the tags relay lock "
        "would add, the Dockerfiles relay generate would write, pins checked upstream. Prints "
        "a terminal rendering; the pull-request comment's Markdown with --format markdown or "
        "--comment (which also posts it, updated in place on re-runs).",
        examples=[
            "relay plan",
            "relay plan --exit-code   # exit 1 when merging would change something",
            "relay plan --comment --pr 42",
        ],
    )
    p.add_argument(
        "--comment",
        action="store_true",
        help="also post the plan as a pull-request comment (updated in place on re-runs)",
    )
    p.add_argument(
        "--format",
        choices=("text", "markdown"),
        default=None,
        help="text: for the terminal (default); markdown: the pull-request comment "
        "(the default with --comment)",
    )
    p.add_argument("--pr", type=int, help="the pull request (default: from the Actions event)")
    out = p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write the plan to DIR/relay-plan.json, the artifact the comment run posts",
    )
    out.complete = _DIRECTORY  # type: ignore[attr-defined]

    p = _add(
        sub,
        "copy",
        parents=[common, reporting, access, dry],
        help="copy an image between registries, keeping its digest and every platform",
        description="Copy one image from a registry to another, as skopeo copy --all and crane "
        "copy do: the digest and every platform are kept, blobs the destination has are "
        "skipped, and an image already there costs one HEAD on each side. A reference without "
        "a tag means :latest (relay says so). docker:// prefixes are accepted. Works outside a "
        "relay repository too.",
        examples=[
            "relay copy docker://nginx:1.27 registry.example.cn/mirrors/nginx:1.27",
            "relay copy --dest-creds robot:TOKEN quay.io/coreos/etcd:v3.5.17 harbor.lan/m/etcd",
            "relay copy --platform linux/amd64 --dry-run nginx:1.27 harbor.lan:5000/m/nginx",
        ],
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
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=4,
        metavar="N",
        help="transfers at once: blobs of the image (default 4)",
    )

    p = _add(
        sub,
        "publish",
        parents=[common, reporting, sharded, delivered, dry],
        help="copy transport: copy every pinned tag to copy.registry/copy.namespace",
        description="The copy transport (transport: copy): copy every locked tag straight from "
        "upstream to copy.registry/copy.namespace/<name>:<tag>, keeping digests and "
        "platforms. Images already there cost one HEAD on each side; a failed image does not "
        "stop the others (exit 1 at the end). The target's login comes from "
        "RELAY_COPY_USERNAME / RELAY_COPY_PASSWORD.",
        examples=[
            "relay publish",
            "relay publish --dry-run",
            "relay publish --shard 2/4 --jobs 8 --delivered copied.txt",
        ],
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive,
        default=None,
        metavar="N",
        help="transfers at once: images (default: copy.concurrency, 4)",
    )

    p = _add(
        sub,
        "verify",
        parents=[common, reporting, sharded],
        help="check that upstream (the lock), ACR or the copy target, and Harbor agree per tag",
        description="Check, per locked tag, that upstream (as the lock records it), ACR (or "
        "the copy target) and Harbor hold the same image: about two manifest reads per tag. "
        "A tag is missing, stale or a mismatch, each with where. Exit 1 if any tag does not "
        "agree.",
        examples=["relay verify", "relay verify --only 'k8s_*'", "relay verify -o json"],
    )

    p = _add(
        sub,
        "sync",
        parents=[common, reporting, access, dry],
        help="copy sets of images between registries from image-syncer's auth and images files",
        description="Copy sets of images from image-syncer's files as they are (images.json or "
        "YAML; auth.json), each image as relay copy would. Failed images are retried in "
        "further passes; a bad entry does not stop the rest. image-syncer's --config file "
        "(auth and images in one) is not read: split it into --auth and --images.",
        examples=[
            "relay sync --images images.yaml --auth auth.yaml",
            "relay sync --images images.json --jobs 10 --dry-run",
            "relay sync --images images.yaml --dest-creds admin:PASS --dest-tls-verify=false",
        ],
    )
    images = p.add_argument(
        "--images", required=True, metavar="FILE", help="image-syncer images file"
    )
    images.complete = _FILE  # type: ignore[attr-defined]
    auth = p.add_argument("--auth", metavar="FILE", help="image-syncer auth file")
    auth.complete = _FILE  # type: ignore[attr-defined]
    p.add_argument(
        "--config",
        metavar="FILE",
        help="image-syncer's combined file: not read; relay says how to split it",
    )
    p.add_argument(
        "-j",
        "--jobs",
        "--proc",
        dest="jobs",
        type=_positive,
        default=5,
        metavar="N",
        help="transfers at once: images (default 5; --proc is image-syncer's name)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="further passes over the images that failed (default 2)",
    )

    p = _add(
        sub,
        "clients",
        parents=[common],
        help="what nodes and manifests need to pull from Harbor: mapping, kustomize, Kyverno, "
        "kubeadm, crictl, containerd, docker",
        description="What nodes and manifests need to pull the mirrored images from Harbor: "
        "the upstream → Harbor mapping, a kustomize Component, a Kyverno policy, kubeadm's "
        "imageRepository, crictl pull lines, containerd's hosts.toml, docker's daemon.json. "
        "Reads no registry.",
        examples=[
            "relay clients",
            "relay clients --format kyverno > policy.yaml",
            "relay clients --out clients/",
        ],
    )
    clients_output = p.add_mutually_exclusive_group()
    clients_output.add_argument(
        "--format",
        choices=CLIENT_FORMATS,
        default="mapping-md",
        help="print one output on stdout (default: mapping-md)",
    )
    clients_out = clients_output.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write every output into DIR; only files whose content changed are written",
    )
    clients_out.complete = _DIRECTORY  # type: ignore[attr-defined]

    p = _add(
        sub,
        "doctor",
        parents=[common, reporting],
        help="check everything a run needs, in parallel, in seconds; one line per finding",
        description="Check, in parallel and within seconds, what the configured stages need: "
        "the list and settings; each upstream registry (and Docker Hub's rate-limit headroom); "
        "the ACR AccessKey and namespace quota; Harbor's URL, TLS, login and the robot's "
        "permissions; GITHUB_TOKEN's scopes when set; the proxies in effect. One line per "
        "finding, with the fix. Exit 1 if something a configured stage needs is missing.",
        examples=["relay doctor", "relay doctor --timeout 5", "relay doctor -o json"],
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up on a check after this long (default 10)",
    )

    gh = sub.add_parser(
        "github",
        parents=[globals_],
        help="what the GitHub workflows ask of GitHub (see README)",
        description="What the GitHub workflows ask of GitHub; run by the workflows, rarely by "
        "hand.",
        epilog=_examples(
            "relay github settings", "relay github report-run --failed --what 'relay apply'"
        ),
        formatter_class=_Formatter,
    )
    gh_sub = gh.add_subparsers(dest="github_command", required=True, metavar="COMMAND")
    _add(
        gh_sub,
        "settings",
        parents=[common],
        help="print the workflow settings (github: section, transport) as step outputs",
        description="Print the github: section and the transport of mirrors/relay.yaml as "
        "GitHub step outputs, for the workflows' later jobs.",
        examples=["relay github settings"],
    )
    p = _add(
        gh_sub,
        "comment-plan",
        parents=[common],
        help="in a workflow_run run: post the plan artifact of the pull request's run",
        description="In the trusted workflow_run: read the plan artifact the pull request's "
        "run wrote (untrusted data, re-rendered) and post or edit the one plan comment.",
        examples=["relay github comment-plan --artifact plan/"],
    )
    artifact = p.add_argument("--artifact", type=Path, required=True, metavar="DIR")
    artifact.complete = _DIRECTORY  # type: ignore[attr-defined]
    _add(
        gh_sub,
        "propose",
        parents=[common],
        help="bring the lock and Dockerfiles to the default branch (a pull request, or a push)",
        description="Commit the lock and the Dockerfiles to the bot branch and open or update "
        "its pull request (changes: pull-request), or fast-forward the default branch "
        "(changes: push).",
        examples=["relay github propose"],
    )
    p = _add(
        gh_sub,
        "report-run",
        parents=[common],
        help="open, update or close the one issue about failing scheduled runs",
        description="Open, comment on or close the one issue about failing scheduled runs.",
        examples=[
            "relay github report-run --ok",
            "relay github report-run --failed --what 'relay harbor'",
        ],
    )
    outcome = p.add_mutually_exclusive_group(required=True)
    outcome.add_argument("--ok", action="store_true", help="the run succeeded")
    outcome.add_argument("--failed", action="store_true", help="the run failed")
    p.add_argument("--what", default="the scheduled run", help="what ran, for the issue")

    p = _add(
        sub,
        "import",
        parents=[common],
        help="add another tool's image list to mirrors/images.yaml (merging, never duplicating)",
        description="Add another tool's image list to mirrors/images.yaml: new entries are "
        "appended, tags merged into entries the list has, nothing duplicated; comments and "
        "order are kept. The result is validated before it is written.",
        examples=[
            "relay import images-txt images.txt",
            "relay import image-syncer images.json --dry-run",
            "kubeadm config images list | relay import refs /dev/stdin",
        ],
    )
    p.add_argument(
        "format",
        metavar="FORMAT",
        choices=["images-txt", "image-syncer", "refs"],
        help="images-txt (docker_image_pusher), image-syncer (its images file), "
        "refs (one reference a line)",
    )
    imported = p.add_argument("file", metavar="FILE", type=Path, help="the file to import")
    imported.complete = _FILE  # type: ignore[attr-defined]
    p.add_argument(
        "--dry-run", action="store_true", help="print the changes as a diff; write nothing"
    )

    acr = sub.add_parser(
        "acr",
        parents=[globals_],
        help="reconcile the ACR namespace, repositories and build rules; run builds",
        description="The build transport's ACR stage: plan, then apply.",
        epilog=_examples("relay acr plan", "relay acr apply --wait"),
        formatter_class=_Formatter,
    )
    acr_sub = acr.add_subparsers(dest="acr_command", required=True, metavar="COMMAND")
    p = _add(
        acr_sub,
        "plan",
        parents=[common, reporting, sharded, changes],
        help="print what `relay acr apply` would do; change nothing",
        description="Read ACR and print what relay acr apply would do: create the namespace "
        "or repositories, bind the GitHub source, add or update build rules, build tags that "
        "are missing or differ from upstream. Writes nothing. Needs the AccessKey in "
        "ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET.",
        examples=["relay acr plan", "relay acr plan --exit-code", "relay acr plan --prune -o json"],
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed rules no longer listed"
    )
    p = _add(
        acr_sub,
        "apply",
        parents=[common, reporting, sharded, delivered],
        help="create what is missing in ACR and build changed tags",
        description="Create what is missing in ACR (namespace, repositories, source binding, "
        "build rules) and build the tags that are missing or differ from the lock; with --wait "
        "watch the builds to the end. Prints a table per tag; exit 1 if a build failed.",
        examples=[
            "relay acr apply --wait",
            "relay acr apply --wait --timeout 1800 --shard 1/3",
            "relay acr apply --prune",
        ],
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
        parents=[globals_],
        help="reconcile Harbor's ali-acr endpoint, project and pull policies; run replications",
        description="The Harbor stage: plan, apply, replicate. Run it where Harbor can be "
        "reached (a self-hosted runner or an admin machine).",
        epilog=_examples("relay harbor plan", "relay harbor replicate --wait"),
        formatter_class=_Formatter,
    )
    harbor_sub = harbor.add_subparsers(dest="harbor_command", required=True, metavar="COMMAND")
    p = _add(
        harbor_sub,
        "plan",
        parents=[common, reporting, changes],
        help="print what `relay harbor apply` would change; change nothing",
        description="Read Harbor and print what relay harbor apply would change: the ali-acr "
        "endpoint, the project, the pull policies. Writes nothing. Needs HARBOR_USERNAME / "
        "HARBOR_PASSWORD.",
        examples=[
            "relay harbor plan",
            "relay harbor plan --exit-code",
            "relay harbor plan -o json",
        ],
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed objects no longer wanted"
    )
    p = _add(
        harbor_sub,
        "apply",
        parents=[common, reporting],
        help="make the endpoint, project and policies match the settings",
        description="Make Harbor's ali-acr endpoint, the project and the pull policies match "
        "harbor: in mirrors/relay.yaml. A second run writes nothing; relay never touches "
        "objects it did not create.",
        examples=["relay harbor apply", "relay harbor apply --prune", "relay harbor apply -o json"],
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed objects no longer wanted"
    )
    p = _add(
        harbor_sub,
        "replicate",
        parents=[common, reporting],
        help="run the pull policy (or only some repositories) and watch it with --wait",
        description="Run the pull policy now (or, with --only, the fast-path policy for those "
        "repositories; with --missing, also for every listed image Harbor lacks) and with --wait "
        "watch it to the end. Prints a table per repository; exit 1 if anything failed.",
        examples=[
            "relay harbor replicate --wait",
            "relay harbor replicate --wait --missing --only nginx k8s_pause",
            "relay harbor replicate --wait --timeout 600 -o json",
        ],
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
    p.add_argument(
        "--missing",
        action="store_true",
        help="also replicate the listed images Harbor's registry lacks or holds another image "
        "of, judged against the lock (what a stopped run never handed over)",
    )

    sandbox = sub.add_parser(
        "sandbox",
        parents=[globals_],
        help="relay's whole world on this machine: emulated upstreams, ACR and Harbor",
        description="Stand-ins for everything relay talks to, on loopback: upstream "
        "registries, ACR, Harbor, GitHub.",
        epilog=_examples("relay sandbox demo", "relay sandbox up", "relay sandbox down"),
        formatter_class=_Formatter,
    )
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND")
    where = argparse.ArgumentParser(add_help=False, parents=[globals_])
    where_dir = where.add_argument(
        "--dir", type=Path, default=None, metavar="DIR", help="where the sandbox keeps its state"
    )
    where_dir.complete = _DIRECTORY  # type: ignore[attr-defined]
    _add(
        sandbox_sub,
        "up",
        parents=[where],
        help="start it in the background and print how to point relay at it",
        description="Start the sandbox in the background and print the environment to export "
        "and a relay.yaml to use.",
        examples=["relay sandbox up", "relay sandbox up --dir /tmp/relay-sandbox"],
    )
    _add(
        sandbox_sub,
        "status",
        parents=[where],
        help="say whether it is up, and where",
        description="Say whether the sandbox is up, and where each part listens.",
        examples=["relay sandbox status"],
    )
    _add(
        sandbox_sub,
        "down",
        parents=[where],
        help="stop it and remove what it made",
        description="Stop every process of the sandbox and remove its directory.",
        examples=["relay sandbox down"],
    )
    p = _add(
        sandbox_sub,
        "demo",
        parents=[common],
        help="run relay's main job through the sandbox, from a pull request to a pull",
        description="relay's main job on this machine, from a pull request to a pull from "
        "Harbor, with no cloud account and no internet (make demo).",
        examples=["relay sandbox demo", "relay sandbox demo --keep"],
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="after the job, keep the sandbox and the scratch copy running for a look until "
        "Ctrl-C, then stop and remove them",
    )

    p = _add(
        sub,
        "completion",
        parents=[globals_],
        help="print a bash or zsh completion script",
        description="Print a tab-completion script for bash or zsh (generated from relay's own "
        "argument parser by shtab). Load it from your shell's start-up file.",
        examples=[
            "relay completion bash > ~/.local/share/bash-completion/completions/relay",
            "relay completion zsh > ~/.zfunc/_relay   # with fpath+=(~/.zfunc) before compinit",
            'eval "$(relay completion bash)"',
        ],
    )
    p.add_argument("shell", choices=("bash", "zsh"), help="the shell")
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


def _global_flags(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="log debug detail"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="no progress and no informational logs; warnings, errors and data only",
    )


def _access_parser() -> argparse.ArgumentParser:
    """skopeo's and crane's flags for logins and TLS, on `copy` and `sync`."""
    access = argparse.ArgumentParser(add_help=False)
    access.add_argument(
        "--src-creds",
        metavar="USER[:PASS]",
        help="login for the source registry (asks for the password on a terminal if omitted)",
    )
    access.add_argument(
        "--dest-creds",
        metavar="USER[:PASS]",
        help="login for the destination registry (asks for the password if omitted)",
    )
    authfile = access.add_argument(
        "--authfile",
        type=Path,
        metavar="FILE",
        help="logins in docker's config.json format (docker login's, podman's auth.json), "
        "asked before relay's usual sources",
    )
    authfile.complete = _FILE  # type: ignore[attr-defined]
    access.add_argument(
        "--src-tls-verify",
        type=_tls_verify,
        default=True,
        metavar="BOOL",
        help="false: the source may use plain HTTP or an unverified certificate",
    )
    access.add_argument(
        "--dest-tls-verify",
        type=_tls_verify,
        default=True,
        metavar="BOOL",
        help="false: the destination may use plain HTTP or an unverified certificate",
    )
    access.add_argument(
        "--insecure",
        action="store_true",
        help="both sides may use plain HTTP or unverified certificates (crane's flag)",
    )
    return access


def _command_name(args: argparse.Namespace) -> str:
    command = str(args.command)
    for group in ("acr", "harbor", "github", "sandbox"):
        if command == group:
            return f"{group} {getattr(args, f'{group}_command')}"
    return command


def _access(args: argparse.Namespace) -> Access:
    from relay.commands.access import Access

    return Access(
        src_creds=args.src_creds,
        dest_creds=args.dest_creds,
        authfile=args.authfile,
        src_tls_verify=args.src_tls_verify and not args.insecure,
        dest_tls_verify=args.dest_tls_verify and not args.insecure,
    )


def _dispatch(args: argparse.Namespace) -> int:
    """Call the command's typed function. Each command module is imported only when it runs:
    `relay generate` does not pay for requests, `relay copy` not for the mirrors list."""
    command = args.command
    output: document.Format = getattr(args, "output", "text")
    if command == "validate":
        from relay.commands.validate import validate

        return validate(repo=args.repo, output=output)
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
            output=output,
        )
    if command == "plan":
        from relay.commands.plan import plan

        fmt: Literal["text", "markdown"] = args.format or ("markdown" if args.comment else "text")
        return plan(
            repo=args.repo,
            comment=args.comment,
            pr=args.pr,
            out=args.out,
            fmt=fmt,
            output=output,
            exit_code=args.exit_code,
        )
    if command == "copy":
        from relay.commands.copyimage import copy

        return copy(
            repo=args.repo,
            source=args.source,
            destination=args.destination,
            platforms=args.platform,
            jobs=args.jobs,
            access=_access(args),
            dry_run=args.dry_run,
            output=output,
        )
    if command == "publish":
        from relay.commands.publish import publish

        return publish(
            repo=args.repo,
            shard=_shard(args),
            only=tuple(args.only),
            delivered=args.delivered,
            jobs=args.jobs,
            dry_run=args.dry_run,
            output=output,
        )
    if command == "verify":
        from relay.commands.verify import verify

        return verify(repo=args.repo, output=output, shard=_shard(args), only=tuple(args.only))
    if command == "sync":
        from relay.commands.sync import sync

        return sync(
            repo=args.repo,
            images=args.images,
            auth=args.auth,
            config=args.config,
            jobs=args.jobs,
            retries=args.retries,
            access=_access(args),
            dry_run=args.dry_run,
            output=output,
        )
    if command == "clients":
        from relay.commands.clients import clients

        return clients(repo=args.repo, fmt=args.format, out=args.out)
    if command == "doctor":
        from relay.commands.doctor import doctor

        return doctor(repo=args.repo, timeout=args.timeout, output=output)
    if command == "completion":
        return _completion(args.shell)
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
                repo=args.repo,
                prune=args.prune,
                shard=_shard(args),
                only=tuple(args.only),
                output=output,
                exit_code=args.exit_code,
            )
        return acr_apply(
            repo=args.repo,
            wait=args.wait,
            timeout=args.timeout,
            prune=args.prune,
            shard=_shard(args),
            only=tuple(args.only),
            delivered=args.delivered,
            output=output,
        )
    if command == "harbor":
        from relay.commands.harbor import harbor_apply, harbor_plan, harbor_replicate

        if args.harbor_command == "plan":
            return harbor_plan(
                repo=args.repo, prune=args.prune, output=output, exit_code=args.exit_code
            )
        if args.harbor_command == "apply":
            return harbor_apply(repo=args.repo, prune=args.prune, output=output)
        return harbor_replicate(
            repo=args.repo,
            wait=args.wait,
            timeout=args.timeout,
            only=args.only,
            missing=args.missing,
            output=output,
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


def _completion(shell: str) -> int:
    """shtab turns this very parser into a static script: nothing runs relay on each Tab."""
    import shtab

    print(shtab.complete(_parser(), shell=shell), end="")
    return 0


def _shard(args: argparse.Namespace) -> Shard | None:
    """`--shard I/N`, parsed by the one sharding rule (relay.config.shard)."""
    from relay.config.shard import parse

    return None if args.shard is None else parse(args.shard)


def run() -> NoReturn:
    """The console entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
