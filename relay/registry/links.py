"""RFC 8288 ``Link`` headers, as used for tag-list pagination."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINK_RE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_PARAM_RE = re.compile(r";\s*([^=;,\s]+)\s*(?:=\s*(\"[^\"]*\"|[^;,]*))?")


@dataclass(frozen=True)
class Link:
    url: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def rels(self) -> set[str]:
        return set(self.params.get("rel", "").lower().split())


def parse_link_header(value: str | None) -> list[Link]:
    """All links in a header value: ``<url>; rel="next", <url2>; rel="prev"``."""
    if not value:
        return []
    links: list[Link] = []
    for match in _LINK_RE.finditer(value):
        params: dict[str, str] = {}
        for pmatch in _PARAM_RE.finditer(match.group(2) or ""):
            name = pmatch.group(1).lower()
            raw = (pmatch.group(2) or "").strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = raw[1:-1]
            params[name] = raw
        links.append(Link(url=match.group(1).strip(), params=params))
    return links


def next_link(value: str | None) -> str | None:
    """The ``rel="next"`` target, possibly relative to the request URL."""
    for link in parse_link_header(value):
        if "next" in link.rels:
            return link.url
    return None
