"""The registry API: ping, manifests, tags, blobs, uploads and mounts for one registry.

Thread-safe: one :class:`RegistryClient` per registry is meant to be shared by a thread pool.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from types import TracebackType
from urllib.parse import urlsplit

import requests

from relay import safety, untrusted
from relay.net import cancel
from relay.net.paging import next_page
from relay.net.reachability import Reachability
from relay.net.retry import RetryPolicy
from relay.net.stats import RequestStats
from relay.net.tls import TLSConfig, split_netloc
from relay.net.transport import Body, Params, Timeout, Transport, origin
from relay.reference import (
    InvalidReference,
    check_digest,
    check_path,
    check_tag_or_digest,
    is_valid_digest,
    is_valid_tag,
)
from relay.registry.auth import (
    Authenticator,
    TokenCache,
    parse_www_authenticate,
    repository_scope,
    select_challenge,
)
from relay.registry.blobstream import BlobStream
from relay.registry.context import RequestContext, send
from relay.registry.credentials import (
    DOCKER_HUB,
    Credential,
    CredentialProvider,
    StaticCredentials,
    normalise_registry,
)
from relay.registry.digests import (
    compute_digest,
)
from relay.registry.errors import (
    DigestMismatchError,
    ProtocolError,
    RegistryConnectionError,
    RegistryError,
    RegistryTLSError,
    UnsupportedManifestError,
    error_from_response,
)
from relay.registry.limits import SETTING, Limits
from relay.registry.mediatypes import (
    ACCEPT_MANIFESTS,
    ManifestTypeError,
    detect_media_type,
    is_schema1,
    normalise_content_type,
)
from relay.registry.models import BlobInfo, Manifest, ManifestDescriptor, PingResult, PushResult
from relay.registry.push import Pusher
from relay.registry.ratelimit import RateLimit, parse_rate_limit
from relay.registry.uploads import (
    BlobData,
)
from relay.registry.writes import WriteGate
from relay.untrusted import load_json

log = logging.getLogger("relay.registry")

DOCKER_HUB_API = "registry-1.docker.io"
DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB streamed best in the lab (145 MB/s vs 124 at 64 KiB)
USER_AGENT = "relay-registry/0.1"

_SCHEMA1_HELP = (
    "Docker schema 1 manifests are not supported (deprecated and cannot be copied "
    "digest-exact); re-push the image with a current Docker/buildah/skopeo"
)


def _same(response: requests.Response, auth_origin: str) -> bool:
    """Whether the (final) response came from ``auth_origin``."""
    try:
        return origin(response.url or "") == auth_origin
    except ValueError:
        return False


class RegistryClient:
    """Client for one registry (``host[:port]``, ``docker.io``, or a URL forcing the scheme).

    ``credentials`` is a provider (see :mod:`relay.registry.credentials`) or one Credential.
    ``ca_file`` is trusted for this registry's host (any port, so a token realm on the same host
    is covered) unless ``tls`` already names a CA for that host.
    Without an explicit scheme the client uses HTTPS, and for insecure registries (Docker's
    rules: declared in ``tls.insecure_registries``, ``insecure=True``, loopback by default, or
    flagged insecure by the credential provider) falls back to unverified HTTPS and then HTTP.
    ``realm_hosts``, when given, are the only hosts whose token service may receive a
    credential (every challenge is checked, not only the ping's).
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: CredentialProvider | Credential | None = None,
        tls: TLSConfig | None = None,
        ca_file: str | None = None,
        insecure: bool | None = None,
        retry: RetryPolicy | None = None,
        timeout: Timeout | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        stats: RequestStats | None = None,
        token_cache: TokenCache | None = None,
        user_agent: str = USER_AGENT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = cancel.pause,
        pool_size: int = 32,
        limits: Limits | None = None,
        reach: Reachability | None = None,
        realm_hosts: frozenset[str] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        raw = registry.strip().rstrip("/")
        self._scheme: str | None = None
        if "://" in raw:
            parts = urlsplit(raw)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidReference(f"invalid registry URL {registry!r}")
            self._scheme = parts.scheme
            raw = parts.netloc
        if not raw or "/" in raw:
            raise InvalidReference(f"invalid registry {registry!r}")
        self.registry = normalise_registry(raw)
        self.netloc = DOCKER_HUB_API if self.registry == DOCKER_HUB else raw.lower()

        if isinstance(credentials, Credential):
            credentials = StaticCredentials({self.registry: credentials})
        tls = tls or TLSConfig()
        if ca_file:
            tls = tls.with_ca(self.netloc, ca_file)
            # The token realm usually lives on the same host (Harbor) on another port or path;
            # trusting the same CA there avoids an unverified fallback.
            host = split_netloc(self.netloc)[0]
            if tls.ca_bundle_for(host) is None:
                tls = tls.with_ca(host, ca_file)
        provider_insecure = getattr(credentials, "insecure", None)
        if insecure or (callable(provider_insecure) and provider_insecure(self.registry)):
            tls = tls.with_insecure(self.netloc)
        elif insecure is False:
            tls = replace(tls, insecure_loopback=False)

        self.chunk_size = chunk_size
        self.stats = stats or RequestStats()
        self._owns_session = session is None
        self.transport = Transport(
            tls=tls,
            retry=retry,
            timeout=timeout or self.limits.timeout,
            stats=self.stats,
            user_agent=user_agent,
            session=session,
            sleep=sleep,
            pool_size=pool_size,
            deadline=self.limits.deadline,
            max_body=self.limits.answer_bytes,
            limits_hint=SETTING,
            reach=reach,
        )
        self.auth = Authenticator(
            self.registry,
            self.transport,
            credentials,
            token_cache,
            max_token_bytes=self.limits.token_bytes,
            realm_hosts=realm_hosts,
        )
        self.pusher = Pusher(self)
        # Copies into one repository must not rewrite a digest's link while another reads it.
        self.writes = WriteGate()
        self.rate_limit: RateLimit | None = None
        """The last Docker Hub style quota seen (None for registries that send none)."""
        self._ping: PingResult | None = None
        self._ping_lock = threading.Lock()

    # --- housekeeping -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"RegistryClient({self.registry!r})"

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_session:
            self.transport.session.close()

    @property
    def base_url(self) -> str:
        return self.ping().base_url

    # --- ping -------------------------------------------------------------------------------

    def ping(self) -> PingResult:
        """``GET /v2/`` once: picks the scheme and learns the auth challenge."""
        with self._ping_lock:
            if self._ping is None:
                self._ping = self._do_ping()
            return self._ping

    def _do_ping(self) -> PingResult:
        ctx = RequestContext(self.registry, None, "ping /v2/")
        if self._scheme:
            schemes = [self._scheme]
        elif self.transport.tls.is_insecure(self.netloc):
            schemes = ["https", "http"]
        else:
            schemes = ["https"]
        https_failure: RegistryConnectionError | None = None
        for index, scheme in enumerate(schemes):
            base = f"{scheme}://{self.netloc}"
            fallback = index + 1 < len(schemes)
            try:
                # A bare handshake first: a plain-HTTP server is told apart without the
                # verified context (and CA bundle) that the HTTPS request would load.
                refusal = self.transport.tls_refusal(self.netloc) if fallback else None
                if refusal is not None:
                    raise ctx.error(refusal, RegistryTLSError)
                response = send(
                    self.transport,
                    "GET",
                    f"{base}/v2/",
                    ctx=ctx,
                    kind="ping",
                    follow_redirects=True,
                    auth_origin=origin(base),
                    on_response=self._note_rate_limit,
                )
            except RegistryConnectionError as exc:
                if fallback:
                    # DEBUG: for an insecure registry that speaks plain HTTP this is every
                    # run's normal path, not news (the SSL error is only the reason under -v).
                    log.debug(
                        "%s: HTTPS failed (%s); trying plain HTTP as it is an insecure registry",
                        self.registry,
                        exc.reason,
                    )
                    https_failure = exc
                    continue
                raise
            with response:
                if https_failure is not None and response.status_code == 400:
                    # Go's "Client sent an HTTP request to an HTTPS server": the server speaks
                    # TLS, so the HTTPS error is the one that explains what went wrong.
                    response.close()
                    raise https_failure
                if response.status_code not in (200, 401):
                    reason = (
                        "no registry API at /v2/ (is this an OCI distribution registry?)"
                        if response.status_code == 404
                        else ""
                    )
                    raise self.error_from(response, ctx, reason)
                challenge = None
                if response.status_code == 401 and _same(response, origin(base)):
                    challenge = select_challenge(
                        parse_www_authenticate(response.headers.get("WWW-Authenticate"))
                    )
                self.auth.set_challenge(challenge)
                self.auth.plain_http = scheme == "http"
                verified: bool | None = None
                if scheme == "https":
                    verified = self.transport.verify_for(self.netloc) is not False
                result = PingResult(
                    base_url=base,
                    auth_scheme=challenge.scheme if challenge else None,
                    realm=challenge.realm if challenge else None,
                    service=challenge.service if challenge else None,
                    api_version=response.headers.get("Docker-Distribution-Api-Version"),
                    tls_verified=verified,
                )
                log.debug("%s: using %s (auth: %s)", self.registry, base, result.auth_scheme)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    # --- request core ----------------------------------------------------------------------

    def ctx(self, repository: str | None, action: str) -> RequestContext:
        return RequestContext(self.registry, repository, action)

    def url(self, repository: str, suffix: str) -> str:
        return f"{self.base_url}/v2/{repository}/{suffix}"

    def send(
        self,
        method: str,
        url: str,
        *,
        ctx: RequestContext,
        kind: str,
        scopes: Sequence[str],
        headers: dict[str, str] | None = None,
        params: Params = None,
        body: Body = None,
        replayable: bool = True,
        stream: bool = False,
        follow_redirects: bool = False,
        retry: RetryPolicy | None = None,
        max_body: int | None = None,
        timeout: Timeout | None = None,
    ) -> requests.Response:
        """Send with authentication; on a 401 refresh credentials and retry once if possible."""
        auth_origin = origin(self.base_url)
        same_origin = origin(url) == auth_origin
        for attempt in (1, 2):
            hdrs = dict(headers or {})
            sent: str | None = None
            if same_origin:
                sent = self.auth.authorization(ctx.repository, scopes, ctx)
                if sent:
                    hdrs["Authorization"] = sent
            response = send(
                self.transport,
                method,
                url,
                ctx=ctx,
                kind=kind,
                headers=hdrs,
                params=params,
                body=body,
                replayable=replayable,
                stream=stream,
                follow_redirects=follow_redirects,
                auth_origin=auth_origin,
                retry=retry,
                on_response=self._note_rate_limit,
                max_body=max_body,
                timeout=timeout,
            )
            # Only the registry's own 401 says how to authenticate to it: a host it redirected
            # to (storage, a CDN, anyone) must not make relay fetch a token with the
            # registry's credentials from a realm of that host's choosing.
            if response.status_code != 401 or not same_origin or not _same(response, auth_origin):
                return response
            again = self.auth.handle_unauthorized(response, ctx.repository, scopes, sent, ctx)
            if attempt == 2 or not again or not replayable:
                return response
            response.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def error_from(
        self, response: requests.Response, ctx: RequestContext, reason: str = ""
    ) -> RegistryError:
        status = response.status_code
        if not reason and status == 401:
            reason = f"authentication failed {self.auth.describe(ctx.repository)}"
        elif not reason and status == 403:
            reason = f"access denied {self.auth.describe(ctx.repository)}"
        self.transport.read_error_body(response)  # a streamed answer: only its first KiBs
        err = error_from_response(
            response,
            registry=ctx.registry,
            repository=ctx.repository,
            action=ctx.action,
            reason=reason,
        )
        response.close()
        return err

    def _note_rate_limit(self, response: requests.Response) -> None:
        """Docker Hub's pull quota headers: logged when low, kept for `rate_limit`."""
        limit = parse_rate_limit(response.headers)
        if limit is None:
            return
        self.rate_limit = limit
        if limit.remaining is not None and limit.remaining <= 0:
            log.warning("%s: pull quota exhausted (%s)", self.registry, limit)
        else:
            log.debug("%s: pull quota %s", self.registry, limit)

    @staticmethod
    def _pull(repository: str) -> list[str]:
        return [repository_scope(repository, "pull")]

    @staticmethod
    def _push(repository: str) -> list[str]:
        return [repository_scope(repository, "pull", "push")]

    # --- manifests -------------------------------------------------------------------------

    def head_manifest(
        self, repository: str, reference: str, *, accept: Iterable[str] = ACCEPT_MANIFESTS
    ) -> ManifestDescriptor | None:
        """Digest, media type and size of a manifest, or None if it does not exist.

        Falls back to a GET when the registry's HEAD lacks a digest or a specific media type.
        """
        ctx = self.ctx(repository, f"head manifest {reference}")
        response = self._manifest_request("HEAD", repository, reference, accept, ctx)
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            raise self.error_from(response, ctx)
        response.close()
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = normalise_content_type(response.headers.get("Content-Type"))
        if is_schema1(media_type):
            raise ctx.error(_SCHEMA1_HELP, UnsupportedManifestError)
        length = response.headers.get("Content-Length", "")
        if not is_valid_digest(digest) or media_type in ("", "application/json", "text/plain"):
            return self.get_manifest(repository, reference, accept=accept).descriptor
        if is_valid_digest(reference) and digest != reference:
            raise ctx.error(f"registry reports digest {digest}", DigestMismatchError)
        return ManifestDescriptor(digest, media_type, untrusted.count(length))

    def _manifest_request(
        self,
        method: str,
        repository: str,
        reference: str,
        accept: Iterable[str],
        ctx: RequestContext,
    ) -> requests.Response:
        check_path(repository)
        check_tag_or_digest(reference)
        return self.send(
            method,
            self.url(repository, f"manifests/{reference}"),
            ctx=ctx,
            kind="manifest",
            scopes=self._pull(repository),
            headers={"Accept": ", ".join(accept)},
            follow_redirects=True,
            max_body=self.limits.manifest_bytes,
        )

    def get_manifest(
        self, repository: str, reference: str, *, accept: Iterable[str] = ACCEPT_MANIFESTS
    ) -> Manifest:
        """The manifest bytes exactly as served, verified against the digest(s) we know."""
        ctx = self.ctx(repository, f"get manifest {reference}")
        response = self._manifest_request("GET", repository, reference, accept, ctx)
        if response.status_code != 200:
            raise self.error_from(response, ctx)
        content = response.content
        self.stats.add_received(len(content))
        return self._manifest_from(response, content, reference, ctx)

    def _manifest_from(
        self, response: requests.Response, content: bytes, reference: str, ctx: RequestContext
    ) -> Manifest:
        try:
            media_type = detect_media_type(response.headers.get("Content-Type"), content)
        except ManifestTypeError as exc:
            raise ctx.error(str(exc), ProtocolError) from None
        if is_schema1(media_type):
            raise ctx.error(_SCHEMA1_HELP, UnsupportedManifestError)
        digest = compute_digest(content)
        claimed: list[tuple[str, str]] = []
        if is_valid_digest(reference):
            claimed.append(("requested", reference))
        header = response.headers.get("Docker-Content-Digest")
        if header and is_valid_digest(header):
            claimed.append(("Docker-Content-Digest", header))
        for what, expected in claimed:
            algorithm = expected.split(":", 1)[0]
            actual = digest if algorithm == "sha256" else compute_digest(content, algorithm)
            if actual != expected:
                raise ctx.error(
                    f"manifest bytes hash to {actual}, but the {what} digest is {expected}",
                    DigestMismatchError,
                )
            if what == "requested":
                digest = expected
        return Manifest(content=content, media_type=media_type, digest=digest)

    def put_manifest(
        self,
        repository: str,
        reference: str,
        content: bytes,
        media_type: str | None = None,
    ) -> str:
        """Store manifest bytes unchanged under a tag or digest; returns the digest."""
        check_path(repository)
        check_tag_or_digest(reference)
        ctx = self.ctx(repository, f"put manifest {reference}")
        if media_type is None:
            try:
                media_type = detect_media_type(None, content)
            except ManifestTypeError as exc:
                raise ctx.error(str(exc), ProtocolError) from None
        if is_schema1(media_type):
            raise ctx.error(_SCHEMA1_HELP, UnsupportedManifestError)
        digest = compute_digest(content)
        if is_valid_digest(reference):
            algorithm = reference.split(":", 1)[0]
            if compute_digest(content, algorithm) != reference:
                raise ctx.error(f"manifest bytes do not hash to {reference}", DigestMismatchError)
        response = self.send(
            "PUT",
            self.url(repository, f"manifests/{reference}"),
            ctx=ctx,
            kind="manifest",
            scopes=self._push(repository),
            headers={"Content-Type": media_type},
            body=content,
        )
        if response.status_code not in (200, 201, 202, 204):
            raise self.error_from(response, ctx)
        response.close()
        self.stats.add_sent(len(content))
        stored = response.headers.get("Docker-Content-Digest")
        if (
            stored
            and is_valid_digest(stored)
            and stored.split(":", 1)[0] == "sha256"
            and stored != digest
        ):
            raise ctx.error(
                f"registry stored the manifest as {stored}, expected {digest}",
                DigestMismatchError,
            )
        return digest

    # --- tags -------------------------------------------------------------------------------

    def iter_tags(self, repository: str, *, page_size: int | None = None) -> Iterator[str]:
        """Tags page by page, following ``Link: <...>; rel="next"``.

        Only tags that relay's grammar accepts are yielded: the list is the registry's word,
        and a tag from it may end up in the lock and in a Dockerfile. Anything else (a null,
        a number, "1.0\n", "-x", 200 characters) is skipped and reported once, in a warning
        naming the registry and the repository, and the rest of the list is used. A tag is
        yielded once, however many pages repeat it (pages overlap when tags are pushed while
        paging, or a registry's `last` is sloppy), so `latest: 3` takes three tags.
        """
        check_path(repository)
        ctx = self.ctx(repository, "list tags")
        url: str | None = self.url(repository, "tags/list")
        params: Params = {"n": str(page_size)} if page_size else None
        seen: set[str] = set()
        yielded: set[str] = set()
        invalid: list[object] = []
        pages = 0
        try:
            while url:
                pages += 1
                if pages > self.limits.tag_pages:
                    raise ctx.error(
                        f"the tag list goes on for more than {self.limits.tag_pages} pages "
                        f"({SETTING}.tag_pages sets the limit)",
                        ProtocolError,
                    )
                response = self.send(
                    "GET",
                    url,
                    ctx=ctx,
                    kind="tags",
                    scopes=self._pull(repository),
                    params=params,
                    follow_redirects=True,
                )
                if response.status_code != 200:
                    raise self.error_from(response, ctx)
                self.stats.add_received(len(response.content))
                try:
                    doc = load_json(response.content)
                except ValueError:
                    doc = None
                if not isinstance(doc, dict):
                    raise ctx.error("tag list is not a JSON object", ProtocolError)
                # Docker Hub answers "tags": null for a repository without tags.
                tags = doc.get("tags") or []
                if not isinstance(tags, list):
                    raise ctx.error("tags in the tag list is not a list", ProtocolError)
                for tag in tags:
                    if is_valid_tag(tag):
                        if tag not in yielded:
                            yielded.add(tag)
                            yield tag
                    else:
                        invalid.append(tag)
                url = next_page(response)
                if url is None:
                    return
                params = None
                if url in seen:
                    raise ctx.error("tag pagination loops", ProtocolError)
                seen.add(url)
        finally:
            if invalid:
                shown = ", ".join(safety.show(t, 40) for t in invalid[:5])
                more = f" and {len(invalid) - 5} more" if len(invalid) > 5 else ""
                log.warning(
                    "%s: skipped %d invalid tag(s) in the registry's tag list: %s%s",
                    ctx.what,
                    len(invalid),
                    shown,
                    more,
                )

    def list_tags(self, repository: str, *, page_size: int | None = None) -> list[str]:
        return list(self.iter_tags(repository, page_size=page_size))

    # --- blobs: read ------------------------------------------------------------------------

    def head_blob(self, repository: str, digest: str) -> BlobInfo | None:
        """Size of a blob, or None if the repository does not have it."""
        check_path(repository)
        check_digest(digest)
        ctx = self.ctx(repository, f"head blob {digest}")
        # Not following redirects: presigned storage URLs are signed for GET and refuse HEAD.
        response = self.send(
            "HEAD",
            self.url(repository, f"blobs/{digest}"),
            ctx=ctx,
            kind="blob",
            scopes=self._pull(repository),
        )
        response.close()
        if response.status_code == 404:
            return None
        if response.status_code in (301, 302, 303, 307, 308):
            return BlobInfo(digest, None)
        if response.status_code != 200:
            raise self.error_from(response, ctx)
        length = response.headers.get("Content-Length", "")
        return BlobInfo(digest, untrusted.count(length))

    def blob_exists(self, repository: str, digest: str) -> bool:
        return self.head_blob(repository, digest) is not None

    def get_blob(
        self,
        repository: str,
        digest: str,
        *,
        chunk_size: int | None = None,
        verify: bool = True,
    ) -> BlobStream:
        """Open a blob for streaming; errors such as 404 are raised here, not on iteration.

        ``verify=False`` skips hashing: only for bytes that go straight into a registry upload,
        where the receiving registry checks the digest.
        """
        check_path(repository)
        check_digest(digest)
        ctx = self.ctx(repository, f"get blob {digest}")
        response = self._open_blob(repository, digest, ctx, 0)
        return BlobStream(
            digest,
            ctx,
            response,
            chunk_size or self.chunk_size,
            reopen=lambda offset: self._open_blob(repository, digest, ctx, offset),
            retry=self.transport.retry,
            sleep=self.transport.sleep,
            stats=self.stats,
            verify=verify,
            deadline=self.transport.deadline,
        )

    def read_blob(self, repository: str, digest: str, *, size: int | None = None) -> bytes:
        """A whole small blob (an image config) in memory, verified: at most ``size`` bytes
        (its descriptor's word) and never more than the manifest limit (registries.limits
        manifest_bytes, 4 MiB: a config is no larger than a manifest in practice). A registry
        that streams more is stopped one byte past the bound, not read to the end."""
        limit = (
            self.limits.manifest_bytes if size is None else min(size, self.limits.manifest_bytes)
        )
        with self.get_blob(repository, digest) as stream:
            return stream.read(limit)

    def _open_blob(
        self, repository: str, digest: str, ctx: RequestContext, offset: int
    ) -> requests.Response:
        # identity: a Content-Encoding applied in transit would break the digest check.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        response = self.send(
            "GET",
            self.url(repository, f"blobs/{digest}"),
            ctx=ctx,
            kind="blob",
            scopes=self._pull(repository),
            headers=headers,
            stream=True,
            follow_redirects=True,
        )
        if response.status_code == 206 and offset:
            content_range = response.headers.get("Content-Range", "")
            match = re.match(r"bytes\s+(\d+)-", content_range)
            if not match or int(match.group(1)) != offset:
                response.close()
                raise ctx.error(
                    f"asked to resume at byte {offset}, got Content-Range {content_range!r}",
                    ProtocolError,
                )
            return response
        if response.status_code != 200:
            raise self.error_from(response, ctx)
        return response

    # --- blobs: write (the upload engine is relay.registry.push) -----------------------------

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True if mounted, False if the registry declined (202)."""
        return self.pusher.mount_blob(repository, digest, from_repository)

    def push_blob(
        self,
        repository: str,
        digest: str | None,
        data: BlobData,
        *,
        size: int | None = None,
        mount_from: str | None = None,
        chunk_size: int | None = None,
        check_exists: bool = False,
        verify: bool = True,
    ) -> PushResult:
        """Upload a blob, streaming.

        ``data``: bytes, a file path, a binary file, a zero-argument factory (e.g.
        ``lambda: src.get_blob(repo, digest)``) or an iterable of bytes. All but the last can be
        re-sent after a failure. ``digest`` may be None for bytes/paths/factories (computed
        first). ``chunk_size`` switches from one streamed PUT to PATCH chunks of that size.
        ``mount_from`` tries a cross-repository mount first and uploads if it is declined.
        """
        return self.pusher.push_blob(
            repository,
            digest,
            data,
            size=size,
            mount_from=mount_from,
            chunk_size=chunk_size,
            check_exists=check_exists,
            verify=verify,
        )
