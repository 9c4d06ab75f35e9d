"""The upload engine: blob pushes (monolithic or chunked), cross-repository mounts, restarts.

An upload is retried as a whole: a failure anywhere in it (the session POST, a PATCH, the
final PUT) restarts from a new session, after checking whether the blob landed anyway (a lost
answer to a good PUT). The requests inside an upload are sent without retries of their own
(`NEVER`), so one failure costs one restart, not attempts × attempts requests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import requests

from relay.net.retry import NEVER, RetryPolicy, parse_retry_after, retrying
from relay.net.transport import Body, Params
from relay.reference import check_digest, check_path
from relay.registry.auth import repository_scope
from relay.registry.context import RequestContext
from relay.registry.digests import ByteCounter, DigestVerifier, Hasher
from relay.registry.errors import (
    DigestMismatchError,
    ProtocolError,
    RegistryConnectionError,
    RegistryError,
)
from relay.registry.models import PushResult
from relay.registry.uploads import (
    BlobData,
    BlobSource,
    SizedUploadBody,
    SizeMismatch,
    UploadBody,
    UploadLocation,
    rechunk,
)

if TYPE_CHECKING:
    from relay.registry.client import RegistryClient

log = logging.getLogger(__name__)


class _UploadInterrupted(Exception):
    """An upload attempt failed in a way a fresh attempt may fix."""

    def __init__(
        self, error: RegistryError, retry_after: float | None = None, auth: bool = False
    ) -> None:
        super().__init__(error.reason or str(error))
        self.error = error
        self.retry_after = retry_after
        self.auth = auth


class Pusher:
    """Blob writes for one registry client: it sends, authenticates and counts through it."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    # --- what the client offers ---------------------------------------------------------------

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; True if mounted, False if the registry declined (202)."""
        check_path(repository)
        check_path(from_repository)
        check_digest(digest)
        ctx = self.client.ctx(repository, f"mount blob {digest} from {from_repository}")
        mounted, location = self._start_upload(repository, ctx, (digest, from_repository))
        if mounted:
            return True
        if location is not None:
            self._cancel_upload(location, ctx)
        return False

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
        """See :meth:`RegistryClient.push_blob`."""
        client = self.client
        check_path(repository)
        source = BlobSource(data, size)
        if digest is None:
            if not source.restartable:
                raise ValueError("digest is required when data can be read only once")
            digest, source.size = self._digest_of(source)
        check_digest(digest)
        ctx = client.ctx(repository, f"push blob {digest}")
        if check_exists:
            info = client.head_blob(repository, digest)
            if info is not None:
                return PushResult(digest, info.size, existed=True)
        location: UploadLocation | None = None
        if mount_from and mount_from != repository:
            check_path(mount_from)
            mounted, location = self._start_upload(repository, ctx, (digest, mount_from))
            if mounted:
                log.debug("%s: mounted %s from %s", ctx.registry, digest, mount_from)
                return PushResult(digest, source.size, mounted=True)
        auth_retried = False

        def attempt(number: int) -> PushResult:
            nonlocal location, auth_retried
            try:
                if location is None:
                    _, location = self._start_upload(repository, ctx, None, retry=NEVER)
                assert location is not None  # a session without a mount always has one
                if chunk_size:
                    sent = self._upload_chunked(
                        repository, digest, source, location, chunk_size, ctx, verify
                    )
                else:
                    sent = self._upload_monolithic(
                        repository, digest, source, location, ctx, verify
                    )
                return PushResult(digest, sent)
            except _UploadInterrupted as failure:
                location = None
                if self._landed(repository, digest):
                    log.info("%s: %s is there despite: %s", ctx.registry, digest, failure.error)
                    return PushResult(digest, source.size)
                if failure.auth:
                    if auth_retried:
                        raise failure.error from None
                    auth_retried = True
                if not source.can_send:
                    raise ctx.error(
                        "upload interrupted and the data cannot be re-read "
                        f"(a one-shot iterator): {failure.error.reason or failure.error}",
                        status=failure.error.status,
                        errors=failure.error.errors,
                    ) from failure.error
                raise

        try:
            return retrying(
                attempt,
                self._policy,
                retry_if=lambda exc: isinstance(exc, _UploadInterrupted),
                what=ctx.what,
                sleep=client.transport.sleep,
            )
        except _UploadInterrupted as failure:
            raise failure.error from None

    # --- the engine ---------------------------------------------------------------------------

    @property
    def _policy(self) -> RetryPolicy:
        return self.client.transport.retry

    def _send(
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
        retry: RetryPolicy | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        return self.client.send(
            method,
            url,
            ctx=ctx,
            kind=kind,
            scopes=scopes,
            headers=headers,
            params=params,
            body=body,
            replayable=replayable,
            retry=retry,
            timeout=timeout,
        )

    @property
    def _commit_timeout(self) -> tuple[float, float]:
        """For the PUT that completes an upload: the registry hashes the blob and moves it
        within its storage before it answers (a copy inside object storage, for a large layer,
        can take minutes), so the read timeout is the whole-answer deadline."""
        limits = self.client.limits
        return (limits.connect_timeout, max(limits.read_timeout, limits.deadline))

    def _url(self, repository: str, suffix: str) -> str:
        return self.client.url(repository, suffix)

    @staticmethod
    def _scopes(repository: str) -> list[str]:
        return [repository_scope(repository, "pull", "push")]

    def _landed(self, repository: str, digest: str) -> bool:
        """After a failed upload: did the blob arrive anyway (lost response to a good PUT)?"""
        try:
            return self.client.head_blob(repository, digest) is not None
        except RegistryError:
            return False

    def _digest_of(self, source: BlobSource) -> tuple[str, int]:
        hasher = Hasher()
        for chunk in source.chunks(self.client.chunk_size):
            hasher.update(chunk)
        return hasher.actual, hasher.size

    def _start_upload(
        self,
        repository: str,
        ctx: RequestContext,
        mount: tuple[str, str] | None,
        *,
        retry: RetryPolicy | None = None,
    ) -> tuple[bool, UploadLocation | None]:
        """POST an upload session (or a mount). Returns (mounted, session location).

        With ``retry=NEVER`` (inside an upload's own retries) a failure a new try may fix is
        raised as `_UploadInterrupted`, for the upload to restart."""
        scopes = self._scopes(repository)
        params: dict[str, str] | None = None
        if mount is not None:
            params = {"mount": mount[0], "from": mount[1]}
            scopes = [*scopes, repository_scope(mount[1], "pull")]
        try:
            response = self._send(
                "POST",
                self._url(repository, "blobs/uploads/"),
                ctx=ctx,
                kind="mount" if mount else "upload",
                scopes=scopes,
                params=params,
                retry=retry,
            )
        except RegistryConnectionError as exc:
            if retry is NEVER:
                raise _UploadInterrupted(exc) from exc
            raise
        if response.status_code == 201 and mount is not None:
            response.close()
            return True, None
        if response.status_code == 202:
            response.close()
            location = response.headers.get("Location")
            if not location:
                raise ctx.error(
                    "upload session opened without a Location header", ProtocolError, status=202
                )
            return False, UploadLocation.resolve(response.url, location)
        if retry is NEVER:
            self._raise_upload_failure(response, ctx)
        raise self.client.error_from(response, ctx)

    def _cancel_upload(self, location: UploadLocation, ctx: RequestContext) -> None:
        try:
            response = self._send(
                "DELETE",
                location.url,
                ctx=ctx,
                kind="upload",
                scopes=self._scopes(ctx.repository or ""),
            )
            response.close()
        except RegistryError as exc:
            log.debug("%s: could not cancel upload session: %s", ctx.what, exc)

    def _upload_monolithic(
        self,
        repository: str,
        digest: str,
        source: BlobSource,
        location: UploadLocation,
        ctx: RequestContext,
        verify: bool = True,
    ) -> int:
        verifier = DigestVerifier(digest) if verify else ByteCounter(digest)
        stats = self.client.stats
        chunks = source.chunks(self.client.chunk_size)
        body: Any
        if source.size == 0:
            body = b""
        elif source.size is not None:
            body = SizedUploadBody(chunks, verifier, source.size, stats.add_sent)
        else:
            body = UploadBody(chunks, verifier, stats.add_sent)
        try:
            response = self._send(
                "PUT",
                location.with_digest(digest),
                ctx=ctx,
                kind="upload",
                scopes=self._scopes(repository),
                headers={"Content-Type": "application/octet-stream"},
                body=body,
                replayable=False,
                retry=NEVER,
                timeout=self._commit_timeout,
            )
        except RegistryConnectionError as exc:
            raise _UploadInterrupted(exc) from exc
        except SizeMismatch as exc:
            raise ctx.error(str(exc)) from None
        return self._finish_upload(response, verifier, digest, ctx)

    def _upload_chunked(
        self,
        repository: str,
        digest: str,
        source: BlobSource,
        location: UploadLocation,
        chunk_size: int,
        ctx: RequestContext,
        verify: bool = True,
    ) -> int:
        verifier = DigestVerifier(digest) if verify else ByteCounter(digest)
        url = location.url
        offset = 0
        for piece in rechunk(source.chunks(self.client.chunk_size), chunk_size):
            verifier.update(piece)
            end = offset + len(piece) - 1
            self.client.stats.add_sent(len(piece))
            try:
                response = self._send(
                    "PATCH",
                    url,
                    ctx=ctx,
                    kind="upload",
                    scopes=self._scopes(repository),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{end}",
                    },
                    body=piece,
                    replayable=False,
                    retry=NEVER,
                )
            except RegistryConnectionError as exc:
                raise _UploadInterrupted(exc) from exc
            if response.status_code != 202:
                self._raise_upload_failure(response, ctx)
            response.close()
            next_location = response.headers.get("Location")
            if next_location:
                url = urljoin(response.url, next_location)
            offset += len(piece)
        try:
            response = self._send(
                "PUT",
                UploadLocation(url).with_digest(digest),
                ctx=ctx,
                kind="upload",
                scopes=self._scopes(repository),
                headers={"Content-Type": "application/octet-stream"},
                body=b"",
                replayable=False,
                retry=NEVER,
                timeout=self._commit_timeout,
            )
        except RegistryConnectionError as exc:
            raise _UploadInterrupted(exc) from exc
        return self._finish_upload(response, verifier, digest, ctx)

    def _finish_upload(
        self,
        response: requests.Response,
        verifier: DigestVerifier,
        digest: str,
        ctx: RequestContext,
    ) -> int:
        if response.status_code not in (200, 201, 204):
            if response.status_code == 400 and verifier.size and not verifier.matches():
                response.close()
                raise ctx.error(
                    f"the data sent hashes to {verifier.actual} ({verifier.size} bytes)",
                    DigestMismatchError,
                    status=400,
                )
            self._raise_upload_failure(response, ctx)
        response.close()
        if not verifier.matches():
            raise ctx.error(
                f"the data sent hashes to {verifier.actual} ({verifier.size} bytes)",
                DigestMismatchError,
            )
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise ctx.error(f"registry stored the blob as {stored}", DigestMismatchError)
        return verifier.size

    def _raise_upload_failure(self, response: requests.Response, ctx: RequestContext) -> None:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error = self.client.error_from(response, ctx)
        if status == 401:
            raise _UploadInterrupted(error, auth=True)
        if status in self._policy.retry_statuses:
            if retry_after is not None and retry_after > self._policy.max_retry_after:
                raise error
            raise _UploadInterrupted(error, retry_after=retry_after)
        raise error
