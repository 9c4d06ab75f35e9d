"""Container image references: docker/distribution's grammar and docker's normalization.

The grammar follows distribution/reference (reference.go, regexp.go) and the
normalization follows its normalize.go (ParseNormalizedNamed), which is what
`docker pull` applies. Written anew in Python; the upstream test tables were
used as a source of facts for tests/test_reference.py.

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [ domain "/" ] path
    domain           := host [ ":" port ]
    host             := domain-name | "[" ipv6-hex-and-colons "]"
    domain-name      := domain-component ( "." domain-component )*
    domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    port             := [0-9]+
    path             := path-component ( "/" path-component )*
    path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := algorithm ":" hex      (only sha256, sha384, sha512 accepted)

Every value this module returns is safe to paste into a Dockerfile or a shell
word: a Reference only ever holds printable ASCII without whitespace, quotes,
`$`, backslashes or a leading `-`. All regexes are anchored with \\A and \\Z (never
`$`, which also matches before a trailing newline) and avoid `\\w`/`\\d`, which
are Unicode-aware in Python but ASCII-only in Go's RE2.

Pure module: no I/O, and of relay only the error hierarchy, so every other module
(the registry client included) checks names, tags and digests with this one grammar.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from relay.errors import InputError

__all__ = [
    "DEFAULT_DOMAIN",
    "DIGEST_RE",
    "LEGACY_DEFAULT_DOMAIN",
    "OFFICIAL_PREFIX",
    "PATH_MAX_LENGTH",
    "SUPPORTED_DIGEST_ALGORITHMS",
    "TAG_MAX_LENGTH",
    "TAG_RE",
    "InvalidReference",
    "Reference",
    "check_digest",
    "check_path",
    "check_tag",
    "check_tag_or_digest",
    "is_valid_digest",
    "is_valid_path",
    "is_valid_tag",
    "parse",
    "parse_repository",
]

DEFAULT_DOMAIN = "docker.io"
# The old "Docker Index" host; docker rewrites it to DEFAULT_DOMAIN so that both
# spellings name the same repository.
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"

# distribution/reference v0.6.0 (used by current docker) applies the 255 limit
# to the path only; older releases applied it to domain + "/" + path. We follow
# current docker so that anything `docker pull` accepts is accepted here.
PATH_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

# go-digest's registered algorithms and the exact hex length each must have.
# Docker links crypto/sha256 and crypto/sha512 (which also provides sha384), so
# these three are the ones its digest.Validate accepts.
SUPPORTED_DIGEST_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha384": 96, "sha512": 128}

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
# Upstream deliberately accepts any hex-and-colon run here (no zone ids, no
# embedded IPv4) rather than validating a real IPv6 address; we match that.
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG_CHARS = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
# distribution's digest grammar: what is *shaped* like a digest. Used only to
# tell "unsupported algorithm" apart from "not a digest at all".
_DIGEST_GRAMMAR = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"\A{_PATH}\Z")
_PATH_COMPONENT_RE = re.compile(rf"\A{_PATH_COMPONENT}\Z")
_DOMAIN_RE = re.compile(rf"\A{_DOMAIN}\Z")
_TAG_CHARS_RE = re.compile(rf"\A{_TAG_CHARS}\Z")
_DIGEST_GRAMMAR_RE = re.compile(rf"\A{_DIGEST_GRAMMAR}\Z")
# An image ID without its algorithm; as a bare name it would be ambiguous.
_IDENTIFIER_RE = re.compile(r"\A[a-f0-9]{64}\Z")

TAG_RE: re.Pattern[str] = re.compile(rf"\A[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{TAG_MAX_LENGTH - 1}}}\Z")
"""A valid tag, anchored at both ends. Matches exactly what is_valid_tag accepts."""

DIGEST_RE: re.Pattern[str] = re.compile(
    r"\A(?:"
    + "|".join(rf"{alg}:[a-f0-9]{{{n}}}" for alg, n in SUPPORTED_DIGEST_ALGORITHMS.items())
    + r")\Z"
)
"""A valid, supported digest, anchored. Matches exactly what is_valid_digest accepts.

Stricter than distribution's grammar on purpose: a digest that parses but names
an algorithm nobody can verify is useless to a mirror, and go-digest rejects it.
"""


# Anything but printable, non-space ASCII.
_OUTSIDE_VISIBLE_ASCII = re.compile(r"[^\x21-\x7e]")


class InvalidReference(InputError, ValueError):
    """The text is not a valid image reference (or repository path, tag or digest); the
    message says why. Invalid input (exit 2), and a ValueError for callers that parse."""


def is_valid_tag(tag: object) -> bool:
    """True if `tag` is a string that docker accepts as a tag."""
    return isinstance(tag, str) and TAG_RE.fullmatch(tag) is not None


def is_valid_digest(digest: object) -> bool:
    """True if `digest` is a sha256/sha384/sha512 digest with exact-length lowercase hex."""
    return isinstance(digest, str) and DIGEST_RE.fullmatch(digest) is not None


def is_valid_path(path: object) -> bool:
    """True if `path` is a valid repository path (`library/nginx`), without a registry."""
    return isinstance(path, str) and _path_problem(path) is None


def check_path(path: str) -> str:
    """`path` if it is a valid repository path, else InvalidReference saying why."""
    problem = _path_problem(path) if isinstance(path, str) else "repository path must be a string"
    if problem is not None:
        raise InvalidReference(problem)
    return path


def check_tag(tag: str) -> str:
    """`tag` if docker accepts it as a tag, else InvalidReference saying why."""
    problem = _tag_problem(tag) if isinstance(tag, str) else "tag must be a string"
    if problem is not None:
        raise InvalidReference(problem)
    return tag


def check_digest(digest: str) -> str:
    """`digest` if it is a supported digest (sha256/384/512, lowercase hex), else
    InvalidReference saying why."""
    problem = _digest_problem(digest) if isinstance(digest, str) else "digest must be a string"
    if problem is not None:
        raise InvalidReference(problem)
    return digest


def check_tag_or_digest(value: str) -> str:
    """`value` if it is a tag or a digest: what may follow `/manifests/` in a registry URL."""
    if is_valid_digest(value) or is_valid_tag(value):
        return value
    if isinstance(value, str) and ":" in value:
        return check_digest(value)
    return check_tag(value)


def _show(value: str, limit: int = 60) -> str:
    """Quote a value for an error message: repr() so control characters stay visible, and
    shortened so a megabyte of junk doesn't become a megabyte of log."""
    if len(value) > limit:
        return repr(value[:limit]) + f"... ({len(value)} characters)"
    return repr(value)


def _domain_problem(domain: str) -> str | None:
    if _DOMAIN_RE.fullmatch(domain):
        return None
    if domain.startswith("[") or domain.count(":") > 1:
        return (
            f"invalid registry host {_show(domain)}: an IPv6 address must be in brackets, "
            "with only hex digits and colons (no zone or embedded IPv4), e.g. [::1]:5000"
        )
    return (
        f"invalid registry host {_show(domain)}: expected a host name made of letters, digits, "
        "'-' and '.', or a bracketed IPv6 address, optionally followed by ':port'"
    )


def _path_problem(path: str) -> str | None:
    if _PATH_RE.fullmatch(path):
        if len(path) > PATH_MAX_LENGTH:
            return (
                f"repository path is {len(path)} characters long; "
                f"it must not be longer than {PATH_MAX_LENGTH} characters"
            )
        return None
    if not path:
        return "repository name must not be empty"
    if path.lower() != path and _PATH_RE.fullmatch(path.lower()):
        return f"repository name must be lowercase: {_show(path)}"
    for component in path.split("/"):
        if not component:
            return f"repository path {_show(path)} has an empty component"
        if not _PATH_COMPONENT_RE.fullmatch(component):
            return (
                f"invalid repository path component {_show(component)}: use lowercase letters "
                "and digits, separated by '.', '_', '__' or '-', starting and ending with a "
                "letter or digit"
            )
    # Unreachable: a path whose every component matches is itself a match.
    return f"invalid repository path {_show(path)}"


def _tag_problem(tag: str) -> str | None:
    if TAG_RE.fullmatch(tag):
        return None
    if not tag:
        return "tag must not be empty"
    if _TAG_CHARS_RE.fullmatch(tag):
        return f"tag {_show(tag)} is longer than {TAG_MAX_LENGTH} characters ({len(tag)})"
    if tag[0] in ".-":
        return f"tag {_show(tag)} must start with a letter, digit or '_'"
    return f"invalid tag {_show(tag)}: only letters, digits, '_', '.' and '-' are allowed"


def _digest_problem(digest: str) -> str | None:
    if DIGEST_RE.fullmatch(digest):
        return None
    algorithm, sep, encoded = digest.partition(":")
    length = SUPPORTED_DIGEST_ALGORITHMS.get(algorithm)
    if sep and length is not None:
        return (
            f"{algorithm} digest must be exactly {length} lowercase hex characters, "
            f"got {_show(encoded)}"
        )
    # Decision: a digest that fits distribution's grammar but names an algorithm
    # go-digest does not register (e.g. "md5:...", "SHA256:...", "sha256+b64:...")
    # is rejected, as go-digest's Validate does inside docker's Parse, rather than
    # passed through: nothing downstream could verify content against it.
    if _DIGEST_GRAMMAR_RE.fullmatch(digest):
        return (
            f"unsupported digest algorithm {_show(algorithm)}; "
            f"supported: {', '.join(SUPPORTED_DIGEST_ALGORITHMS)}"
        )
    return f"invalid digest {_show(digest)}: expected <algorithm>:<hex>, e.g. sha256:<64 hex>"


def _looks_like_domain(component: str) -> bool:
    """Docker's rule (splitDockerDomain) for whether the first '/'-separated component is a
    registry host rather than a Docker Hub namespace."""
    return (
        component == "localhost"
        or "." in component
        or ":" in component
        # Namespaces are never upper case, so upper case can only mean a host.
        or component.lower() != component
    )


@dataclass(frozen=True)
class Reference:
    """A fully-qualified, normalized image reference.

    Construction validates, so every instance is well-formed and canonical:
    `parse(str(ref)) == ref` holds for any Reference, however it was made.
    Both a tag and a digest may be present (docker accepts `name:tag@digest`;
    the digest is what gets pulled and the tag is informational).
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        for field_name in ("domain", "path"):
            if not isinstance(getattr(self, field_name), str):
                raise InvalidReference(f"{field_name} must be a string")
        for field_name in ("tag", "digest"):
            value = getattr(self, field_name)
            if value is not None and not isinstance(value, str):
                raise InvalidReference(f"{field_name} must be a string or None")

        problem = _domain_problem(self.domain) or _path_problem(self.path)
        if problem is None and self.tag is not None:
            problem = _tag_problem(self.tag)
        if problem is None and self.digest is not None:
            problem = _digest_problem(self.digest)
        if problem is None:
            problem = self._canonical_problem()
        if problem is not None:
            raise InvalidReference(problem)

    def _canonical_problem(self) -> str | None:
        # These only trip on direct construction; parse() always yields canonical
        # values. Without them str() could print something that parses differently.
        if self.domain == LEGACY_DEFAULT_DOMAIN:
            return f"use {DEFAULT_DOMAIN!r} rather than {LEGACY_DEFAULT_DOMAIN!r} as the domain"
        if not _looks_like_domain(self.domain):
            return (
                f"domain {_show(self.domain)} would be read as a Docker Hub namespace; a registry "
                "host needs a '.', a ':port', an upper-case letter, or to be 'localhost'"
            )
        if self.domain == DEFAULT_DOMAIN and "/" not in self.path:
            return (
                f"a Docker Hub path needs a namespace: use {OFFICIAL_PREFIX + self.path!r} "
                f"rather than {self.path!r}"
            )
        return None

    @property
    def name(self) -> str:
        """`domain/path`, without tag or digest: the repository being referred to."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self) -> str:
        """Alias of `name`."""
        return self.name

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """Docker's short form: `busybox:latest` for docker.io/library/busybox:latest,
        `bitnami/redis` for docker.io/bitnami/redis; other registries are unchanged.

        Unlike docker's FamiliarString, a shortening is only used when it parses back to
        this same reference: docker.io/localhost/x must not become `localhost/x` (another
        registry), nor docker.io/library/<64 hex> a bare image-ID lookalike.
        """
        suffix = str(self)[len(self.name) :]
        candidates = [self.name + suffix]
        if self.domain == DEFAULT_DOMAIN:
            candidates.insert(0, self.path + suffix)
            rest = self.path.removeprefix(OFFICIAL_PREFIX)
            if rest != self.path and "/" not in rest:
                candidates.insert(0, rest + suffix)
        for candidate in candidates:
            try:
                if parse(candidate) == self:
                    return candidate
            except InvalidReference:
                continue
        return str(self)  # pragma: no cover - the full form always round-trips

    def with_tag(self, tag: str) -> Reference:
        """This reference with `tag` set (replacing any tag; a digest is kept)."""
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """This reference with `digest` set (replacing any digest; a tag is kept)."""
        return dataclasses.replace(self, digest=digest)


def _split_docker_domain(text: str) -> tuple[str, str]:
    """Docker's splitDockerDomain, minus the `library/` insertion (parse() does that once
    the tag and digest are off): (domain, remainder), remainder still carrying any tag
    or digest."""
    first, slash, rest = text.partition("/")
    if not slash:
        # A lone component is always a Docker Hub name, even "localhost:5000" or
        # "example.com" (an upstream FIXME; kept so we agree with docker).
        return DEFAULT_DOMAIN, text
    if first == LEGACY_DEFAULT_DOMAIN:
        return DEFAULT_DOMAIN, rest
    if _looks_like_domain(first):
        return first, rest
    return DEFAULT_DOMAIN, text


def parse(text: str) -> Reference:
    """Parse and normalize an image reference the way `docker pull` does.

    `nginx` -> docker.io/library/nginx; `index.docker.io/foo:1` -> docker.io/library/foo:1.
    No default tag is added: `.tag` is None when the text has none.
    Raises InvalidReference (a ValueError) with a message saying what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidReference(f"reference must be a string, not {type(text).__name__}")
    if not text:
        raise InvalidReference("reference must not be empty")
    # Checked up front for a clearer message than "invalid path"; the grammar
    # would reject these too. Values end up in Dockerfiles and shell commands.
    # One regex pass instead of a per-character loop: parse runs once per list entry.
    bad = _OUTSIDE_VISIBLE_ASCII.search(text)
    if bad is not None:
        char = bad.group()
        if not char.isprintable() or char.isspace():
            raise InvalidReference(
                f"reference must not contain whitespace or control characters "
                f"(found {char!r} at position {bad.start()})"
            )
        raise InvalidReference("reference must contain only ASCII characters")
    if _IDENTIFIER_RE.fullmatch(text):
        # Upstream checks the whole input only: "<hex>:tag", "library/<hex>" and
        # "docker.io/<hex>" are all accepted, since none can be an image ID.
        raise InvalidReference(
            "name must not be a 64-character hex string (it looks like an image ID); "
            f"qualify it, e.g. {OFFICIAL_PREFIX}<hex>"
        )

    domain, remainder = _split_docker_domain(text)
    # Path and tag cannot contain '@' or ':', so the first '@' starts the digest
    # and the first ':' before it starts the tag, exactly as the upstream regex splits.
    name_and_tag, at, digest = remainder.partition("@")
    path, colon, tag = name_and_tag.partition(":")
    if not path:
        raise InvalidReference("repository name must not be empty")
    if at and not digest:
        raise InvalidReference("digest must not be empty after '@'")
    if colon and not tag:
        raise InvalidReference("tag must not be empty after ':'")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        # Official images live under library/ on Docker Hub, and only there.
        path = OFFICIAL_PREFIX + path
    # Decision: upstream, a first component that contains '.' but is not a valid
    # host (e.g. "foo_bar.com/x") silently parses with an empty domain. We reject
    # it instead (via the domain check in Reference), since every Reference has a
    # registry to pull from.
    return Reference(
        domain=domain,
        path=path,
        tag=tag if colon else None,
        digest=digest if at else None,
    )


def parse_repository(text: str) -> Reference:
    """Like parse(), for places that name a repository: a tag or digest is an error."""
    ref = parse(text)
    if ref.tag is not None or ref.digest is not None:
        found = []
        if ref.tag is not None:
            found.append(f"tag {ref.tag!r}")
        if ref.digest is not None:
            found.append(f"digest {ref.digest!r}")
        raise InvalidReference(
            f"source must not carry a tag or digest (found {' and '.join(found)})"
        )
    return ref
