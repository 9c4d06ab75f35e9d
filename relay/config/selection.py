"""Tag selection rules: a semver range, regex include/exclude, latest N, or every tag.

Parsed and validated when the list is read; applied by `relay lock` to the tags upstream lists.
The range grammar is npm's, which regsync and skopeo's `images-by-semver` users already know:
comparators (`>=1.2.0 <2`), caret and tilde (`^1.2`, `~1.2.3`), x-ranges (`1.x`, `*`), hyphen
ranges (`1.2 - 1.4`) and `||` between alternatives. The ranges themselves are
`semantic_version.NpmSpec` (a well-kept implementation of npm's node-semver rules, pre-release
handling included); this module adapts the spellings people write in lists (`>= 1.2`, `~> 1.2`,
`^v1.2`) and decides which tags are versions.

Which tags are versions: `x.y.z`, and also `x` and `x.y` as skopeo's images-by-semver and the
Masterminds semver library read them (`1.27` ≡ `1.27.0`, `v1` ≡ `1.0.0`), with an optional `v`,
pre-release (`-rc.1`, `-alpine`) and build (`+b1`). Docker Official Images tag `1.27`, `16.4`,
`7.2`; without this they never matched. A pre-release (and so a variant such as `1.27-alpine`)
matches a range only when the range names a pre-release of the same version (npm's rule), and
`latest` without a range takes none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

import semantic_version

from relay import userregex
from relay.userregex import PatternError, UserPattern, compile_pattern

_NUM = r"0|[1-9]\d*"
_ID = r"[0-9A-Za-z-]+"
_VERSION_RE = re.compile(
    rf"v?(?P<major>{_NUM})(?:\.(?P<minor>{_NUM})(?:\.(?P<patch>{_NUM}))?)?"
    rf"(?:-(?P<pre>{_ID}(?:\.{_ID})*))?(?:\+(?P<build>{_ID}(?:\.{_ID})*))?"
)
# Numeric pre-release identifiers must not have leading zeros (semver 2.0.0 §9).
_BAD_NUMERIC_ID = re.compile(r"0\d+")

MAX_REGEX_LENGTH = userregex.MAX_LENGTH
MAX_LATEST = 1000

Version: TypeAlias = semantic_version.Version


class RuleError(ValueError):
    """A selection rule that cannot be parsed."""


def parse_version(tag: str) -> Version | None:
    """The semantic version a tag spells (`v1.2.3`, `1.27`, `v1`, `1.2.3-rc.1`), or None."""
    m = _VERSION_RE.fullmatch(tag)
    if not m:
        return None
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    if any(_BAD_NUMERIC_ID.fullmatch(p) for p in pre):
        return None
    build = tuple(m["build"].split(".")) if m["build"] else ()
    return Version(
        major=int(m["major"]),
        minor=int(m["minor"] or 0),
        patch=int(m["patch"] or 0),
        prerelease=pre,
        build=build,
    )


def order_key(version: Version, tag: str) -> tuple[Version, int, str]:
    """Newest-last order: by version, then the longer spelling (`1.27.0` after `1.27`), then the
    tag, so equal versions still sort the same way every run."""
    return (version.truncate("prerelease"), len(tag), tag)


# Spellings people write that NpmSpec does not take: a space after the operator, Ruby's `~>`,
# a `v` before the version.
_OPERATOR_SPACE = re.compile(r"(<=|>=|<|>|=|\^|~>?)\s+")
_V_PREFIX = re.compile(r"(^|[\s<>=^~|])v(?=\d)")


@dataclass(frozen=True)
class SemverRange:
    text: str
    spec: semantic_version.NpmSpec

    def matches(self, v: Version) -> bool:
        return v in self.spec


def parse_range(text: str) -> SemverRange:
    if not text.strip():
        raise RuleError("empty semver range")
    npm = _OPERATOR_SPACE.sub(r"\1", text.strip()).replace("~>", "~")
    npm = _V_PREFIX.sub(r"\1", npm)
    try:
        spec = semantic_version.NpmSpec(npm)
    except ValueError:
        raise RuleError(
            f"'{text}' is not a version range (npm syntax: '>=1.27 <2', '~1.2')"
        ) from None
    return SemverRange(text, spec)


def compile_regex(text: str) -> UserPattern:
    """A user's include/exclude pattern, compiled with RE2 (relay.userregex says why)."""
    try:
        return compile_pattern(text)
    except PatternError as exc:
        raise RuleError(str(exc)) from None


@dataclass(frozen=True)
class Selection:
    """Which upstream tags an entry wants, besides its explicit ones."""

    semver: SemverRange | None = None
    include: UserPattern | None = None
    exclude: UserPattern | None = None
    latest: int | None = None
    all: bool = False  # every tag (exclude may still narrow it)

    def __post_init__(self) -> None:
        # exclude alone would take every other tag: that is `all`'s explicit opt-in.
        if self.exclude is not None and not (
            self.all or self.semver or self.include or self.latest is not None
        ):
            raise RuleError("exclude narrows all, semver, include or latest; it cannot stand alone")

    def select(self, tags: Iterable[str]) -> list[str]:
        """Apply the rules to upstream's tag list; sorted by tag."""
        chosen = [t for t in tags if self.skipped(t) is None]
        if self.latest is None:
            return sorted(chosen)
        # "Latest" needs an order, and only versions give one that means something.
        versioned = [(v, t) for t in chosen if (v := parse_version(t)) is not None]
        versioned.sort(key=lambda vt: order_key(*vt), reverse=True)
        return sorted(t for _, t in versioned[: self.latest])

    def skipped(self, tag: str) -> str | None:
        """Why the rules (before `latest`) skip ``tag``, or None when they take it."""
        if self.include is not None and not self.include.search(tag):
            return f"does not match include /{self.include.pattern}/"
        if self.exclude is not None and self.exclude.search(tag):
            return f"matches exclude /{self.exclude.pattern}/"
        if self.semver is not None or self.latest is not None:
            v = parse_version(tag)
            if v is None:
                return "not a version"
            if self.semver is not None and not self.semver.matches(v):
                if v.prerelease and v.truncate() in self.semver.spec:
                    return f"a pre-release, and '{self.semver.text}' names none"
                return f"outside '{self.semver.text}'"
            if self.semver is None and v.prerelease:
                # As for a range (npm's rule): `latest: 1` over v1.30.2 and v1.31.0-rc.1 means
                # the newest release, not the rc, nor 1.27.3-perl over 1.27.3.
                return "a pre-release or variant; latest takes one only with a semver naming it"
        return None

    def explain(self, tags: list[str], limit: int = 8) -> list[str]:
        """The tags nearest to what the rules ask for, each with why it was skipped: the newest
        versions first, then other tags; at most ``limit``."""
        versions = [(v, t) for t in tags if (v := parse_version(t)) is not None]
        versions.sort(key=lambda vt: order_key(*vt), reverse=True)
        others = sorted(t for t in tags if parse_version(t) is None)
        nearest = [t for _, t in versions[: limit - min(2, len(others))]]
        nearest += others[: limit - len(nearest)]
        return [f"{t} ({self.skipped(t) or 'taken'})" for t in nearest]
