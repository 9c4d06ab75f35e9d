"""`relay copy SRC DST [--platform P]...`: copy one image between registries."""

from __future__ import annotations

from pathlib import Path

from relay import platforms as platform_rules
from relay import reference
from relay.commands.common import optional_settings
from relay.errors import InputError, OperationFailed, RelayError
from relay.ops.copyimage import copy_image
from relay.output import outages
from relay.registry.pool import ClientPool
from relay.safety import show


def copy(*, repo: Path, source: str, destination: str, platforms: list[str], jobs: int = 4) -> int:
    try:
        src = reference.parse(source)
        dst = reference.parse(destination)
    except ValueError as exc:
        raise InputError(f"bad image reference: {exc}") from None
    # The list's rule for platforms (relay.platforms): nothing else reaches a request.
    for platform in platforms:
        why = platform_rules.problem(platform)
        if why is not None:
            raise InputError(f"--platform {show(platform)} {why}")
    cfg = optional_settings(repo)
    with ClientPool(cfg.registries if cfg else None, repo=repo) as pool:
        try:
            result = copy_image(pool, src, dst, platforms=platforms, workers=jobs)
        except RelayError as exc:
            said = outages.summarise(
                [exc], command="relay copy", targets=[dst.domain], setting="the destination"
            )
            if not said:
                raise
            raise OperationFailed("\n".join(said)) from exc
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
