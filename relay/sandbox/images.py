"""Build test images and push them with plain ``requests`` (a test oracle independent of relay).

Everything here talks to the registry HTTP API directly, so a bug in relay's client cannot hide
itself by also being in the code that made the test data.

* Layers are gzip-compressed tars holding pseudo-random bytes derived from a seed with SHAKE-256,
  so the same seed gives the same tar (diff_id) everywhere and the same gzip bytes for a given
  zlib. Compare against the digests returned here, never against hard-coded ones: a different
  zlib build (e.g. zlib-ng) may compress differently.
* Layers are generated straight to files (streamed, never whole in memory) and cached by seed and
  size, so the ~200 MB benchmark image costs its generation time once per session.
* Manifests are serialised with indentation, not compactly, on purpose: a client that re-encodes
  JSON instead of copying bytes changes the digest and is caught.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

import requests

# Media types ----------------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])

# Image kinds ----------------------------------------------------------------------------------

DOCKER = "docker"  # single-platform Docker schema2 manifest
OCI = "oci"  # single-platform OCI manifest
OCI_INDEX_KIND = "oci-index"  # multi-platform OCI index of OCI manifests
DOCKER_LIST_KIND = "docker-list"  # Docker manifest list of schema2 manifests
OCI_NO_MEDIATYPE = "oci-no-mediatype"  # OCI manifest without the optional mediaType field
KINDS = (DOCKER, OCI, OCI_INDEX_KIND, DOCKER_LIST_KIND, OCI_NO_MEDIATYPE)
MULTI_PLATFORM_KINDS = (OCI_INDEX_KIND, DOCKER_LIST_KIND)

DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64/v8")

_CHUNK = 1 << 20  # 1 MiB: generation block and upload read size
_EPOCH = "1970-01-01T00:00:00Z"  # fixed timestamps keep configs deterministic


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def parse_platform(platform: str) -> dict[str, str]:
    """``linux/arm64/v8`` -> {"os": "linux", "architecture": "arm64", "variant": "v8"}."""
    parts = platform.split("/")
    if len(parts) not in (2, 3):
        raise ValueError(f"platform must be os/arch[/variant], got {platform!r}")
    result = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result


# Data model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob stored in a file."""

    digest: str
    size: int
    media_type: str
    path: Path
    diff_id: str | None = None  # layers only: sha256 of the uncompressed tar

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    def with_media_type(self, media_type: str) -> Blob:
        # The same bytes serve as an OCI and a Docker layer/config; only the descriptor differs.
        return Blob(self.digest, self.size, media_type, self.path, self.diff_id)


@dataclass
class Image:
    """A built (not yet pushed) image, manifest or index, with everything needed to push it."""

    kind: str
    digest: str  # sha256 of ``manifest``
    media_type: str  # the Content-Type to PUT/serve (OCI type also for oci-no-mediatype)
    manifest: bytes  # exact bytes; the digest is over these
    platforms: list[str]  # e.g. ["linux/amd64"] or ["linux/amd64", "linux/arm64/v8"]
    layer_digests: list[str]  # compressed layer digests (all children's, for an index)
    config_digest: str | None = None  # None for indexes / manifest lists
    config: Blob | None = None
    layers: list[Blob] = field(default_factory=list)
    children: list[Image] = field(default_factory=list)  # per-platform manifests of an index

    @property
    def is_index(self) -> bool:
        return bool(self.children)

    @property
    def blob_digests(self) -> list[str]:
        """Config and layer digests of this image and its children, without duplicates."""
        seen: dict[str, None] = {}
        for img in [self, *self.children]:
            if img.config_digest:
                seen[img.config_digest] = None
            for d in img.layer_digests:
                seen[d] = None
        return list(seen)

    @property
    def total_size(self) -> int:
        """Bytes a full copy moves: manifests plus unique blobs."""
        blobs: dict[str, int] = {}
        for img in [self, *self.children]:
            if img.config is not None:
                blobs[img.config.digest] = img.config.size
            for layer in img.layers:
                blobs[layer.digest] = layer.size
        return (
            sum(blobs.values()) + len(self.manifest) + sum(len(c.manifest) for c in self.children)
        )


@dataclass
class PushedImage:
    """An image as pushed to one registry under ``repo:tag``."""

    host: str
    repo: str
    tag: str | None
    digest: str
    media_type: str
    manifest: bytes
    platforms: list[str]
    layer_digests: list[str]
    config_digest: str | None
    image: Image = field(repr=False)

    @property
    def ref(self) -> str:
        """``HOST/repo:tag`` (or ``@digest`` when pushed without a tag)."""
        return f"{self.host}/{self.repo}" + (f":{self.tag}" if self.tag else f"@{self.digest}")

    @property
    def digest_ref(self) -> str:
        return f"{self.host}/{self.repo}@{self.digest}"

    @property
    def children(self) -> list[Image]:
        return self.image.children

    @property
    def blob_digests(self) -> list[str]:
        return self.image.blob_digests


# Layer generation -----------------------------------------------------------------------------


class _RandomReader(io.RawIOBase):
    """``size`` deterministic pseudo-random bytes, produced 1 MiB at a time.

    SHAKE-256 (seed || block index) is stable across Python versions, unlike ``random``.
    """

    def __init__(self, seed: bytes, size: int) -> None:
        self._seed = seed
        self._remaining = size
        self._block_index = 0
        self._block = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._remaining <= 0:
            return 0
        if not self._block:
            data = hashlib.shake_256(self._seed + self._block_index.to_bytes(8, "big")).digest(
                _CHUNK
            )
            self._block_index += 1
            self._block = memoryview(data)
        n = min(len(buffer), len(self._block), self._remaining)
        buffer[:n] = self._block[:n]
        self._block = self._block[n:]
        self._remaining -= n
        return n


class _HashingWriter:
    """Pass-through writer that hashes and counts what goes through it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self._inner.write(data)
        return len(data)

    def flush(self) -> None:
        self._inner.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def _tarinfo(name: str, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    # Fixed owner, mode and mtime: the tar (and so the diff_id) depends on the seed only.
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_layer(path: Path, seed: str, size: int, compresslevel: int = 1) -> Blob:
    """Write a gzip tar with ``size`` random bytes (plus a small text file) to ``path``.

    Returns the blob with OCI layer media type; use :meth:`Blob.with_media_type` for Docker.
    Level 1 by default: the payload is random and will not shrink, and level 1 is ~3x faster.
    """
    tmp = path.with_name(path.name + ".partial")
    tag = hashlib.sha256(seed.encode()).hexdigest()[:16]
    with open(tmp, "wb") as raw:
        compressed = _HashingWriter(raw)
        # filename="" and mtime=0: no name or time in the gzip header, so output is reproducible.
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=compresslevel
        ) as gz:
            uncompressed = _HashingWriter(gz)
            # "w|" is tarfile's streaming mode: it never seeks or tells on the writer.
            # A write-only stream is all "w|" uses of a file object.
            stream = cast(IO[bytes], uncompressed)
            with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(_tarinfo("relay-test", directory=True))
                tar.addfile(_tarinfo(f"relay-test/{tag}", directory=True))
                note = f"relay test layer\nseed: {seed}\nsize: {size}\n".encode()
                tar.addfile(_tarinfo(f"relay-test/{tag}/README", len(note)), io.BytesIO(note))
                tar.addfile(
                    _tarinfo(f"relay-test/{tag}/data.bin", size),
                    io.BufferedReader(_RandomReader(seed.encode(), size), buffer_size=_CHUNK),
                )
    tmp.replace(path)
    return Blob(
        digest=compressed.digest,
        size=compressed.size,
        media_type=OCI_LAYER_GZIP,
        path=path,
        diff_id=uncompressed.digest,
    )


# Building -------------------------------------------------------------------------------------


def _dumps(obj: Any, indent: int) -> bytes:
    return json.dumps(obj, indent=indent).encode()


class ImageFactory:
    """Builds images into ``workdir`` (cached) and pushes them with :class:`OracleClient`."""

    def __init__(self, workdir: str | Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._layers: dict[tuple[str, int, int], Blob] = {}
        self._lock = threading.Lock()  # tests may build from several threads

    # -- blobs -------------------------------------------------------------------------------

    def layer(self, seed: str, size: int, compresslevel: int = 1) -> Blob:
        """A cached layer for (seed, size, level)."""
        key = (seed, size, compresslevel)
        with self._lock:
            cached = self._layers.get(key)
            if cached is not None:
                return cached
            name = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
            blob = write_layer(self.workdir / f"layer-{name}.tar.gz", seed, size, compresslevel)
            self._layers[key] = blob
            return blob

    def _json_blob(self, data: bytes, media_type: str) -> Blob:
        digest = sha256_digest(data)
        path = self.workdir / f"blob-{digest.split(':', 1)[1]}"
        if not path.exists():
            path.write_bytes(data)
        return Blob(digest, len(data), media_type, path)

    # -- images ------------------------------------------------------------------------------

    def build(
        self,
        kind: str,
        *,
        seed: str = "relay",
        layer_count: int = 2,
        layer_size: int = 4096,
        platforms: Sequence[str] | None = None,
        compresslevel: int = 1,
    ) -> Image:
        """Build an image of ``kind`` (one of :data:`KINDS`).

        Single-platform kinds use ``platforms[0]`` (default linux/amd64); index kinds get one
        child per platform (default linux/amd64 + linux/arm64/v8), each with its own layers.
        ``layer_size`` is the random payload per layer in bytes.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown image kind {kind!r}; expected one of {KINDS}")
        if kind in MULTI_PLATFORM_KINDS:
            plats = list(platforms or DEFAULT_PLATFORMS)
            child_kind = OCI if kind == OCI_INDEX_KIND else DOCKER
            children = [
                self._single(child_kind, f"{seed}/{p}", p, layer_count, layer_size, compresslevel)
                for p in plats
            ]
            return self._index(kind, children)
        plat = (platforms or DEFAULT_PLATFORMS[:1])[0]
        return self._single(kind, seed, plat, layer_count, layer_size, compresslevel)

    def _single(
        self,
        kind: str,
        seed: str,
        platform: str,
        layer_count: int,
        layer_size: int,
        compresslevel: int,
    ) -> Image:
        docker = kind == DOCKER
        layer_type = DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP
        layers = [
            self.layer(f"{seed}/layer{i}", layer_size, compresslevel).with_media_type(layer_type)
            for i in range(layer_count)
        ]
        plat = parse_platform(platform)
        config_obj: dict[str, Any] = {
            "created": _EPOCH,
            **plat,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": {"org.relay.test.seed": seed},
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [
                {"created": _EPOCH, "created_by": f"relay test layer {i}"}
                for i in range(layer_count)
            ],
        }
        config = self._json_blob(
            json.dumps(config_obj, sort_keys=True, separators=(",", ":")).encode(),
            DOCKER_CONFIG if docker else OCI_CONFIG,
        )
        manifest_obj: dict[str, Any] = {"schemaVersion": 2}
        if kind != OCI_NO_MEDIATYPE:
            manifest_obj["mediaType"] = DOCKER_MANIFEST if docker else OCI_MANIFEST
        manifest_obj["config"] = config.descriptor()
        manifest_obj["layers"] = [layer.descriptor() for layer in layers]
        # Docker's own tooling writes schema2 with 3-space indent; OCI tools commonly use 2.
        manifest = _dumps(manifest_obj, indent=3 if docker else 2)
        return Image(
            kind=kind,
            digest=sha256_digest(manifest),
            media_type=DOCKER_MANIFEST if docker else OCI_MANIFEST,
            manifest=manifest,
            platforms=[platform],
            layer_digests=[layer.digest for layer in layers],
            config_digest=config.digest,
            config=config,
            layers=layers,
        )

    def _index(self, kind: str, children: list[Image]) -> Image:
        media_type = OCI_INDEX if kind == OCI_INDEX_KIND else DOCKER_LIST
        index_obj = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {
                    "mediaType": child.media_type,
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": parse_platform(child.platforms[0]),
                }
                for child in children
            ],
        }
        manifest = _dumps(index_obj, indent=3 if kind == DOCKER_LIST_KIND else 2)
        return Image(
            kind=kind,
            digest=sha256_digest(manifest),
            media_type=media_type,
            manifest=manifest,
            platforms=[p for child in children for p in child.platforms],
            layer_digests=[d for child in children for d in child.layer_digests],
            children=children,
        )

    # -- pushing -----------------------------------------------------------------------------

    def push(
        self,
        registry: RegistryLike,
        repo: str,
        tag: str | None,
        kind: str | Image = OCI,
        *,
        seed: str | None = None,
        layer_count: int = 2,
        layer_size: int = 4096,
        platforms: Sequence[str] | None = None,
        compresslevel: int = 1,
        client: OracleClient | None = None,
    ) -> PushedImage:
        """Build (unless an :class:`Image` is given) and push to ``registry`` as ``repo:tag``.

        The default seed is derived from kind, repo and tag, so distinct pushes get distinct
        content; pass ``seed`` to push identical content under several names.
        """
        if isinstance(kind, Image):
            image = kind
        else:
            image = self.build(
                kind,
                seed=seed if seed is not None else f"{kind}:{repo}:{tag}",
                layer_count=layer_count,
                layer_size=layer_size,
                platforms=platforms,
                compresslevel=compresslevel,
            )
        own_client = client is None
        cli = client or OracleClient(registry)
        try:
            cli.push_image(repo, image, tag)
        finally:
            if own_client:
                cli.close()
        return PushedImage(
            host=registry.host,
            repo=repo,
            tag=tag,
            digest=image.digest,
            media_type=image.media_type,
            manifest=image.manifest,
            platforms=list(image.platforms),
            layer_digests=list(image.layer_digests),
            config_digest=image.config_digest,
            image=image,
        )

    def push_benchmark_image(
        self,
        registry: RegistryLike,
        repo: str = "bench/big",
        tag: str = "1",
        *,
        total_size: int = 200 * 1024 * 1024,
        layer_count: int = 4,
        kind: str = OCI,
        seed: str = "relay-benchmark",
    ) -> PushedImage:
        """The ~200 MB / 4-layer benchmark image (generated once per factory, streamed)."""
        return self.push(
            registry,
            repo,
            tag,
            kind,
            seed=seed,
            layer_count=layer_count,
            layer_size=total_size // layer_count,
        )


# Minimal registry client (the oracle) ---------------------------------------------------------


class RegistryLike(Protocol):
    """What the oracle needs from a registry (``tests.fixtures.registries.Registry`` fits)."""

    host: str
    url: str
    username: str | None
    password: str | None
    ca_file: str | None


class OracleError(AssertionError):
    """The registry answered something the oracle did not expect."""


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class OracleClient:
    """Just enough of the distribution API to push and read images, with Basic/Bearer auth.

    It keeps one token per scope and fetches a new one only on 401, so its own token count is
    predictable (tests should still ``reset()`` the TokenServer after pushing test images).
    """

    def __init__(self, registry: RegistryLike, *, anonymous: bool = False) -> None:
        self.registry = registry
        self.base = registry.url.rstrip("/")
        self.verify: str | bool = registry.ca_file if registry.ca_file else True
        self.creds = None if anonymous else _creds(registry)
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE in the environment would override verify= on the session, and
        # proxies must never see 127.0.0.1 traffic.
        self.session.trust_env = False
        self._scheme: str | None = None  # "basic" / "bearer" once a challenge was seen
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> OracleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str | None,
        body: bytes | Path | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        if not url.startswith(("http://", "https://")):
            url = self.base + url
        resp: requests.Response | None = None
        for attempt in range(2):
            hdrs = dict(headers or {})
            self._apply_auth(hdrs, scope)
            with _Body(body) as data:
                resp = self.session.request(
                    method,
                    url,
                    data=data,
                    headers=hdrs,
                    params=params,
                    verify=self.verify,
                    stream=stream,
                    timeout=120,
                    allow_redirects=True,
                )
            if resp.status_code != 401 or attempt == 1:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()
            self._handle_challenge(challenge, scope)
        assert resp is not None
        return resp

    def _apply_auth(self, headers: dict[str, str], scope: str | None) -> None:
        if self._scheme == "basic" and self.creds:
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        elif self._scheme == "bearer":
            token = self._tokens.get(scope or "")
            if token:
                headers["Authorization"] = f"Bearer {token}"

    def _handle_challenge(self, challenge: str, scope: str | None) -> None:
        scheme, _, rest = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(rest))
        if scheme.lower() == "basic":
            if not self.creds:
                raise OracleError(f"registry wants Basic auth but no credentials: {challenge}")
            self._scheme = "basic"
            return
        if scheme.lower() != "bearer" or not params.get("realm"):
            raise OracleError(f"unsupported challenge {challenge!r}")
        self._scheme = "bearer"
        query: dict[str, str] = {}
        if "service" in params:
            query["service"] = params["service"]
        if scope:
            query["scope"] = scope
        resp = self.session.get(
            params["realm"], params=query, auth=self.creds, verify=self.verify, timeout=30
        )
        if resp.status_code != 200:
            raise OracleError(f"token request failed: {resp.status_code} {resp.text[:300]}")
        body = resp.json()
        self._tokens[scope or ""] = body.get("token") or body["access_token"]

    # -- reading -------------------------------------------------------------------------------

    def get_manifest(
        self, repo: str, reference: str, accept: str = MANIFEST_ACCEPT
    ) -> tuple[bytes, str, str | None]:
        """(raw bytes, Content-Type, Docker-Content-Digest header) of a manifest."""
        resp = self.request(
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull",
            headers={"Accept": accept},
        )
        _expect(resp, 200, f"GET manifest {repo}:{reference}")
        return (
            resp.content,
            resp.headers.get("Content-Type", ""),
            resp.headers.get("Docker-Content-Digest"),
        )

    def manifest_digest(self, repo: str, reference: str) -> str:
        """sha256 of the manifest bytes as served (not the header, which could lie)."""
        return sha256_digest(self.get_manifest(repo, reference)[0])

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        resp.close()
        return resp.status_code == 200

    def blob_digest(self, repo: str, digest: str) -> str:
        """Stream a blob and return the sha256 of what was actually served."""
        resp = self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull", stream=True
        )
        _expect(resp, 200, f"GET blob {repo}@{digest}")
        h = hashlib.sha256()
        for chunk in resp.iter_content(_CHUNK):
            h.update(chunk)
        return "sha256:" + h.hexdigest()

    def iter_blob(self, repo: str, digest: str) -> Iterator[bytes]:
        resp = self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull", stream=True
        )
        _expect(resp, 200, f"GET blob {repo}@{digest}")
        yield from resp.iter_content(_CHUNK)

    def tags(self, repo: str) -> list[str]:
        resp = self.request("GET", f"/v2/{repo}/tags/list", scope=f"repository:{repo}:pull")
        _expect(resp, 200, f"GET tags {repo}")
        return list(resp.json().get("tags") or [])

    # -- writing -------------------------------------------------------------------------------

    def push_blob(self, repo: str, blob: Blob) -> None:
        scope = f"repository:{repo}:pull,push"
        head = self.request("HEAD", f"/v2/{repo}/blobs/{blob.digest}", scope=scope)
        head.close()
        if head.status_code == 200:
            return
        # distribution 2.8 ignores the body of a single POST ?digest= (it opens a session and
        # answers 202), so always use the two-step POST then PUT.
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope)
        _expect(start, 202, f"start upload {repo}")
        location = urllib.parse.urljoin(self.base + "/", start.headers["Location"])
        put = self.request(
            "PUT",
            location,
            scope=scope,
            body=blob.path,  # streamed from disk with a Content-Length
            params={"digest": blob.digest},
            headers={"Content-Type": "application/octet-stream"},
        )
        _expect(put, 201, f"finish upload {repo}@{blob.digest}")

    def push_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str) -> str:
        resp = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            scope=f"repository:{repo}:pull,push",
            body=manifest,
            headers={"Content-Type": media_type},
        )
        _expect(resp, 201, f"PUT manifest {repo}:{reference}")
        served = resp.headers.get("Docker-Content-Digest")
        expected = sha256_digest(manifest)
        if served != expected:
            raise OracleError(f"registry digest {served} != computed {expected} for {repo}")
        return expected

    def push_image(self, repo: str, image: Image, tag: str | None) -> None:
        """Push blobs, child manifests (by digest), then the top manifest (by tag or digest)."""
        for child in image.children:
            self.push_image(repo, child, None)
        if image.config is not None:
            self.push_blob(repo, image.config)
        for layer in image.layers:
            self.push_blob(repo, layer)
        self.push_manifest(repo, tag or image.digest, image.manifest, image.media_type)


class _Body:
    """Yield bytes as they are, or a fresh file handle for a Path (re-opened per attempt)."""

    def __init__(self, body: bytes | Path | None) -> None:
        self.body = body
        self.fh: BinaryIO | None = None

    def __enter__(self) -> bytes | BinaryIO | None:
        if isinstance(self.body, Path):
            self.fh = open(self.body, "rb")  # closed in __exit__
            return self.fh
        return self.body

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()


def _creds(registry: RegistryLike) -> tuple[str, str] | None:
    if registry.username is None or registry.password is None:
        return None
    return (registry.username, registry.password)


def _expect(resp: requests.Response, status: int, what: str) -> None:
    if resp.status_code != status:
        raise OracleError(
            f"{what}: expected HTTP {status}, got {resp.status_code}: {resp.text[:500]}"
        )
