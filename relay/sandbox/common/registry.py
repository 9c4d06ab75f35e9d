"""Just enough of the distribution API to read a stand-in registry, with Basic or Bearer auth.

The emulators read what is really in their registries (ACR lists tags from it; Harbor pings
it) with this small, independent client -- never with relay's own registry client, which is
what the emulators are there to test.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Protocol

import requests

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryTarget(Protocol):
    """What an emulator needs to know about a registry (tests' ``Registry`` fits)."""

    host: str
    url: str
    username: str | None
    password: str | None
    ca_file: str | None  # the CA that signed its TLS certificate, None for plain HTTP
    cert_dir: str | None  # a directory holding only that CA as ca.crt (containers' layout)


class RegistryError(RuntimeError):
    pass


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "bearer", "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """The first challenge of a ``WWW-Authenticate`` header (registries send one)."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    return Challenge(scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest)))


def session() -> requests.Session:
    """A session that ignores the environment: REQUESTS_CA_BUNDLE would override ``verify=``
    (psf/requests#3829) and proxy variables must never see 127.0.0.1 traffic."""
    s = requests.Session()
    s.trust_env = False
    return s


class RegistryReader:
    """Reads tags and manifests; one token per scope, fetched again only on a 401."""

    def __init__(
        self,
        url: str,
        *,
        credentials: tuple[str, str] | None,
        verify: str | bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.base = url.rstrip("/")
        self._creds = credentials
        self.verify = verify
        self.timeout = timeout
        self.session = session()
        self._scheme: str | None = None
        self._tokens: dict[str, str] = {}

    @classmethod
    def for_target(cls, target: RegistryTarget) -> RegistryReader:
        creds = None
        if target.username is not None and target.password is not None:
            creds = (target.username, target.password)
        return cls(target.url, credentials=creds, verify=target.ca_file or True)

    def __repr__(self) -> str:  # never show the credentials
        return f"RegistryReader({self.base!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, *, scope: str | None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        resp: requests.Response | None = None
        for attempt in range(2):
            hdrs = dict(headers or {})
            if self._scheme == "basic" and self._creds:
                raw = f"{self._creds[0]}:{self._creds[1]}".encode()
                hdrs["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            elif self._scheme == "bearer" and (scope or "") in self._tokens:
                hdrs["Authorization"] = f"Bearer {self._tokens[scope or '']}"
            resp = self.session.request(
                method, url, headers=hdrs, verify=self.verify, timeout=self.timeout
            )
            if resp.status_code != 401 or attempt == 1:
                return resp
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            resp.close()
            self._answer(challenge, scope)
        assert resp is not None
        return resp

    def _answer(self, challenge: Challenge | None, scope: str | None) -> None:
        if challenge is None:
            raise RegistryError("registry answered 401 without a challenge")
        if challenge.scheme == "basic":
            if not self._creds:
                raise RegistryError("registry wants Basic auth but no credentials are set")
            self._scheme = "basic"
            return
        if challenge.scheme != "bearer" or not challenge.params.get("realm"):
            raise RegistryError(f"unsupported challenge scheme {challenge.scheme!r}")
        self._scheme = "bearer"
        query: dict[str, str] = {}
        if "service" in challenge.params:
            query["service"] = challenge.params["service"]
        if scope:
            query["scope"] = scope
        resp = self.session.get(
            challenge.params["realm"],
            params=query,
            auth=self._creds,
            verify=self.verify,
            timeout=self.timeout,
        )
        if resp.status_code != 200:
            raise RegistryError(f"token request failed: HTTP {resp.status_code}")
        body: dict[str, Any] = resp.json()
        self._tokens[scope or ""] = str(body.get("token") or body["access_token"])

    def tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        if resp.status_code == 404:  # NAME_UNKNOWN: nothing pushed yet
            return []
        if resp.status_code != 200:
            raise RegistryError(f"GET tags of {repo}: HTTP {resp.status_code}")
        return sorted(resp.json().get("tags") or [])

    def manifest(self, repo: str, reference: str) -> tuple[bytes, str] | None:
        """(raw bytes, media type) of a manifest, or None when it does not exist."""
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise RegistryError(f"GET manifest {repo}:{reference}: HTTP {resp.status_code}")
        return resp.content, resp.headers.get("Content-Type", "")
