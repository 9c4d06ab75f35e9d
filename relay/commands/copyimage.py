"""`relay copy SRC DST [--platform P]... [--dry-run]`: copy one image between registries.

skopeo's and crane's flags work (relay.commands.access): `docker://`, `--src-creds`,
`--dest-creds`, `--authfile`, `--src-tls-verify=false`, `--dest-tls-verify=false`,
`--insecure`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from relay import platforms as platform_rules
from relay.commands.access import Access, credentials, image_reference, note_latest
from relay.commands.access import registry_options as options_for
from relay.commands.common import optional_settings
from relay.errors import InputError, OperationFailed, RelayError
from relay.ops.copyimage import CopyResult, copy_image, plan_copy
from relay.output import document, outages, progress
from relay.registry.pool import ClientPool
from relay.safety import show


def copy(
    *,
    repo: Path,
    source: str,
    destination: str,
    platforms: list[str],
    jobs: int = 4,
    access: Access | None = None,
    dry_run: bool = False,
    output: document.Format = "text",
) -> int:
    access = access or Access()
    src = image_reference(source, "SRC")
    dst = image_reference(destination, "DST")
    note_latest(src, "SRC")
    # The list's rule for platforms (relay.platforms): nothing else reaches a request.
    for platform in platforms:
        why = platform_rules.problem(platform)
        if why is not None:
            raise InputError(f"--platform {show(platform)} {why}")
    cfg = optional_settings(repo)
    # Keyed by repository, so one registry can hold a different login per side.
    creds = credentials(
        access, [f"{src.domain}/{src.path}"], [f"{dst.domain}/{dst.path}"], os.environ
    )
    settings = options_for(cfg.registries if cfg else None, access, [src.domain], [dst.domain])
    with ClientPool(settings, repo=repo, credentials=creds) as pool:
        if dry_run:
            try:
                planned = plan_copy(pool, src, dst)
            except RelayError as exc:
                _explain(exc, dst.domain)
                raise
            requests = pool.stats.total_requests
            if output == "json":
                document.emit(
                    "copy",
                    True,
                    {
                        "dryRun": True,
                        "source": planned.source,
                        "destination": planned.destination,
                        "digest": planned.digest,
                        "destinationDigest": planned.there,
                        "wouldCopy": not planned.unchanged,
                        "requests": requests,
                    },
                )
            elif planned.unchanged:
                print(f"{planned.destination}: already {planned.digest}; nothing to copy")
            else:
                now = f"now {planned.there}" if planned.there else "not there yet"
                print(
                    f"would copy {planned.source} ({planned.digest}) to {planned.destination} "
                    f"({now}); dry run: nothing copied ({requests} requests)"
                )
            return 0
        with progress.session() as bars:
            meter = bars.task(str(dst), 0, unit="bytes")
            try:
                result = copy_image(pool, src, dst, platforms=platforms, workers=jobs, meter=meter)
            except RelayError as exc:
                _explain(exc, dst.domain)
                raise
            meter.finish()
        requests = pool.stats.total_requests
    if output == "json":
        document.emit("copy", True, {"dryRun": False, **result_json(result), "requests": requests})
        return 0
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


def result_json(result: CopyResult) -> dict[str, Any]:
    """One copy's outcome, as `copy`, `publish` and `sync` documents show it."""
    return {
        "source": result.source,
        "destination": result.destination,
        "digest": result.digest,
        "unchanged": result.unchanged,
        "digestChanged": result.digest_changed,
        "platforms": list(result.platforms),
        "blobs": {
            "copied": result.blobs_copied,
            "mounted": result.blobs_mounted,
            "present": result.blobs_present,
        },
        "bytesCopied": result.bytes_copied,
    }


def _explain(exc: RelayError, destination: str) -> None:
    """A registry that could not be reached is said the one way (relay.output.outages): which
    registry, why, and what to do. Any other error: return, and the caller re-raises it."""
    said = outages.summarise(
        [exc], command="relay copy", targets=[destination], setting="the destination"
    )
    if said:
        raise OperationFailed("\n".join(said)) from exc
