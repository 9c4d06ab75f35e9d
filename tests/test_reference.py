"""Tests for relay.reference: docker/distribution's reference grammar and docker's normalization.

The expectations restate, in our own tables, behaviour documented by the upstream
distribution/reference tests (reference_test.go, normalize_test.go, regexp_test.go)
and go-digest, plus the places where we deliberately differ (noted inline).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay import reference
from relay.reference import (
    DIGEST_RE,
    TAG_RE,
    InvalidReference,
    Reference,
    is_valid_digest,
    is_valid_tag,
    parse,
    parse_repository,
)

HEX64 = "0123456789abcdef" * 4
SHA256 = "sha256:" + HEX64
SHA384 = "sha384:" + "c" * 96
SHA512 = "sha512:" + "f" * 128
ID64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"


# --------------------------------------------------------------------------- valid input
# (input, domain, path, tag, digest)
VALID = [
    # Docker Hub short names gain docker.io and, for a single component, library/.
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.25-alpine", "docker.io", "library/nginx", "1.25-alpine", None),
    ("bitnami/redis", "docker.io", "bitnami/redis", None, None),
    ("library/ubuntu", "docker.io", "library/ubuntu", None, None),
    ("library/foo/bar", "docker.io", "library/foo/bar", None, None),
    ("store/foo/bar", "docker.io", "store/foo/bar", None, None),
    ("other/library", "docker.io", "other/library", None, None),
    ("docker/migrator", "docker.io", "docker/migrator", None, None),
    ("test_com/foo", "docker.io", "test_com/foo", None, None),
    # Explicit docker.io is idempotent, and still gains library/ for one component.
    ("docker.io/foo", "docker.io", "library/foo", None, None),
    ("docker.io/library/foo", "docker.io", "library/foo", None, None),
    ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", None, None),
    ("docker.io/dmcgowan/myapp:latest", "docker.io", "dmcgowan/myapp", "latest", None),
    # The legacy index host is folded into docker.io.
    ("index.docker.io/foo", "docker.io", "library/foo", None, None),
    ("index.docker.io/library/debian", "docker.io", "library/debian", None, None),
    ("index.docker.io/fooo/bar", "docker.io", "fooo/bar", None, None),
    # Other registries: no library/ insertion.
    ("registry.k8s.io/pause:3.9", "registry.k8s.io", "pause", "3.9", None),
    ("ghcr.io/owner/image", "ghcr.io", "owner/image", None, None),
    ("quay.io/coreos/etcd:v3.5.0", "quay.io", "coreos/etcd", "v3.5.0", None),
    ("gcr.io/distroless/static", "gcr.io", "distroless/static", None, None),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", None, None),
    (
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "b.gcr.io",
        "test.example.com/my-app",
        "test.example.com",
        None,
    ),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None),
    ("0101.com/x", "0101.com", "x", None, None),
    # Upper case makes the first component a host; the path must stay lower case.
    ("Foo/bar", "Foo", "bar", None, None),
    ("FOO/bar", "FOO", "bar", None, None),
    ("Asdf.com/foo/bar", "Asdf.com", "foo/bar", None, None),
    ("Docker/docker", "Docker", "docker", None, None),
    ("DOCKER.IO/foo", "DOCKER.IO", "foo", None, None),  # only exact docker.io is Hub
    # Ports.
    ("test:5000/repo", "test:5000", "repo", None, None),
    ("test.com:8080/foo", "test.com:8080", "foo", None, None),
    ("test-com:8080/foo", "test-com:8080", "foo", None, None),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", None, None),
    ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000", "docker/docker", None, None),
    ("192.168.1.1/repo", "192.168.1.1", "repo", None, None),
    ("192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo", "5050", None),
    ("example.com:75050/x", "example.com:75050", "x", None, None),  # upstream: no range check
    # localhost is a host only when followed by a path.
    ("localhost/foo", "localhost", "foo", None, None),
    ("localhost:5000/foo/bar:v1", "localhost:5000", "foo/bar", "v1", None),
    ("localhost", "docker.io", "library/localhost", None, None),
    ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # upstream FIXME
    ("example.com", "docker.io", "library/example.com", None, None),
    ("test.com:tag", "docker.io", "library/test.com", "tag", None),
    ("192.168.0.1:80", "docker.io", "library/192.168.0.1", "80", None),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", None),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", None),
    # IPv6 hosts in brackets, with and without a port.
    ("[::1]/repo", "[::1]", "repo", None, None),
    ("[::1]:5000/repo", "[::1]:5000", "repo", None, None),
    ("[2001:db8::1]/repo", "[2001:db8::1]", "repo", None, None),
    ("[2001:db8::]:5000/repo", "[2001:db8::]:5000", "repo", None, None),
    ("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]", "repo", "tag", None),
    (
        "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
        "[fc00:1:2:3:4:5:6:7]:5000",
        "library/debian",
        None,
        None,
    ),
    ("[2001:db8::1]:5000/repo:tag@" + SHA256, "[2001:db8::1]:5000", "repo", "tag", SHA256),
    # Separators in path components.
    ("docker-rules/docker", "docker.io", "docker-rules/docker", None, None),
    ("docker---rules/docker", "docker.io", "docker---rules/docker", None, None),
    ("dock__er/docker", "docker.io", "dock__er/docker", None, None),
    (
        "registry.io/foo/project--id.module--name.ver---sion--name",
        "registry.io",
        "foo/project--id.module--name.ver---sion--name",
        None,
        None,
    ),
    ("d/docker", "docker.io", "d/docker", None, None),
    ("jess/t", "docker.io", "jess/t", None, None),
    # 64 characters that are not all hex, or 64 hex behind another component, are names.
    (
        "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        "docker.io",
        "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
        None,
        None,
    ),
    ("docker.io/" + ID64, "docker.io", "library/" + ID64, None, None),
    ("library/" + ID64, "docker.io", "library/" + ID64, None, None),
    (ID64 + "/app", "docker.io", ID64 + "/app", None, None),
    ("example.com/" + ID64, "example.com", ID64, None, None),
    (ID64[:63], "docker.io", "library/" + ID64[:63], None, None),
    # Upstream only rejects the whole input being 64 hex, so a tag makes it a name.
    (ID64 + ":latest", "docker.io", "library/" + ID64, "latest", None),
    # Tags: upper case and leading underscore are fine.
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", None),
    ("foo:_underscore", "docker.io", "library/foo", "_underscore", None),
    ("foo:" + "a" * 128, "docker.io", "library/foo", "a" * 128, None),
    # Digests, alone and with a tag (both are kept; no default tag is added).
    ("busybox@" + SHA256, "docker.io", "library/busybox", None, SHA256),
    ("busybox:latest@" + SHA256, "docker.io", "library/busybox", "latest", SHA256),
    ("test:5000/repo@" + SHA256, "test:5000", "repo", None, SHA256),
    (
        "xn--7o8h.com/myimage:xn--7o8h.com@" + SHA512,
        "xn--7o8h.com",
        "myimage",
        "xn--7o8h.com",
        SHA512,
    ),
    ("quay.io/a/b@" + SHA384, "quay.io", "a/b", None, SHA384),
]


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest"), VALID)
def test_parse_valid(
    text: str, domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.name == f"{domain}/{path}" == ref.repository


@pytest.mark.parametrize("text", [row[0] for row in VALID])
def test_str_and_familiar_round_trip(text: str) -> None:
    ref = parse(text)
    assert parse(str(ref)) == ref
    assert str(parse(str(ref))) == str(ref)
    assert parse(ref.familiar()) == ref


# ------------------------------------------------------------------------- invalid input
# (input, fragment of the error message)
INVALID = [
    ("", "must not be empty"),
    # Upper case in the path (not the host).
    ("Uppercase:tag", "must be lowercase"),
    ("docker/Docker", "must be lowercase"),
    ("docker.io/docker/Docker", "must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("Foo/FarB", "must be lowercase"),
    (ID64.upper(), "must be lowercase"),
    # Bare 64-hex is an image-ID lookalike.
    (ID64, "64-character hex"),
    # Path component grammar.
    ("-docker", "invalid repository path component '-docker'"),
    ("-docker/docker", "invalid repository path component"),
    ("docker-/docker", "invalid repository path component"),
    ("-docker-/docker", "invalid repository path component"),
    ("____/____", "invalid repository path component"),
    ("_docker/_docker", "invalid repository path component"),
    ("docker_/docker_", "invalid repository path component"),
    ("dock..er/docker", "invalid registry host"),  # the '.' makes it a host
    ("dock_.er/docker", "invalid registry host"),  # the '.' makes it a host
    ("dock-.er/docker", "invalid registry host"),  # the '.' makes it a host
    ("dock___er/docker", "invalid repository path component"),
    ("example.com/__underscore/myimage", "invalid repository path component"),
    ("example.com/.dots/myimage", "invalid repository path component"),
    ("foo.com/a-/a/a", "invalid repository path component"),
    ("docker///docker", "empty component"),
    ("docker.io/docker///docker", "empty component"),
    ("docker/", "empty component"),
    ("foo.com/", "empty"),
    ("/foo", "empty component"),
    (":justtag", "repository name must not be empty"),
    ("@" + SHA256, "repository name must not be empty"),
    ("docker.io/:tag", "repository name must not be empty"),
    ("ghcr.io/@" + SHA256, "repository name must not be empty"),
    ("aa/asdf$$^/aa", "invalid repository path component 'asdf$$^'"),
    ("https://github.com/docker/docker", "invalid registry host 'https:'"),
    # Hosts and ports.
    ("-docker.io/docker/docker", "invalid registry host"),
    ("foo.com:http/bar", "invalid registry host"),
    ("localhost:http/name", "invalid registry host"),
    ("test.com:/foo", "invalid registry host"),
    ("do__cker:8080/docker", "invalid registry host"),
    ("bad_hostname.com:8080/myapp:tag", "invalid registry host"),
    # Upstream would accept this with an *empty* domain; we refuse (see reference.py).
    ("foo_bar.com/x", "invalid registry host 'foo_bar.com'"),
    # IPv6: brackets required, no zone, no embedded IPv4, needs a path.
    ("fc00::1:5000/debian", "IPv6 address must be in brackets"),
    ("[fe80::1%eth0]:5000/repo", "IPv6 address must be in brackets"),
    ("[fe80::1%@invalidzone]:5000/repo", "invalid"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "IPv6"),
    ("[fd00:1:2::3]75050/x", "IPv6"),
    ("[fd00:1:2::3]::75050/x", "IPv6"),
    ("[::1", "invalid repository path component"),
    ("[2001:db8::1]", "invalid repository path component"),
    ("[2001:db8::1]:5000", "invalid repository path component"),
    ("[2001:db8::1]:tag", "invalid repository path component"),
    # Length limits: the path (after library/ insertion) is at most 255 characters.
    ("a/" * 128 + "a:tag", "255"),
    ("a" * 248, "must not be longer than 255"),
    ("example.com/" + "a" * 256, "must not be longer than 255"),
    # Tags.
    ("foo:", "tag must not be empty"),
    ("foo:.tag", "must start with a letter, digit or '_'"),
    ("foo:-tag", "must start with a letter, digit or '_'"),
    ("foo:" + "a" * 129, "longer than 128 characters"),
    ("registry.com:8080/myapp:invalid~tag", "only letters, digits"),
    ("foo:tag:more", "only letters, digits"),
    ("foo:t\u00e9", "ASCII"),
    # Digests.
    ("foo@", "digest must not be empty"),
    ("repo@sha256:" + "f" * 34, "exactly 64 lowercase hex"),
    ("repo@sha256:" + "f" * 65, "exactly 64 lowercase hex"),
    ("repo@sha256:" + HEX64.upper(), "exactly 64 lowercase hex"),
    ("repo@sha512:" + "f" * 64, "exactly 128 lowercase hex"),
    ("repo@sha256:" + "g" * 64, "exactly 64 lowercase hex"),
    ("validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm 'invaliddigest'"),
    ("repo@md5:" + "f" * 32, "unsupported digest algorithm 'md5'"),
    ("repo@SHA256:" + HEX64, "unsupported digest algorithm 'SHA256'"),
    ("repo@sha256+b64:" + "f" * 64, "unsupported digest algorithm"),
    ("registry.com:8080/myapp@sha256:badbadbadbad", "exactly 64"),
    ("registry.com:8080/myapp@bad", "invalid digest"),
    ("registry.com:8080/myapp@2bad", "invalid digest"),
    ("repo@" + HEX64, "invalid digest"),
    ("repo@" + SHA256 + "@" + SHA256, "exactly 64"),
    # Whitespace, control characters and shell metacharacters: never accepted.
    ("nginx\n", "whitespace or control"),
    ("nginx:latest\n", "whitespace or control"),
    ("nginx@" + SHA256 + "\n", "whitespace or control"),
    ("\nnginx", "whitespace or control"),
    ("ngi nx", "whitespace or control"),
    (" nginx", "whitespace or control"),
    ("nginx\t", "whitespace or control"),
    ("nginx\r", "whitespace or control"),
    ("nginx\x00", "whitespace or control"),
    ("nginx\x1b[0m", "whitespace or control"),
    ("nginx\u2028", "whitespace or control"),
    ("nginx\u00a0", "whitespace or control"),
    ("nginx\u3000", "whitespace or control"),
    ("ngin\u0445", "ASCII"),  # Cyrillic letter that looks like 'x'
    ("$IMAGE", "invalid repository path component '$IMAGE'"),
    ("nginx:$TAG", "only letters, digits"),
    ("nginx:${tag}", "only letters, digits"),
    ("nginx;rm", "invalid repository path component"),
    ("nginx`id`", "invalid repository path component"),
    ("nginx'", "invalid repository path component"),
    ('nginx"', "invalid repository path component"),
    ("nginx\\", "invalid repository path component"),
    ("--flag", "invalid repository path component '--flag'"),
    ("-", "invalid repository path component"),
    ("nginx:--flag", "must start with a letter, digit or '_'"),
]


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [None, 42, b"nginx", ["nginx"]])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidReference, match="must be a string"):
        parse(value)  # type: ignore[arg-type]


def test_error_messages_are_bounded_and_escaped() -> None:
    with pytest.raises(InvalidReference) as info:
        parse("foo:" + "~" * 10_000)
    assert len(str(info.value)) < 300
    with pytest.raises(InvalidReference) as info:
        parse("foo:ok\n")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- length limits
def test_path_length_boundary() -> None:
    # 127 * "a/" + "a" is 255 characters: the longest path allowed.
    longest = "a/" * 127 + "a"
    ref = parse(longest + ":tag-puts-this-over-max")
    assert (ref.path, len(ref.path), ref.tag) == (longest, 255, "tag-puts-this-over-max")
    # library/ counts toward the limit: 8 + 247 = 255.
    assert len(parse("a" * 247).path) == 255
    # The limit is on the path; the host does not count (distribution/reference v0.6.0).
    host = "registry." + "x" * 60 + ".example.com:5000"
    assert parse(f"{host}/{'b' * 255}").path == "b" * 255


# ------------------------------------------------------------------------------- familiar
@pytest.mark.parametrize(
    ("text", "familiar"),
    [
        ("busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox", "busybox"),
        ("index.docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base"),
        ("docker.io/bitnami/redis", "bitnami/redis"),
        ("docker.io/library/foo/bar", "library/foo/bar"),
        ("busybox:latest@" + SHA256, "busybox:latest@" + SHA256),
        ("dmcgowan/myapp@" + SHA256, "dmcgowan/myapp@" + SHA256),
        ("ghcr.io/owner/image:v1", "ghcr.io/owner/image:v1"),
        ("127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase"),
        ("Foo/bar", "Foo/bar"),
        # Deliberate difference from docker: shortening must not change the meaning.
        ("docker.io/localhost/x", "docker.io/localhost/x"),
        ("docker.io/foo.com/bar", "docker.io/foo.com/bar"),
        ("docker.io/library/" + ID64, "library/" + ID64),
    ],
)
def test_familiar(text: str, familiar: str) -> None:
    ref = parse(text)
    assert ref.familiar() == familiar
    assert parse(familiar) == ref


def test_str_is_fully_qualified() -> None:
    ref = parse("busybox:latest@" + SHA256)
    assert str(ref) == "docker.io/library/busybox:latest@" + SHA256
    assert str(parse("nginx")) == "docker.io/library/nginx"  # no default tag


# ------------------------------------------------------------------- tags and digests alone
@pytest.mark.parametrize(
    ("tag", "valid"),
    [
        ("latest", True),
        ("v1.2.3", True),
        ("1.25-alpine", True),
        ("_", True),
        ("A", True),
        ("UPPER_case.-mix", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("", False),
        (".hidden", False),
        ("-rc1", False),
        ("a/b", False),
        ("a:b", False),
        ("a@b", False),
        ("a+b", False),
        ("t\u00e9", False),  # \w is Unicode in Python; the grammar is ASCII
        ("\u0661", False),  # Arabic-Indic digit one
        ("latest\n", False),
        ("latest ", False),
        ("$TAG", False),
    ],
)
def test_tag_grammar(tag: str, valid: bool) -> None:
    assert is_valid_tag(tag) is valid
    assert (TAG_RE.match(tag) is not None) is valid  # anchored even via .match()
    assert (TAG_RE.search(tag) is not None) is valid
    if valid:
        assert parse("nginx").with_tag(tag).tag == tag
    else:
        with pytest.raises(InvalidReference):
            parse("nginx").with_tag(tag)


@pytest.mark.parametrize(
    ("digest", "valid"),
    [
        (SHA256, True),
        (SHA384, True),
        (SHA512, True),
        ("sha256:" + "f" * 63, False),
        ("sha256:" + "f" * 65, False),
        ("sha256:" + HEX64.upper(), False),
        ("sha512:" + "f" * 127, False),
        ("sha512:" + HEX64, False),
        ("md5:" + "f" * 32, False),
        ("SHA256:" + HEX64, False),
        ("sha256" + HEX64, False),
        (HEX64, False),
        ("sha256:", False),
        ("", False),
        (SHA256 + "\n", False),
        ("\n" + SHA256, False),
        (SHA256 + " ", False),
    ],
)
def test_digest_grammar(digest: str, valid: bool) -> None:
    assert is_valid_digest(digest) is valid
    assert (DIGEST_RE.match(digest) is not None) is valid
    assert (DIGEST_RE.search(digest) is not None) is valid
    if valid:
        assert parse("nginx").with_digest(digest).digest == digest
    else:
        with pytest.raises(InvalidReference):
            parse("nginx").with_digest(digest)


@pytest.mark.parametrize("value", [None, 1, b"latest", ["latest"]])
def test_validators_reject_non_strings(value: object) -> None:
    assert is_valid_tag(value) is False
    assert is_valid_digest(value) is False


# ------------------------------------------------------------------- the Reference value
def test_with_tag_and_digest_keep_the_other() -> None:
    ref = parse("example.com:8000/foo")
    tagged = ref.with_tag("TAG5")
    both = tagged.with_digest(SHA256)
    assert str(tagged) == "example.com:8000/foo:TAG5"
    assert str(both) == "example.com:8000/foo:TAG5@" + SHA256
    assert str(both.with_tag("v2")) == "example.com:8000/foo:v2@" + SHA256
    assert ref.tag is None  # the original is untouched
    assert parse(str(both)) == both


def test_reference_is_frozen_and_hashable() -> None:
    ref = parse("nginx:1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "2"  # type: ignore[misc]
    assert {ref, parse("docker.io/library/nginx:1")} == {ref}


def test_direct_construction_of_canonical_values() -> None:
    ref = Reference("docker.io", "library/nginx", "1.25", SHA256)
    assert ref == parse("nginx:1.25@" + SHA256)
    assert Reference("ghcr.io", "a/b") == parse("ghcr.io/a/b")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("index.docker.io", "library/x"), "use 'docker.io'"),
        (("docker.io", "nginx"), "needs a namespace"),
        (("myregistry", "foo"), "would be read as a Docker Hub namespace"),
        (("", "foo"), "invalid registry host"),
        (("ghcr.io", ""), "must not be empty"),
        (("ghcr.io", "Foo"), "must be lowercase"),
        (("ghcr.io\n", "foo"), "invalid registry host"),
        (("ghcr.io", "foo\n"), "invalid repository path component"),
        (("ghcr.io", "foo", "latest\n"), "only letters, digits"),
        (("ghcr.io", "foo", None, SHA256 + "\n"), "exactly 64"),
        (("ghcr.io", "foo", ""), "tag must not be empty"),
        (("ghcr.io", 5), "must be a string"),
        (("ghcr.io", "foo", 5), "must be a string or None"),
    ],
)
def test_direct_construction_is_validated(fields: tuple[object, ...], message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        Reference(*fields)  # type: ignore[arg-type]
    assert message in str(info.value)


# ---------------------------------------------------------------------- parse_repository
@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("registry.k8s.io/pause", "registry.k8s.io/pause"),
        ("[::1]:5000/foo", "[::1]:5000/foo"),
    ],
)
def test_parse_repository_accepts_bare_names(text: str, name: str) -> None:
    assert parse_repository(text).name == name


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("nginx:latest", "tag 'latest'"),
        ("nginx@" + SHA256, "digest"),
        ("nginx:1@" + SHA256, "tag '1' and digest"),
        ("localhost:5000", "tag '5000'"),  # a lone component: docker reads ':5000' as a tag
    ],
)
def test_parse_repository_rejects_tag_or_digest(text: str, found: str) -> None:
    with pytest.raises(InvalidReference, match="source must not carry a tag or digest") as info:
        parse_repository(text)
    assert found in str(info.value)


def test_parse_repository_still_validates() -> None:
    with pytest.raises(InvalidReference, match="lowercase"):
        parse_repository("Nginx")


# ------------------------------------------------------------------------- robustness
@pytest.mark.parametrize(
    "text",
    [
        "a" * 50_000 + "!",
        "a-" * 25_000,
        "a." * 25_000 + "/x",
        "a" + "-" * 50_000 + "/x",
        "a__" * 20_000,
        "[" + ":" * 50_000,
        "x/" * 25_000,
        "foo@" + "a-" * 25_000 + ":" + "f" * 40,
    ],
)
def test_pathological_input_fails_fast(text: str) -> None:
    # A catastrophic-backtracking regex would hang here rather than fail.
    with pytest.raises(InvalidReference):
        parse(text)


_UNSAFE = {chr(c) for c in range(0x20)} | {chr(0x7F), " ", "$", "`", "'", '"', "\\", ";"}

# Characters that make up references, to push hypothesis towards valid inputs too.
_REFERENCE_ALPHABET = st.sampled_from(
    list("abcxyz019AZ") + list("._-/:@[]") + ["sha256:", HEX64, "docker.io/", "library/", "\n"]
)


def _check_any_text(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference:
        return
    rendered = str(ref)
    assert not (_UNSAFE & set(rendered))
    assert rendered.isascii() and rendered.isprintable()
    assert not rendered.startswith("-")
    assert parse(rendered) == ref
    assert parse(ref.familiar()) == ref
    assert len(ref.path) <= reference.PATH_MAX_LENGTH


@settings(max_examples=500, deadline=None)
@given(st.text())
@example("nginx\n")
@example("docker.io/library/nginx:latest\n")
@example("a" * 64)
def test_arbitrary_text_either_fails_cleanly_or_round_trips(text: str) -> None:
    _check_any_text(text)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_REFERENCE_ALPHABET, max_size=12).map("".join))
def test_reference_like_text_either_fails_cleanly_or_round_trips(text: str) -> None:
    _check_any_text(text)


@settings(max_examples=300, deadline=None)
@given(
    host=st.from_regex(r"\A[a-z0-9]{1,10}\.[a-z]{2,5}(:[0-9]{1,5})?\Z"),
    path=st.from_regex(r"\A[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}(/[a-z0-9]{1,8}){0,3}\Z"),
    tag=st.none() | st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z"),
    digest=st.none() | st.just(SHA256) | st.just(SHA512),
)
def test_generated_valid_references_parse_to_their_parts(
    host: str, path: str, tag: str | None, digest: str | None
) -> None:
    text = f"{host}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (host, path, tag, digest)
    assert str(ref) == text
