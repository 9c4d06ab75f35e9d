"""Running a sync: expand the rules, copy the pairs `proc` at a time, retry what failed.

The registries each step needs are pinged side by side before it (never for an entry that
fails without a request); one out of reach is found out once (relay.net.reachability), its
images fail at once and are not retried in later passes (nothing would change within the
run), and the report says so once per registry.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from relay import safety
from relay.config.settings import RegistrySettings
from relay.errors import InputError, RelayError
from relay.net.reachability import outage_of
from relay.ops.copyimage import CopyPlan, CopyResult, copy_image, plan_copy
from relay.output import ghactions, outages
from relay.output.progress import NULL, Progress, Task
from relay.output.tables import human_size
from relay.reference import is_valid_tag
from relay.registry.credentials import CredentialChain, CredentialProvider, default_credentials
from relay.registry.pool import ClientPool, RegistryOptions
from relay.sync.files import AuthFile, load_auth, load_rules
from relay.sync.report import (
    COPIED,
    FAILED,
    SKIPPED,
    UNCHANGED,
    WOULD_COPY,
    ImageResult,
    SyncReport,
)
from relay.sync.rules import Pair, PermanentFailure, Rule, pair_tags, static_pairs
from relay.userregex import compile_pattern

log = logging.getLogger(__name__)

DEFAULT_PROC = 5  # image-syncer's --proc default
DEFAULT_RETRIES = 2  # image-syncer's --retries default
# Blobs moved at once within one image; --proc images run side by side on top of that.
BLOB_WORKERS = 4


@dataclass
class _Job:
    pair: Pair
    rule: Rule
    attempts: int = 0
    result: CopyResult | None = None
    planned: CopyPlan | None = None  # --dry-run
    error: str = ""
    final: bool = False  # failed in a way another pass cannot fix
    twin: bool = False  # the same copy as an earlier rule's: done there, reported there
    cause: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.planned is not None or self.final or self.twin


@dataclass
class _Expansion:
    rule: Rule
    attempts: int = 0
    error: str = ""
    final: bool = False
    cause: BaseException | None = None
    jobs: list[_Job] | None = None  # set once expanded
    listed: int = 0  # tags listed upstream, for the "nothing matched" message

    @property
    def done(self) -> bool:
        return self.jobs is not None or self.final


def run(
    images: str | os.PathLike[str],
    auth: str | os.PathLike[str] | None = None,
    *,
    proc: int = DEFAULT_PROC,
    retries: int = DEFAULT_RETRIES,
    settings: RegistrySettings | RegistryOptions | None = None,
    repo: Path | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    rules: list[Rule] | None = None,
    auth_file: AuthFile | None = None,
    credentials: CredentialProvider | None = None,
    secrets: Sequence[str] = (),
    dry_run: bool = False,
    progress: Progress = NULL,
    show: bool = True,
) -> SyncReport:
    """Sync everything ``images`` asks for; print the table (unless ``show`` is false);
    return the report.

    ``settings``/``repo`` configure TLS as for every other command (CA bundles, insecure
    registries); credentials come from ``auth`` first, then relay's usual sources, unless the
    caller passes its own chain (``credentials``, with the files already read as ``rules``
    and ``auth_file``). Bad files raise InputError before any request; registry failures end
    up in the report, never raised. With ``dry_run`` each image costs one HEAD on each side
    and nothing is copied.
    """
    if proc < 1:
        raise InputError("--proc must be at least 1")
    if retries < 0:
        raise InputError("--retries must not be negative")
    env = environ if environ is not None else os.environ
    if rules is None:
        rules = load_rules(images, env)
    if auth_file is None and auth is not None:
        auth_file = load_auth(auth, env)
    hidden = [*(auth_file.secrets if auth_file else []), *secrets]
    if credentials is None:
        fallback = default_credentials(env)
        providers = ([auth_file.provider] if auth_file else []) + fallback.providers
        credentials = CredentialChain(providers)

    report = SyncReport()
    with ClientPool(
        settings,
        repo=repo,
        credentials=credentials,
        environ=env,
        pool_size=max(32, proc * BLOB_WORKERS),
    ) as pool:
        bar = progress.task("images", 0)
        work = _Work(pool, hidden, dry_run, progress, bar)
        expansions = _execute(work, rules, proc, retries, report)
        bar.finish()
        report.requests = pool.stats.total_requests
    report.results = _rows(expansions)
    failed = [e.cause for e in expansions if e.jobs is None]
    failed += [j.cause for e in expansions for j in e.jobs or [] if j.result is None]
    report.unreachable = outages.summarise(
        failed, command="relay sync", targets=[r.target.domain for r in rules]
    )
    table = report.table()
    if show:
        print(table.text(), file=out or sys.stdout)
    ghactions.summary(table)
    return report


@dataclass
class _Work:
    """What every copy of a run shares."""

    pool: ClientPool
    secrets: list[str]
    dry_run: bool
    progress: Progress
    images: Task  # the images bar: grows as rules expand, advances as images finish


def _execute(
    work: _Work,
    rules: list[Rule],
    proc: int,
    retries: int,
    report: SyncReport,
) -> list[_Expansion]:
    expansions = [_Expansion(rule) for rule in rules]
    owners: dict[str, _Job] = {}  # destination -> the job writing it
    for number in range(1, retries + 2):
        expand = [e for e in expansions if not e.done]
        copy = [j for e in expansions for j in (e.jobs or []) if not j.done]
        if not expand and not copy:
            break
        if number > 1:
            log.info(
                "pass %d of %d: retrying %d image(s) and %d rule(s) that failed",
                number,
                retries + 1,
                len(copy),
                len(expand),
            )
        report.passes = number
        with ThreadPoolExecutor(max_workers=proc) as executor:
            # Tag listings first, so new pairs join this pass's copies. The registries each
            # step needs are pinged side by side first (a registry pinged already costs
            # nothing; one out of reach is found out once, alongside the others).
            work.pool.probe(e.rule.repository.domain for e in expand if e.rule.needs_listing)
            list(executor.map(lambda e: _expand(work.pool, e, work.secrets), expand))
            for expansion in expand:
                for job in expansion.jobs or []:
                    _claim(job, owners)
                work.images.grow(sum(1 for j in expansion.jobs or [] if not j.done))
            copy = [j for e in expansions for j in (e.jobs or []) if not j.done]
            work.pool.probe(
                [*(j.pair.source.domain for j in copy), *(j.pair.destination.domain for j in copy)]
            )
            list(executor.map(lambda j: _copy(work, j), copy))
    return expansions


def _claim(job: _Job, owners: dict[str, _Job]) -> None:
    """Two sources written to one destination would race, and the last would win: refuse."""
    key = job.pair.destination_text
    other = owners.get(key)
    if other is None:
        owners[key] = job
        return
    if other.pair.source == job.pair.source:
        job.twin = True  # e.g. "repo" and "repo:1" both to the same place: copy once
        return
    message = (
        f"{key} is also the destination of {other.pair.source_text}"
        f"{f' (line {other.rule.line})' if other.rule.line else ''}"
    )
    job.error, job.final = message, True
    if other.attempts == 0 and not other.final:
        other.error = (
            f"{key} is also the destination of {job.pair.source_text}"
            f"{f' (line {job.rule.line})' if job.rule.line else ''}"
        )
        other.final = True


def _expand(pool: ClientPool, expansion: _Expansion, secrets: list[str]) -> None:
    rule = expansion.rule
    expansion.attempts += 1
    try:
        if rule.needs_listing:
            listed = pool.get(rule.repository.domain).list_tags(rule.repository.path)
            expansion.listed = len(listed)
            tags = [t for t in listed if _selected(rule, t)]
            pairs = pair_tags(rule, tags)
        else:
            pairs = static_pairs(rule)
    except PermanentFailure as exc:
        expansion.error, expansion.final = str(exc), True
        log.warning("%s -> %s: %s", rule.source, rule.destination, exc)
        return
    except Exception as exc:  # noqa: BLE001 - one rule's failure must not stop the others
        expansion.error = _describe(exc, secrets)
        expansion.cause = exc
        expansion.final = outage_of(exc) is not None  # out of reach for the whole run
        log.warning(
            "%s: listing tags failed (attempt %d): %s",
            rule.source,
            expansion.attempts,
            expansion.error,
        )
        log.debug("traceback", exc_info=True)
        return
    expansion.error = ""
    expansion.jobs = [_Job(pair, rule) for pair in pairs]


def _selected(rule: Rule, tag: str) -> bool:
    if not is_valid_tag(tag):
        log.warning("%s: skipping tag %r, which is not a valid tag", rule.repository, tag)
        return False
    # Searched, not anchored: image-syncer matches with Go's MatchString.
    return rule.pattern is None or compile_pattern(rule.pattern).search(tag)


def _copy(work: _Work, job: _Job) -> None:
    pair = job.pair
    job.attempts += 1
    if work.dry_run:
        try:
            job.planned = plan_copy(work.pool, pair.source, pair.destination)
        except Exception as exc:  # noqa: BLE001 - one image's failure must not stop the others
            job.error = _describe(exc, work.secrets)
            job.cause = exc
            job.final = outage_of(exc) is not None  # out of reach for the whole run
            log.warning("%s: dry run: %s", pair.source_text, job.error)
        else:
            job.error = ""
            work.images.advance()
        return
    meter = work.progress.task(pair.destination_text, 0, unit="bytes")
    try:
        result = copy_image(
            work.pool, pair.source, pair.destination, workers=BLOB_WORKERS, meter=meter
        )
    except Exception as exc:  # noqa: BLE001 - one image's failure must not stop the others
        meter.finish()
        job.error = _describe(exc, work.secrets)
        job.cause = exc
        job.final = outage_of(exc) is not None  # out of reach for the whole run
        log.warning(
            "%s -> %s: failed (attempt %d): %s",
            pair.source_text,
            pair.destination_text,
            job.attempts,
            job.error,
        )
        log.debug("traceback", exc_info=True)
        return
    meter.finish()
    work.images.advance()
    job.result, job.error = result, ""
    if result.unchanged:
        log.info("%s: unchanged (%s)", pair.destination_text, result.digest)
    else:
        log.info(
            "%s: copied from %s (%s, %s)",
            pair.destination_text,
            pair.source_text,
            result.digest,
            human_size(result.bytes_copied),
        )


def _describe(exc: BaseException, secrets: list[str]) -> str:
    # Every secret relay knows (the auth file's among them) is redacted by relay.safety.
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, RelayError):
        text = f"{type(exc).__name__}: {text}"
    return safety.one_line(text, None)


def _rows(expansions: list[_Expansion]) -> list[ImageResult]:
    rows: list[ImageResult] = []
    for expansion in expansions:
        rule = expansion.rule
        if expansion.jobs is None:
            rows.append(
                ImageResult(
                    rule.source,
                    rule.destination,
                    FAILED,
                    attempts=expansion.attempts,
                    error=expansion.error,
                    line=rule.line,
                )
            )
            continue
        if not expansion.jobs:
            what = f"no tag matches /{rule.pattern}/" if rule.pattern else "no tags"
            rows.append(
                ImageResult(
                    rule.source,
                    rule.destination,
                    SKIPPED,
                    attempts=expansion.attempts,
                    error=f"{what} ({expansion.listed} listed)",
                    line=rule.line,
                )
            )
            continue
        for job in expansion.jobs:
            if job.twin:
                continue
            row = ImageResult(
                job.pair.source_text,
                job.pair.destination_text,
                FAILED,
                attempts=job.attempts,
                error=job.error,
                line=rule.line,
            )
            if job.result is not None:
                row.result = UNCHANGED if job.result.unchanged else COPIED
                row.digest = job.result.digest
                row.bytes = job.result.bytes_copied
                row.error = ""
            elif job.planned is not None:
                row.result = UNCHANGED if job.planned.unchanged else WOULD_COPY
                row.digest = job.planned.digest
                row.error = ""
            rows.append(row)
    return rows
