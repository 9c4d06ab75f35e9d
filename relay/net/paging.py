"""Paging by RFC 8288 ``Link`` headers, as registries (tag lists) and Harbor (every list) do.

requests already parses the header (`Response.links`); this only picks ``rel="next"`` and
resolves it against the URL that was asked for, since both registries and Harbor send
relative links.
"""

from __future__ import annotations

from urllib.parse import urljoin

import requests


def next_page(response: requests.Response) -> str | None:
    """The absolute URL of the next page, or None on the last one."""
    for rels, link in response.links.items():
        # requests keys each link by its rel value; `rel="last next"` holds two.
        if "next" in str(rels).lower().split() and link.get("url"):
            try:
                return urljoin(response.url or "", link["url"])
            except ValueError:  # unparseable: the transport refuses it with the server's words
                return str(link["url"])
    return None
