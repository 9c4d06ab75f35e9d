"""How much relay reads from a registry, and for how long: every answer is bounded.

A registry named in a pull request is untrusted. Without bounds a token realm that streams
forever exhausts memory in seconds, a 100 MiB "manifest" is read and locked, a `Link: next`
that never ends pages forever, and a server trickling a byte every two seconds holds a run.
Behind the firewall, a registry that never answers must be found out in seconds, not minutes:
the connect and read timeouts (relay.net.transport says why 5 s and 30 s).
The values come from the settings' `registries.limits` (relay.config.settings).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.net.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BODY,
    DEFAULT_READ_TIMEOUT,
)

SETTING = "registries.limits"


@dataclass(frozen=True)
class Limits:
    # Seconds for a whole answer (headers and body); for a streamed blob, for each chunk.
    deadline: float = DEFAULT_DEADLINE
    # Docker's and containerd's registry clients refuse manifests above 4 MiB; so does relay.
    manifest_bytes: int = 4 << 20
    # A token answer is a few KiB of JSON (a JWT); 1 MiB leaves room for any real one.
    token_bytes: int = 1 << 20
    # Any other answer read into memory: a page of tags, an error body.
    answer_bytes: int = DEFAULT_MAX_BODY
    # Pages of a tag list followed (Link: rel="next"); at 100+ tags a page, 100,000+ tags.
    tag_pages: int = 1000
    # Seconds for a connection (TCP, TLS handshake, proxy CONNECT), and for any byte after.
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)
