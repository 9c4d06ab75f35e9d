"""`relay sync`: copy whole sets of images between registries from image-syncer's own files.

Teams that migrate registries with AliyunContainerService/image-syncer
(``image-syncer --auth auth.json --images images.json --proc 6 --retries 2``) can point relay at
the same two files. The formats and rules are image-syncer's (v1.5, README and pkg/client):

images file (JSON or YAML), ``source: destination`` or ``source: [destination, ...]``:

* ``registry/repo``                  every tag of the repository
* ``registry/repo:t1,t2``            those tags
* ``registry/repo@sha256:...``       that digest
* ``registry/repo:/regex/``          every tag the regular expression matches (searched, not
  anchored, like Go's ``MatchString``; one expression per rule)
* destination without tag or digest: the source tag (or digest) is kept; with tags
  ``dst:a,b``: as many as the source has, mapped left to right; with a digest: only the
  source's own digest. ``$VAR``/``${VAR}`` in destinations read the environment.
* names are normalised like ``docker pull`` (``nginx`` is ``docker.io/library/nginx``).

auth file (JSON or YAML): ``{"registry[/namespace]": {"username", "password", "insecure"}}``,
longest matching prefix wins, ``$VAR``/``${VAR}`` anywhere in username/password expanded the way
Go's ``os.ExpandEnv`` does (image-syncer's own code), ``insecure: true`` allows plain HTTP.

Every rule is expanded into (source, destination) pairs, listing tags upstream where needed;
the pairs are copied ``proc`` at a time with :func:`relay.copy.copy_image`, which skips an
unchanged image after one HEAD on each side. A failure does not stop the others; ``retries``
further passes go over whatever failed (rules whose tag listing failed included), as
image-syncer does. The result is a table per image on stdout and, in GitHub Actions, in the job
summary; :attr:`SyncReport.ok` says whether everything succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from relay import ghactions, yamlnodes
from relay.copy import CopyResult, copy_image
from relay.errors import InputError, Problem, RelayError
from relay.reference import InvalidReference, Reference, is_valid_tag, parse, parse_repository
from relay.registries import ClientPool
from relay.registry.credentials import CredentialChain, ImageSyncerAuth, default_credentials
from relay.registry.errors import redact
from relay.settings import RegistrySettings

log = logging.getLogger(__name__)

DEFAULT_PROC = 5  # image-syncer's --proc default
DEFAULT_RETRIES = 2  # image-syncer's --retries default
# Blobs moved at once within one image; --proc images run side by side on top of that.
BLOB_WORKERS = 4

COPIED = "copied"
UNCHANGED = "unchanged"
FAILED = "failed"
SKIPPED = "skipped"  # a tag listing or regex that selected nothing: reported, not a failure

# Rows in the GitHub job summary, which must stay under 1 MiB (the log has them all).
MAX_SUMMARY_ROWS = 1000

_AUTH_FIELDS = ("username", "password", "insecure", "identityToken")


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One ``source: destination`` pair of the images file (a list value gives several)."""

    source: str  # the key as written
    destination: str  # as written, after environment expansion
    line: int | None
    repository: Reference  # source repository, no tag or digest
    target: Reference  # destination repository, no tag or digest
    tags: tuple[str, ...] = ()  # explicit source tags
    digest: str | None = None
    pattern: str | None = None  # the /regex/ without its slashes
    target_tags: tuple[str, ...] = ()  # explicit destination tags, mapped left to right

    @property
    def needs_listing(self) -> bool:
        return not self.tags and self.digest is None


@dataclass(frozen=True)
class Pair:
    """One image to copy: a source tag or digest and where it goes."""

    source: Reference  # with a tag or a digest
    destination: Reference  # with a tag, or none: copied by the source digest

    @property
    def source_text(self) -> str:
        return str(self.source)

    @property
    def destination_text(self) -> str:
        if self.destination.tag:
            return f"{self.destination.name}:{self.destination.tag}"
        return f"{self.destination.name}@{self.source.digest}"


def parse_source(text: str) -> tuple[Reference, tuple[str, ...], str | None, str | None]:
    """(repository, tags, digest, pattern) of an images-file key; ValueError says what is wrong."""
    if not text.strip():
        raise ValueError("source must not be empty")
    if text.endswith("/") and ":/" in text:
        # A port is digits, so the first ":/" is where the tag regex starts.
        cut = text.index(":/")
        pattern = text[cut + 2 : -1]
        if not pattern:
            raise ValueError(f"empty tag regex in source {text!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid tag regex /{pattern}/: {exc}") from None
        return parse_repository(text[:cut]), (), None, pattern
    if "@" in text:
        ref = parse(text)
        if ref.tag is not None:
            # image-syncer pulls by the digest and drops the tag; so do we, but say so.
            log.warning("%s: the tag is ignored because the source has a digest", text)
        return Reference(ref.domain, ref.path), (), ref.digest, None
    name, tags = _split_tags(text)
    return parse_repository(name), tags, None, None


def parse_destination(text: str) -> tuple[Reference, tuple[str, ...], str | None]:
    """(repository, tags, digest) of a destination."""
    if not text.strip():
        raise ValueError("destination must not be empty")
    if "@" in text:
        ref = parse(text)
        return Reference(ref.domain, ref.path), ((ref.tag,) if ref.tag else ()), ref.digest
    name, tags = _split_tags(text)
    return parse_repository(name), tags, None


def _split_tags(text: str) -> tuple[str, tuple[str, ...]]:
    # Tags never contain '/' or ':', so a ':' after the last '/' starts the tag list.
    colon = text.find(":", text.rfind("/") + 1)
    if colon < 0:
        return text, ()
    tags = tuple(text[colon + 1 :].split(","))
    for tag in tags:
        if not is_valid_tag(tag):
            raise ValueError(f"invalid tag {tag!r} in {text!r}")
    return text[:colon], tags


def make_rule(source: str, destination: str, line: int | None) -> Rule:
    """A rule from one key and one destination, checked as far as the files alone allow."""
    repository, tags, digest, pattern = parse_source(source)
    target, target_tags, target_digest = parse_destination(destination)
    if target_digest is not None and target_digest != digest:
        raise ValueError(
            f"destination digest {target_digest} must be left off or equal the source's "
            f"digest ({digest or 'the source has none'})"
        )
    if target_tags and tags and len(target_tags) != len(tags):
        raise ValueError(
            f"destination has {len(target_tags)} tag(s) but the source has {len(tags)}; "
            "they are mapped left to right, so the counts must match"
        )
    if target_tags and digest is not None and len(target_tags) != 1:
        raise ValueError("a digest source can be given at most one destination tag")
    return Rule(
        source=source,
        destination=destination,
        line=line,
        repository=repository,
        target=target,
        tags=tags,
        digest=digest,
        pattern=pattern,
        target_tags=target_tags,
    )


def static_pairs(rule: Rule) -> list[Pair]:
    """The pairs of a rule that names its tags or digest (no listing needed)."""
    if rule.digest is not None:
        src = Reference(rule.repository.domain, rule.repository.path, digest=rule.digest)
        tag = rule.target_tags[0] if rule.target_tags else None
        return [Pair(src, Reference(rule.target.domain, rule.target.path, tag=tag))]
    return pair_tags(rule, list(rule.tags))


def pair_tags(rule: Rule, tags: Sequence[str]) -> list[Pair]:
    """Source tags to pairs: destination tags left to right, or the same tags."""
    if rule.target_tags and len(rule.target_tags) != len(tags):
        raise _Permanent(
            f"destination has {len(rule.target_tags)} tag(s) but the source selects "
            f"{len(tags)}: {', '.join(tags) or 'none'}"
        )
    targets = rule.target_tags or tuple(tags)
    return [
        Pair(rule.repository.with_tag(tag), rule.target.with_tag(target))
        for tag, target in zip(tags, targets, strict=True)
    ]


class _Permanent(Exception):
    """A failure that another pass cannot fix (the rule and upstream disagree)."""


# --------------------------------------------------------------------------------------------
# Reading the files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    key: str
    line: int | None
    value: object


def _read(path: str | os.PathLike[str]) -> str:
    try:
        # utf-8-sig: editors on Windows like to start JSON with a BOM.
        return Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(Problem(str(path), None, f"cannot read: {exc.strerror or exc}")) from None
    except UnicodeDecodeError:
        raise InputError(Problem(str(path), None, "not UTF-8 text")) from None


def _is_json(path: str | os.PathLike[str], text: str) -> bool:
    """image-syncer goes by the extension; files without a known one are sniffed."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return True
    if suffix in (".yaml", ".yml"):
        return False
    return text.lstrip().startswith("{")


def _entries(path: str | os.PathLike[str], text: str, problems: list[Problem]) -> list[_Entry]:
    """The top-level ``key: value`` pairs with their lines, duplicates reported."""
    if _is_json(path, text):
        return _json_entries(str(path), text, problems)
    return _yaml_entries(str(path), text, problems)


_WS = re.compile(r"[ \t\n\r]*")


def _json_entries(path: str, text: str, problems: list[Problem]) -> list[_Entry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(Problem(path, exc.lineno, f"invalid JSON: {exc.msg}")) from None
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise InputError(Problem(path, 1, "the top level must be an object"))
    # json.loads keeps the last of duplicate keys and no positions; walk the (now known-valid)
    # top-level object once more to get each key's line and see every duplicate.
    decoder = json.JSONDecoder()
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    i = _WS.match(text, 0).end() + 1  # past "{"
    i = _WS.match(text, i).end()
    while text[i] == '"':
        line = text.count("\n", 0, i) + 1
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = _WS.match(text, i).end() + 1  # past ":"
        value, i = decoder.raw_decode(text, _WS.match(text, i).end())
        if key in seen:
            problems.append(
                Problem(path, line, f"duplicate key {key!r} (first at line {seen[key]})")
            )
        else:
            seen[key] = line
            entries.append(_Entry(key, line, value))
        i = _WS.match(text, i).end()
        if text[i] == ",":
            i = _WS.match(text, i + 1).end()
    return entries


def _yaml_entries(path: str, text: str, problems: list[Problem]) -> list[_Entry]:
    root = yamlnodes.compose(text, path)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag.endswith(":null")):
        return []
    doc = yamlnodes.Doc(path)
    if not isinstance(root, yaml.MappingNode):
        raise InputError(
            doc.problem(root, f"the top level must be a mapping, not {yamlnodes.kind(root)}")
        )
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = yamlnodes.line_of(key_node)
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(Problem(path, line, "keys must be plain strings"))
            continue
        key = key_node.value
        if key in seen:
            problems.append(
                Problem(path, line, f"duplicate key {key!r} (first at line {seen[key]})")
            )
            continue
        seen[key] = line
        entries.append(_Entry(key, line, _yaml_value(doc, value_node, problems)))
    return entries


def _yaml_value(doc: yamlnodes.Doc, node: yaml.Node, problems: list[Problem]) -> object:
    """Plain data from a node; scalars keep their source text (a password 0123 stays "0123")."""
    if isinstance(node, yaml.SequenceNode):
        return [_yaml_value(doc, item, problems) for item in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in out:
                problems.append(doc.problem(key_node, f"duplicate key {key!r}"))
            out[key] = _yaml_value(doc, value_node, problems)
        return out
    if node.tag.endswith(":null"):
        return None
    if node.tag.endswith(":bool"):
        return node.value.lower() in ("true", "yes", "on", "y")
    return node.value


def _go_expand(text: str, lookup: Callable[[str], str]) -> str:
    """Go's os.Expand: ``$NAME``, ``${NAME}`` and the shell's one-character specials, anywhere.

    Reproduced exactly (including "${}" being dropped and a lone trailing "$" kept) because
    image-syncer runs os.ExpandEnv over passwords and destinations, so a file that works there
    depends on precisely this.
    """
    out: list[str] = []
    start = 0
    j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[start:j])
            name, width = _shell_name(text[j + 1 :])
            if name == "" and width > 0:
                pass  # bad syntax such as "${}": Go eats it
            elif name == "":
                out.append("$")  # "$" not followed by a name stays
            else:
                out.append(lookup(name))
            j += width
            start = j + 1
        j += 1
    out.append(text[start:])
    return "".join(out)


_SPECIAL = frozenset("*#$@!?-0123456789")


def _shell_name(rest: str) -> tuple[str, int]:
    if rest[0] == "{":
        if len(rest) > 2 and rest[1] in _SPECIAL and rest[2] == "}":
            return rest[1], 3
        end = rest.find("}", 1)
        if end == 1:
            return "", 2
        if end < 0:
            return "", 1
        return rest[1:end], end + 1
    if rest[0] in _SPECIAL:
        return rest[0], 1
    n = 0
    while n < len(rest) and (rest[n] == "_" or rest[n].isascii() and rest[n].isalnum()):
        n += 1
    return rest[:n], n


def load_rules(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> list[Rule]:
    """Read an image-syncer images file. Every problem is reported at once, with its line."""
    env = environ if environ is not None else os.environ
    name = str(path)
    text = _read(path)
    problems: list[Problem] = []
    entries = _entries(path, text, problems)
    if (
        entries
        and {e.key for e in entries} <= {"auth", "images"}
        and all(isinstance(e.value, dict) for e in entries)
    ):
        raise InputError(
            Problem(
                name,
                entries[0].line,
                "this is an image-syncer --config file (auth and images together); give relay "
                "its 'images' part as --images and its 'auth' part as --auth",
            )
        )
    rules: list[Rule] = []
    for entry in entries:
        where = f"source {entry.key!r}"
        value = entry.value
        if isinstance(value, str):
            destinations = [value]
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            destinations = list(value)
        elif value is None or value == []:
            problems.append(Problem(name, entry.line, f"{where}: empty destination"))
            continue
        else:
            problems.append(
                Problem(
                    name, entry.line, f"{where}: destination must be a string or a list of strings"
                )
            )
            continue
        for raw in destinations:
            missing: list[str] = []

            def lookup(var: str, missing: list[str] = missing) -> str:
                if var not in env:
                    missing.append(var)
                    return ""
                return env[var]

            destination = _go_expand(raw, lookup)
            if missing:
                # image-syncer would substitute "" and push somewhere unintended; refuse.
                problems.append(
                    Problem(
                        name,
                        entry.line,
                        f"{where}: destination {raw!r} uses unset environment variable(s) "
                        + ", ".join(sorted(set(missing))),
                    )
                )
                continue
            try:
                rules.append(make_rule(entry.key, destination, entry.line))
            except (InvalidReference, ValueError) as exc:
                problems.append(Problem(name, entry.line, f"{where} -> {destination!r}: {exc}"))
    if problems:
        raise InputError(_by_line(problems))
    if not rules:
        log.warning("%s has no rules; nothing to sync", name)
    return _unique(rules)


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def _unique(rules: list[Rule]) -> list[Rule]:
    """A destination listed twice for one source (a YAML list, say) is one rule."""
    seen: set[tuple[str, str]] = set()
    out = []
    for rule in rules:
        key = (rule.source, rule.destination)
        if key not in seen:
            seen.add(key)
            out.append(rule)
    return out


@dataclass
class AuthFile:
    """The auth file as a credential provider, plus the secrets it holds (for redaction)."""

    provider: ImageSyncerAuth
    secrets: list[str] = field(default_factory=list, repr=False)


def load_auth(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> AuthFile:
    """Read an image-syncer auth file. Values are never echoed, in errors or in logs."""
    env = environ if environ is not None else os.environ
    name = str(path)
    text = _read(path)
    problems: list[Problem] = []
    data: dict[str, dict[str, object]] = {}
    secrets: list[str] = []
    for entry in _entries(path, text, problems):
        where = f"entry {entry.key!r}"
        if not entry.key.strip():
            problems.append(Problem(name, entry.line, "registry key must not be empty"))
            continue
        if not isinstance(entry.value, dict):
            problems.append(Problem(name, entry.line, f"{where} must be a mapping"))
            continue
        fields: dict[str, object] = {}
        for key, value in entry.value.items():
            if key not in _AUTH_FIELDS:
                # Go's decoders ignore unknown fields; a warning is kinder than silence.
                log.warning("%s:%s: %s: unknown field %r ignored", name, entry.line, where, key)
                continue
            if key == "identityToken":
                log.warning(
                    "%s:%s: %s: identityToken is not supported; ignored", name, entry.line, where
                )
                continue
            if key == "insecure":
                if not isinstance(value, bool):
                    problems.append(
                        Problem(name, entry.line, f"{where}: insecure must be true or false")
                    )
                    continue
                fields[key] = value
                continue
            if value is None:
                continue
            if not isinstance(value, str):
                problems.append(Problem(name, entry.line, f"{where}: {key} must be a string"))
                continue

            def lookup(
                var: str, key: str = key, line: int | None = entry.line, where: str = where
            ) -> str:
                if var not in env:
                    log.warning(
                        "%s:%s: %s: %s uses unset environment variable %s",
                        name,
                        line,
                        where,
                        key,
                        var,
                    )
                    return ""
                return env[var]

            expanded = _go_expand(value, lookup)
            fields[key] = expanded
            if key == "password" and expanded:
                secrets.append(expanded)
        data[entry.key] = fields
    if problems:
        raise InputError(_by_line(problems))
    provider = ImageSyncerAuth(data, source=name, environ=_verbatim_environ(data))
    return AuthFile(provider, secrets)


# The whole-value "$NAME" / "${NAME}" form ImageSyncerAuth expands by itself.
_ENV_REF = re.compile(r"^\$(?:\{(\w+)\}|(\w+))$")


def _verbatim_environ(data: Mapping[str, Mapping[str, object]]) -> dict[str, str]:
    """An environment under which ImageSyncerAuth leaves the values as they are.

    They were expanded already (Go-style, anywhere in the string); a value that still reads
    "$NAME" after that (a password starting with '$', say) must not be looked up again, so NAME
    maps back to that very value.
    """
    env: dict[str, str] = {}
    for fields in data.values():
        for value in fields.values():
            if isinstance(value, str) and (match := _ENV_REF.match(value.strip())):
                env[match.group(1) or match.group(2)] = value
    return env


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class ImageResult:
    """One row of the report."""

    source: str
    destination: str
    result: str  # COPIED, UNCHANGED, FAILED or SKIPPED
    digest: str = ""
    bytes: int = 0
    attempts: int = 0
    error: str = ""
    line: int | None = None


@dataclass
class SyncReport:
    """Every image's outcome, in the order of the images file; `ok` decides the exit code."""

    results: list[ImageResult] = field(default_factory=list)
    requests: int = 0
    passes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.result == FAILED]

    def count(self, result: str) -> int:
        return sum(1 for r in self.results if r.result == result)

    def summary_line(self) -> str:
        parts = [f"{self.count(COPIED)} copied", f"{self.count(UNCHANGED)} unchanged"]
        parts.append(f"{self.count(FAILED)} failed")
        if self.count(SKIPPED):
            parts.append(f"{self.count(SKIPPED)} skipped")
        moved = _human(sum(r.bytes for r in self.results))
        return (
            f"{len(self.results)} images: {', '.join(parts)}; {moved} of blobs sent "
            f"in {self.passes} pass(es), {self.requests} registry requests"
        )

    def table(self) -> str:
        header = ("SOURCE", "DESTINATION", "RESULT", "DIGEST", "BYTES", "ATTEMPTS", "ERROR")
        rows = [header] + [_cells(r) for r in self.results]
        # The error column is last and unpadded: it is the long one.
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [
            "  ".join(
                [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
                + [row[-1]]
            ).rstrip()
            for row in rows
        ]
        return "\n".join(lines + ["", self.summary_line()])

    def markdown(self) -> str:
        lines = [
            "### relay sync",
            "",
            self.summary_line(),
            "",
            "| Source | Destination | Result | Digest | Bytes | Attempts | Error |",
            "|---|---|---|---|---|---:|---|",
        ]
        shown = self.results
        if len(shown) > MAX_SUMMARY_ROWS:
            # GitHub refuses a job summary over 1 MiB; failures matter most, so they stay.
            room = max(0, MAX_SUMMARY_ROWS - len(self.failed))
            ok_rows = [r for r in shown if r.result != FAILED]
            keep = {id(r) for r in ok_rows[:room]}
            shown = [r for r in shown if r.result == FAILED or id(r) in keep]
        for r in shown:
            cells = list(_cells(r))
            cells[3] = f"`{cells[3]}`" if cells[3] else ""
            cells[2] = f"**{cells[2]}**" if r.result == FAILED else cells[2]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        if len(shown) < len(self.results):
            lines += [
                "",
                f"_{len(self.results) - len(shown)} successful rows left out; "
                "the job log has the whole table._",
            ]
        return "\n".join(lines)


def _cells(r: ImageResult) -> tuple[str, ...]:
    return (
        r.source,
        r.destination,
        r.result,
        r.digest,
        _human(r.bytes) if r.result == COPIED else "",
        str(r.attempts),
        r.error,
    )


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{size:.1f} {unit}"


@dataclass
class _Job:
    pair: Pair
    rule: Rule
    attempts: int = 0
    result: CopyResult | None = None
    error: str = ""
    final: bool = False  # failed in a way another pass cannot fix
    twin: bool = False  # the same copy as an earlier rule's: done there, reported there

    @property
    def done(self) -> bool:
        return self.result is not None or self.final or self.twin


@dataclass
class _Expansion:
    rule: Rule
    attempts: int = 0
    error: str = ""
    final: bool = False
    jobs: list[_Job] | None = None  # set once expanded
    listed: int = 0  # tags listed upstream, for the "nothing matched" message

    @property
    def done(self) -> bool:
        return self.jobs is not None or self.final


def run(
    images: str | os.PathLike[str],
    auth: str | os.PathLike[str] | None = None,
    *,
    proc: int = DEFAULT_PROC,
    retries: int = DEFAULT_RETRIES,
    settings: RegistrySettings | None = None,
    repo: Path | None = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> SyncReport:
    """Sync everything ``images`` asks for; print the table; return the report.

    ``settings``/``repo`` configure TLS as for every other command (CA bundles, insecure
    registries); credentials come from ``auth`` first, then relay's usual sources. Bad files
    raise InputError before any request; registry failures end up in the report, never raised.
    """
    if proc < 1:
        raise InputError("--proc must be at least 1")
    if retries < 0:
        raise InputError("--retries must not be negative")
    env = environ if environ is not None else os.environ
    rules = load_rules(images, env)
    auth_file = load_auth(auth, env) if auth is not None else None
    secrets = auth_file.secrets if auth_file else []
    fallback = default_credentials(env)
    providers = ([auth_file.provider] if auth_file else []) + fallback.providers
    credentials = CredentialChain(providers)

    report = SyncReport()
    with ClientPool(
        settings,
        repo=repo,
        credentials=credentials,
        environ=env,
        pool_size=max(32, proc * BLOB_WORKERS),
    ) as pool:
        expansions = _execute(pool, rules, proc, retries, secrets, report)
        report.requests = pool.stats.total_requests
    report.results = _rows(expansions)
    stream = out or sys.stdout
    print(report.table(), file=stream)
    ghactions.summary(report.markdown())
    return report


def _execute(
    pool: ClientPool,
    rules: list[Rule],
    proc: int,
    retries: int,
    secrets: list[str],
    report: SyncReport,
) -> list[_Expansion]:
    expansions = [_Expansion(rule) for rule in rules]
    owners: dict[str, _Job] = {}  # destination -> the job writing it
    for number in range(1, retries + 2):
        expand = [e for e in expansions if not e.done]
        copy = [j for e in expansions for j in (e.jobs or []) if not j.done]
        if not expand and not copy:
            break
        if number > 1:
            log.info(
                "pass %d of %d: retrying %d image(s) and %d rule(s) that failed",
                number,
                retries + 1,
                len(copy),
                len(expand),
            )
        report.passes = number
        with ThreadPoolExecutor(max_workers=proc) as executor:
            # Tag listings first, so new pairs join this pass's copies.
            list(executor.map(lambda e: _expand(pool, e, secrets), expand))
            for expansion in expand:
                for job in expansion.jobs or []:
                    _claim(job, owners)
            copy = [j for e in expansions for j in (e.jobs or []) if not j.done]
            list(executor.map(lambda j: _copy(pool, j, secrets), copy))
    return expansions


def _claim(job: _Job, owners: dict[str, _Job]) -> None:
    """Two sources written to one destination would race, and the last would win: refuse."""
    key = job.pair.destination_text
    other = owners.get(key)
    if other is None:
        owners[key] = job
        return
    if other.pair.source == job.pair.source:
        job.twin = True  # e.g. "repo" and "repo:1" both to the same place: copy once
        return
    message = (
        f"{key} is also the destination of {other.pair.source_text}"
        f"{f' (line {other.rule.line})' if other.rule.line else ''}"
    )
    job.error, job.final = message, True
    if other.attempts == 0 and not other.final:
        other.error = (
            f"{key} is also the destination of {job.pair.source_text}"
            f"{f' (line {job.rule.line})' if job.rule.line else ''}"
        )
        other.final = True


def _expand(pool: ClientPool, expansion: _Expansion, secrets: list[str]) -> None:
    rule = expansion.rule
    expansion.attempts += 1
    try:
        if rule.needs_listing:
            listed = pool.get(rule.repository.domain).list_tags(rule.repository.path)
            expansion.listed = len(listed)
            tags = [t for t in listed if _selected(rule, t)]
            pairs = pair_tags(rule, tags)
        else:
            pairs = static_pairs(rule)
    except _Permanent as exc:
        expansion.error, expansion.final = str(exc), True
        log.warning("%s -> %s: %s", rule.source, rule.destination, exc)
        return
    except Exception as exc:  # noqa: BLE001 - one rule's failure must not stop the others
        expansion.error = _describe(exc, secrets)
        log.warning(
            "%s: listing tags failed (attempt %d): %s",
            rule.source,
            expansion.attempts,
            expansion.error,
        )
        log.debug("traceback", exc_info=True)
        return
    expansion.error = ""
    expansion.jobs = [_Job(pair, rule) for pair in pairs]


def _selected(rule: Rule, tag: str) -> bool:
    if not is_valid_tag(tag):
        log.warning("%s: skipping tag %r, which is not a valid tag", rule.repository, tag)
        return False
    # Searched, not anchored: image-syncer matches with Go's MatchString.
    return rule.pattern is None or re.search(rule.pattern, tag) is not None


def _copy(pool: ClientPool, job: _Job, secrets: list[str]) -> None:
    pair = job.pair
    job.attempts += 1
    try:
        result = copy_image(pool, pair.source, pair.destination, workers=BLOB_WORKERS)
    except Exception as exc:  # noqa: BLE001 - one image's failure must not stop the others
        job.error = _describe(exc, secrets)
        log.warning(
            "%s -> %s: failed (attempt %d): %s",
            pair.source_text,
            pair.destination_text,
            job.attempts,
            job.error,
        )
        log.debug("traceback", exc_info=True)
        return
    job.result, job.error = result, ""
    if result.unchanged:
        log.info("%s: unchanged (%s)", pair.destination_text, result.digest)
    else:
        log.info(
            "%s: copied from %s (%s, %s)",
            pair.destination_text,
            pair.source_text,
            result.digest,
            _human(result.bytes_copied),
        )


def _describe(exc: BaseException, secrets: list[str]) -> str:
    # Registry errors are redacted by the client already; this also covers anything else.
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, RelayError):
        text = f"{type(exc).__name__}: {text}"
    return redact(" ".join(text.split()), secrets)


def _rows(expansions: list[_Expansion]) -> list[ImageResult]:
    rows: list[ImageResult] = []
    for expansion in expansions:
        rule = expansion.rule
        if expansion.jobs is None:
            rows.append(
                ImageResult(
                    rule.source,
                    rule.destination,
                    FAILED,
                    attempts=expansion.attempts,
                    error=expansion.error,
                    line=rule.line,
                )
            )
            continue
        if not expansion.jobs:
            what = f"no tag matches /{rule.pattern}/" if rule.pattern else "no tags"
            rows.append(
                ImageResult(
                    rule.source,
                    rule.destination,
                    SKIPPED,
                    attempts=expansion.attempts,
                    error=f"{what} ({expansion.listed} listed)",
                    line=rule.line,
                )
            )
            continue
        for job in expansion.jobs:
            if job.twin:
                continue
            row = ImageResult(
                job.pair.source_text,
                job.pair.destination_text,
                FAILED,
                attempts=job.attempts,
                error=job.error,
                line=rule.line,
            )
            if job.result is not None:
                row.result = UNCHANGED if job.result.unchanged else COPIED
                row.digest = job.result.digest
                row.bytes = job.result.bytes_copied
                row.error = ""
            rows.append(row)
    return rows
