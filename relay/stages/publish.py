"""The copy transport: copy every pinned tag straight from upstream to the target registry.

With `transport: copy` in mirrors/relay.yaml, relay skips the ACR build and copies each locked
image itself (from the GitHub runner, which is outside the mainland), keeping its digest and
every platform. The target is `<copy.registry>/<copy.namespace>/<name>:<tag>`: ACR's registry
domain, or any other registry. An image already there with the same digest costs one HEAD on
each side; a failed copy does not stop the others. The registries involved are pinged side by
side first, so one out of reach is found out once and its images fail at once, with one cause
(relay.net.reachability), while the others' images are copied.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from relay import reference
from relay.config.pins import Pin
from relay.config.settings import CopySettings
from relay.errors import InputError, RelayError
from relay.net.reachability import outage_of
from relay.ops.copyimage import CopyPlan, CopyResult, copy_image, plan_copy
from relay.output import outages
from relay.output.progress import NULL, Progress
from relay.output.tables import Column, Table, human_size
from relay.registry.pool import ClientPool

log = logging.getLogger(__name__)

# Environment overrides, for one-off runs and tests; the settings file is the normal place.
ENV_REGISTRY = "RELAY_COPY_REGISTRY"
ENV_NAMESPACE = "RELAY_COPY_NAMESPACE"


@dataclass
class Outcome:
    pin: Pin
    destination: str
    result: CopyResult | None = None
    error: str | None = None
    planned: CopyPlan | None = None  # --dry-run: what one HEAD on each side found
    cause: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failed"
        if self.planned is not None:
            return "unchanged" if self.planned.unchanged else "would-copy"
        assert self.result is not None
        return "unchanged" if self.result.unchanged else "copied"

    def json(self) -> dict[str, object]:
        result, planned = self.result, self.planned
        digest = result.digest if result else planned.digest if planned else None
        return {
            "image": self.destination,
            "source": self.pin.reference,
            "target": self.pin.entry.target,
            "tag": self.pin.tag,
            "status": self.status,
            "digest": digest or None,
            "bytesCopied": result.bytes_copied if result else 0,
            "error": self.error,
        }


@dataclass
class PublishReport:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.error is None for o in self.outcomes)

    def unreachable(self, registry: str) -> list[str]:
        """One message per registry out of reach, with what to do (``registry``: the copy
        target, the user's own)."""
        return outages.summarise(
            (o.cause for o in self.outcomes if o.error is not None),
            command="relay publish",
            targets=[registry],
            setting="copy.registry",
        )

    def table(self, requests: int = 0, dry_run: bool = False) -> Table:
        failed = sum(1 for o in self.outcomes if o.error)
        table = Table(
            "relay publish (copy transport)" + (", dry run" if dry_run else ""),
            [
                Column("Image", code=True),
                Column("Result"),
                Column("Size", "right"),
                Column("Digest / error"),
            ],
            summary=f"{len(self.outcomes)} images, {failed} failed, {requests} registry requests",
            status="ok" if self.ok else "failed",
        )
        for o in self.outcomes:
            detail = o.error or (
                o.result.digest if o.result else o.planned.digest if o.planned else ""
            )
            size = human_size(o.result.bytes_copied) if o.result and not o.result.unchanged else ""
            table.add(o.destination, o.status, size, detail, flag=o.error is not None)
        return table


def target(settings: CopySettings, environ: dict[str, str] | None = None) -> tuple[str, str]:
    env = os.environ if environ is None else environ
    registry = env.get(ENV_REGISTRY) or settings.registry
    namespace = env.get(ENV_NAMESPACE) or settings.namespace
    if not registry or not namespace:
        raise InputError(
            "the copy transport needs copy.registry and copy.namespace in mirrors/relay.yaml "
            f"(or {ENV_REGISTRY} / {ENV_NAMESPACE})"
        )
    return registry, namespace


def destination(pin: Pin, registry: str, namespace: str) -> str:
    return f"{registry}/{namespace}/{pin.entry.target}:{pin.tag}"


def publish(
    pins: list[Pin],
    pool: ClientPool,
    registry: str,
    namespace: str,
    *,
    concurrency: int = 4,
    dry_run: bool = False,
    progress: Progress = NULL,
) -> PublishReport:
    """Copy every pin (with ``dry_run``: one HEAD on each side, nothing copied). ``progress``
    shows the images done and each copy's bytes."""
    images = progress.task("images", len(pins))

    def one(pin: Pin) -> Outcome:
        dest = destination(pin, registry, namespace)
        outcome = Outcome(pin, dest)
        try:
            src = reference.parse(pin.reference)
            dst = reference.parse(dest)
            if dry_run:
                outcome.planned = plan_copy(pool, src, dst)
            else:
                meter = progress.task(dest, 0, unit="bytes")
                try:
                    # Blobs of one image go one at a time: images already run side by side.
                    outcome.result = copy_image(pool, src, dst, workers=2, meter=meter)
                finally:
                    meter.finish()
        except (RelayError, ValueError) as exc:
            outcome.cause = exc
            outage = outage_of(exc)
            if outage is not None:
                # Said once when found out, and grouped at the end, not once per image.
                outcome.error = str(outage)
            else:
                outcome.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.error("%s: %s", dest, outcome.error)
        images.advance()
        return outcome

    pool.probe([*(p.entry.source.domain for p in pins), registry])

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        report = PublishReport(list(executor.map(one, pins)))
    images.finish()
    return report
