"""The mapping table: each upstream image and where it is pulled now, as Markdown, CSV, JSON.

The Markdown goes through the one table renderer (relay.output.tables) and its escaper.
"""

from __future__ import annotations

import csv
import io
import json
import sys

from relay.output.tables import Column, Table
from relay.stages.clients.model import Clients

CSV_COLUMNS = ("source", "tag", "upstream_digest", "target", "harbor", "acr", "platforms")


def table(c: Clients) -> Table:
    columns = [Column("Upstream", code=True), Column("Harbor", code=True)]
    if c.via:
        columns.append(Column("ACR" if c.transport == "build" else "Copy target", code=True))
    digest_note = (
        "Harbor serves upstream's digests (copy transport)."
        if c.keeps_digests
        else "ACR builds each tag anew: Harbor's digests differ from upstream's (same config and "
        "layers); pull by tag."
    )
    result = Table(
        "relay clients: images",
        columns,
        summary=f"{len(c.images)} tags of {len(c.by_entry())} images; {digest_note}",
        where=c.harbor.repository,
    )
    for image in c.images:
        cells = [image.upstream, image.harbor_ref]
        if c.via:
            cells.append(image.via_ref or "")
        result.add(*cells)
    return result


def markdown(c: Clients) -> str:
    # A file, not a job summary: no row is ever left out.
    return table(c).markdown(limit=sys.maxsize)


def to_csv(c: Clients) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for image in c.images:
        writer.writerow(
            (
                image.source.name,
                image.tag,
                image.digest,
                image.target,
                image.harbor_ref,
                image.via_ref or "",
                " ".join(image.platforms),
            )
        )
    return buffer.getvalue()


def to_json(c: Clients) -> str:
    doc = {
        "harbor": c.harbor.repository,
        "acr": c.via.repository if c.via else None,
        "transport": c.transport,
        "digestsKept": c.keeps_digests,
        "images": [
            {
                "source": image.source.name,
                "tag": image.tag,
                "upstreamDigest": image.digest,
                "target": image.target,
                "harbor": image.harbor_ref,
                "acr": image.via_ref,
                "platforms": list(image.platforms),
            }
            for image in c.images
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
