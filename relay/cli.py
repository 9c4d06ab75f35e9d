"""The command line. The only place that turns relay's exceptions into exit codes.

Exit codes: 0 success; 1 a check failed, drift was found or an operation failed; 2 invalid input
or usage. Data goes to stdout, logging to stderr.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# Each command imports what it needs when it runs: `relay generate` does not pay for requests,
# and `relay copy` (measured against skopeo, a Go binary) does not pay for the mirrors list.
from relay import __version__, reference
from relay.config import settings
from relay.errors import (
    CheckFailed,
    InputError,
    OperationFailed,
    Problem,
    ProblemsFound,
    RelayError,
)
from relay.output import ghactions

if TYPE_CHECKING:
    from relay.config import mirrors

log = logging.getLogger("relay")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="relay: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except (InputError, ProblemsFound) as exc:
        _report(exc.problems)
        return exc.exit_code
    except CheckFailed as exc:
        for detail in exc.details:
            print(detail)
        print(f"relay: {exc}", file=sys.stderr)
        if ghactions.active():
            print(f"::error::{exc}", file=sys.stderr)
        return exc.exit_code
    except RelayError as exc:
        print(f"relay: error: {exc}", file=sys.stderr)
        if ghactions.active():
            print(f"::error::{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("relay: interrupted", file=sys.stderr)
        return 130


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)
        ghactions.annotate(problem)
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
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="the relay repository to act on (default: the current directory)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "validate", parents=[common], help="check mirrors/images.yaml and mirrors/relay.yaml"
    )
    p.set_defaults(func=cmd_validate)

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
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "lock", parents=[common], help="resolve tags to digests into mirrors/images.lock"
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
    p.set_defaults(func=cmd_lock)

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
    p.set_defaults(func=cmd_plan)

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
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser(
        "publish",
        parents=[common],
        help="copy transport: copy every pinned tag to copy.registry/copy.namespace",
    )
    p.set_defaults(func=cmd_publish)

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
    p.set_defaults(func=cmd_sync)

    acr = sub.add_parser(
        "acr", help="reconcile the ACR namespace, repositories and build rules; run builds"
    )
    acr_sub = acr.add_subparsers(dest="acr_command", required=True, metavar="COMMAND")
    p = acr_sub.add_parser(
        "plan", parents=[common], help="print what `relay acr apply` would do; change nothing"
    )
    p.add_argument(
        "--prune", action="store_true", help="also remove relay-managed rules no longer listed"
    )
    p.set_defaults(func=cmd_acr_plan)
    p = acr_sub.add_parser(
        "apply", parents=[common], help="create what is missing in ACR and build changed tags"
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
    p.set_defaults(func=cmd_acr_apply)
    return parser


def _load(repo: Path) -> tuple[settings.Settings, mirrors.MirrorList]:
    from relay.config import mirrors

    if not repo.is_dir():
        raise InputError(f"--repo {repo}: not a directory")
    cfg = settings.load(repo)
    return cfg, mirrors.load(repo, cfg)


def cmd_validate(args: argparse.Namespace) -> int:
    from relay.config import lockfile as lock

    _, mirror_list = _load(args.repo)
    lock.read(args.repo)
    tags = sum(len(e.tags) for e in mirror_list.entries)
    rules = sum(1 for e in mirror_list.entries if e.select is not None)
    print(
        f"{mirror_list.path}: {len(mirror_list.entries)} images, {tags} explicit tags, "
        f"{rules} with selection rules: ok"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from relay.config import lockfile as lock
    from relay.stages import generate

    _, mirror_list = _load(args.repo)
    want = generate.desired(mirror_list, lock.read(args.repo))
    changes = generate.plan(want, generate.scan(args.repo))
    if args.check:
        if changes:
            raise CheckFailed(
                f"{len(changes)} Dockerfile(s) out of date; run `relay generate` and commit",
                [str(c) for c in changes],
            )
        print(f"{len(want)} Dockerfiles up to date")
        return 0
    generate.apply(args.repo, changes)
    for change in changes:
        print(change)
    counts = {a: sum(1 for c in changes if c.action == a) for a in ("create", "update", "delete")}
    print(
        f"{len(want)} Dockerfiles: {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} deleted, {len(want) - counts['create'] - counts['update']} unchanged"
    )
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from relay.config import lockfile as lock
    from relay.registry.pool import ClientPool
    from relay.stages import lock as resolve

    cfg, mirror_list = _load(args.repo)
    old = lock.read(args.repo)
    recheck = args.check or args.update
    with ClientPool(cfg.registries, repo=args.repo) as pool:
        result = resolve.resolve(
            mirror_list,
            old,
            pool,
            recheck=recheck,
            concurrency=cfg.lock.concurrency,
            config_platforms=_config_platforms(cfg),
        )
        requests = pool.stats.total_requests
    if result.problems:
        raise ProblemsFound(result.problems)
    changes = resolve.diff(old, result.lock)
    for change in changes:
        print(change)
    tags = sum(len(t) for t in result.lock.images.values())
    summary = f"{tags} tags resolved with {requests} registry requests"
    if args.check:
        if changes:
            raise CheckFailed(f"{summary}; the lock differs from upstream in {len(changes)} tag(s)")
        print(f"{summary}; the lock matches upstream")
        return 0
    if args.dry_run:
        print(f"{summary}; {len(changes)} change(s); dry run: lock not written")
        return 0
    written = lock.write(args.repo, result.lock)
    print(f"{summary}; {len(changes)} change(s); lock {'written' if written else 'unchanged'}")
    return 0


def _config_platforms(
    cfg: settings.Settings,
) -> Callable[[mirrors.Entry], tuple[str, ...]] | None:
    """With an ACR stage, the platform whose config the lock records for each entry: the ACR
    stage compares it, and recording it once saves an upstream request per tag per apply."""
    if not cfg.acr.namespace:
        return None
    from relay.stages.acr.plan import compared_platform

    def config_platforms(entry: mirrors.Entry) -> tuple[str, ...]:
        return (compared_platform(entry, cfg.acr),)

    return config_platforms


def cmd_plan(args: argparse.Namespace) -> int:
    from relay.config import lockfile as lock
    from relay.output import prcomment
    from relay.output.prcomment import Section
    from relay.registry.pool import ClientPool
    from relay.stages import generate
    from relay.stages import lock as resolve

    def publish(body: str) -> None:
        print(body)
        ghactions.summary(body)
        if not args.comment:
            return
        number = args.pr or prcomment.pull_request_number(os.environ)
        if number is None:
            log.warning("not a pull request run and no --pr given; no comment posted")
            return
        try:
            repository, token, api_url = prcomment.environment()
            done = prcomment.post(
                body, repository=repository, number=number, token=token, api_url=api_url
            )
            log.info("plan comment on %s#%d: %s", repository, number, done)
        except RelayError as exc:
            # A fork's read-only token, say: the plan still stands in the log and summary.
            log.warning("%s", exc)

    try:
        cfg, mirror_list = _load(args.repo)
        old = lock.read(args.repo)
    except InputError as exc:
        publish(prcomment.render([Section("Problems", [str(p) for p in exc.problems])], ok=False))
        raise
    tags = sum(len(e.tags) for e in mirror_list.entries)
    sections = [Section(mirror_list.path, [f"{len(mirror_list.entries)} images, {tags} tags: ok"])]
    with ClientPool(cfg.registries, repo=args.repo) as pool:
        result = resolve.resolve(
            mirror_list,
            old,
            pool,
            recheck=False,
            concurrency=cfg.lock.concurrency,
            config_platforms=_config_platforms(cfg),
        )
    if result.problems:
        sections.append(Section("Problems", [str(p) for p in result.problems]))
    changes = resolve.diff(old, result.lock)
    sections.append(
        Section("Lock (relay lock)", [str(c) for c in changes], "the lock holds every tag")
    )
    if not result.problems:
        dockerfiles = generate.plan(
            generate.desired(mirror_list, result.lock), generate.scan(args.repo)
        )
        sections.append(
            Section("Dockerfiles (relay generate)", [str(c) for c in dockerfiles], "up to date")
        )
    publish(prcomment.render(sections, ok=not result.problems))
    if result.problems:
        raise ProblemsFound(result.problems)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from relay.ops import copyimage as copy
    from relay.registry.pool import ClientPool

    try:
        src = reference.parse(args.source)
        dst = reference.parse(args.destination)
    except ValueError as exc:
        raise InputError(f"bad image reference: {exc}") from None
    cfg = settings.load(args.repo) if (args.repo / settings.SETTINGS_FILE).exists() else None
    registries = cfg.registries if cfg else None
    with ClientPool(registries, repo=args.repo) as pool:
        result = copy.copy_image(pool, src, dst, platforms=args.platform, workers=args.jobs)
        requests = pool.stats.total_requests
    if result.unchanged:
        print(
            f"{result.destination}: already {result.digest}; nothing copied ({requests} requests)"
        )
        return 0
    print(
        f"{result.destination}: {result.digest} "
        f"({result.blobs_copied} blobs copied, {result.bytes_copied} bytes; "
        f"{result.blobs_mounted} mounted; {result.blobs_present} already there; "
        f"{requests} requests)"
    )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from relay.config import lockfile as lock
    from relay.config import pins
    from relay.registry.pool import ClientPool
    from relay.stages import publish

    cfg, mirror_list = _load(args.repo)
    if cfg.transport != "copy":
        raise InputError(
            "relay publish is the copy transport; mirrors/relay.yaml says "
            f"transport: {cfg.transport} (ACR builds the Dockerfiles instead)"
        )
    registry, namespace = publish.target(cfg.copy)
    selected = pins.pins(mirror_list, lock.read(args.repo))
    with ClientPool(cfg.registries, repo=args.repo) as pool:
        report = publish.publish(
            selected, pool, registry, namespace, concurrency=cfg.copy.concurrency
        )
        requests = pool.stats.total_requests
    print(report.table())
    ghactions.summary(report.markdown())
    failed = sum(1 for o in report.outcomes if o.error)
    print(f"{len(report.outcomes)} images, {failed} failed, {requests} registry requests")
    if not report.ok:
        raise OperationFailed(f"{failed} of {len(report.outcomes)} images failed to copy")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from relay import sync

    cfg = settings.load(args.repo) if (args.repo / settings.SETTINGS_FILE).exists() else None
    report = sync.run(
        args.images,
        args.auth,
        proc=args.proc,
        retries=args.retries,
        settings=cfg.registries if cfg else None,
        repo=args.repo,
    )
    if not report.ok:
        raise OperationFailed(f"{len(report.failed)} image(s) failed after the retries")
    return 0


def cmd_acr_plan(args: argparse.Namespace) -> int:
    actions = _acr(args, lambda commands, common: commands.plan(**common))
    for action in actions:
        print(action)
    print(f"{len(actions)} action(s)" if actions else "ACR is up to date: nothing to do")
    return 0


def cmd_acr_apply(args: argparse.Namespace) -> int:
    report = _acr(
        args,
        lambda commands, common: commands.apply(
            **common, wait=args.wait, timeout=args.timeout, out=sys.stdout
        ),
    )
    if not report.ok:
        raise OperationFailed("some ACR builds failed or did not finish; see the table above")
    return 0


def _acr(args: argparse.Namespace, run: Callable[[Any, dict[str, Any]], Any]) -> Any:
    """Load what both ACR commands need and call `run(relay.acr.commands, arguments)`."""
    # Imported here: the Alibaba SDK is slow to import and only these commands need it.
    from relay.commands import acr as commands
    from relay.config import lockfile as lock
    from relay.registry.pool import ClientPool
    from relay.stages.acr import upstream

    cfg, mirror_list = _load(args.repo)
    locked = lock.read(args.repo)
    with ClientPool(cfg.registries, repo=args.repo) as pool:
        common = {
            "repo": args.repo,
            "settings": cfg,
            "mirrors": mirror_list,
            "lock": locked,
            "env": os.environ,
            # The lock answers for upstream's config; the registry only for older locks.
            "upstream_config": upstream.from_lock(locked, upstream.from_registry(pool.get)),
            "prune": args.prune,
        }
        return run(commands, common)


def run() -> NoReturn:
    """The console entry point: main(), then a quick exit.

    Tearing down the interpreter's modules takes Python about 20 ms on a 2-core runner
    (requests' alone 16 ms): a tenth of a small `relay copy`, paid after the work is done.
    When nothing else is running, relay runs the atexit handlers (logging's among them),
    flushes its output and leaves without that teardown; otherwise it exits normally.
    """
    code = main()
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if threading.active_count() > 1 or run_exit_handlers is None:
        sys.exit(code)
    try:
        run_exit_handlers()
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # a closed pipe, say: the normal exit reports it as usual
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
