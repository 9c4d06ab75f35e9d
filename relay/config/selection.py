"""Tag selection rules: a semver range, regex include/exclude and latest N.

Parsed and validated when the list is read; applied by `relay lock` to the tags upstream lists.
The range grammar is npm's, which regsync and skopeo's `images-by-semver` users already know:
comparators (`>=1.2.0 <2`), caret and tilde (`^1.2`, `~1.2.3`), x-ranges (`1.x`, `*`), hyphen
ranges (`1.2 - 1.4`) and `||` between alternatives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from relay import userregex
from relay.userregex import PatternError, UserPattern, compile_pattern

_NUM = r"0|[1-9]\d*"
_VERSION_RE = re.compile(
    rf"v?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)
_PARTIAL_RE = re.compile(
    r"v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*])(?:\.(?P<patch>\d+|[xX*])"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?)?)?(?:\+[0-9A-Za-z.-]+)?"
)
_COMPARATOR_RE = re.compile(r"(?P<op><=|>=|<|>|=|\^|~>?|)(?P<ver>[^<>=^~\s]\S*)")

MAX_REGEX_LENGTH = userregex.MAX_LENGTH
MAX_LATEST = 1000


class RuleError(ValueError):
    """A selection rule that cannot be parsed."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    # Pre-release identifiers; None for a release, which sorts after any pre-release.
    pre: tuple[int | str, ...] | None = None

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def key(self) -> tuple:
        # Releases outrank pre-releases of the same core; numeric identifiers sort below strings.
        pre = () if self.pre is None else self.pre
        ids = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre)
        return (self.core, self.pre is None, ids)


def parse_version(tag: str) -> Version | None:
    """The semantic version a tag spells (`v1.2.3`, `1.2.3-rc.1`), or None."""
    m = _VERSION_RE.fullmatch(tag)
    if not m:
        return None
    return Version(int(m["major"]), int(m["minor"]), int(m["patch"]), _pre(m["pre"]))


def _pre(text: str | None) -> tuple[int | str, ...] | None:
    if text is None:
        return None
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


@dataclass(frozen=True)
class Comparator:
    op: str  # one of < <= > >= =
    version: Version

    def test(self, v: Version) -> bool:
        a, b = v.key(), self.version.key()
        return {
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
            "=": a == b,
        }[self.op]


@dataclass(frozen=True)
class SemverRange:
    text: str
    # Alternatives (||) of conjunctions of comparators.
    alternatives: tuple[tuple[Comparator, ...], ...]

    def matches(self, v: Version) -> bool:
        for conj in self.alternatives:
            if all(c.test(v) for c in conj):
                # npm's rule: a pre-release matches only when a comparator in the same
                # alternative names a pre-release of the same major.minor.patch.
                if v.pre is None or any(
                    c.version.pre is not None and c.version.core == v.core for c in conj
                ):
                    return True
        return False


def parse_range(text: str) -> SemverRange:
    if not text.strip():
        raise RuleError("empty semver range")
    alternatives = []
    for alt in text.split("||"):
        alt = alt.strip()
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", alt)
        if hyphen:
            low = _partial(hyphen[1])
            high = _partial(hyphen[2])
            comps = _expand(">=", low) + _expand("<=", high)
        elif alt in ("", "*", "x", "X"):
            comps = [Comparator(">=", Version(0, 0, 0))]
        else:
            comps = []
            # Allow `>= 1.2` with a space, as npm does.
            for token in re.sub(r"(<=|>=|<|>|=|\^|~>?)\s+", r"\1", alt).split():
                m = _COMPARATOR_RE.fullmatch(token)
                if not m:
                    raise RuleError(f"'{token}' is not a comparator")
                comps += _expand(m["op"] or "=", _partial(m["ver"]))
        alternatives.append(tuple(comps))
    return SemverRange(text, tuple(alternatives))


_Partial = tuple[int | None, int | None, int | None, tuple[int | str, ...] | None]


def _partial(text: str) -> _Partial:
    m = _PARTIAL_RE.fullmatch(text)
    if not m:
        raise RuleError(f"'{text}' is not a version")
    parts: list[int | None] = []
    for name in ("major", "minor", "patch"):
        value = m[name]
        parts.append(None if value is None or value in "xX*" else int(value))
    # A wildcard swallows everything after it (1.x.3 means 1.x).
    for i, p in enumerate(parts):
        if p is None:
            parts[i + 1 :] = [None] * (2 - i)
            break
    return (parts[0], parts[1], parts[2], _pre(m["pre"]))


def _expand(op: str, p: _Partial) -> list[Comparator]:
    major, minor, patch, pre = p
    if op == "~>":
        op = "~"
    if major is None:
        return [] if op in ("=", ">=", "<=", "^", "~") else [Comparator("<", Version(0, 0, 0))]
    lo = Version(major, minor or 0, patch or 0, pre)
    if op == "=":
        if minor is None:
            return [Comparator(">=", lo), Comparator("<", Version(major + 1, 0, 0, (0,)))]
        if patch is None:
            return [Comparator(">=", lo), Comparator("<", Version(major, minor + 1, 0, (0,)))]
        return [Comparator("=", lo)]
    if op == "^":
        if major > 0 or minor is None:
            hi = Version(major + 1, 0, 0, (0,))
        elif minor > 0 or patch is None:
            hi = Version(0, minor + 1, 0, (0,))
        else:
            hi = Version(0, 0, (patch or 0) + 1, (0,))
        return [Comparator(">=", lo), Comparator("<", hi)]
    if op == "~":
        hi = Version(major + 1, 0, 0, (0,)) if minor is None else Version(major, minor + 1, 0, (0,))
        return [Comparator(">=", lo), Comparator("<", hi)]
    if op == ">":
        if minor is None:
            return [Comparator(">=", Version(major + 1, 0, 0, (0,)))]
        if patch is None:
            return [Comparator(">=", Version(major, minor + 1, 0, (0,)))]
        return [Comparator(">", lo)]
    if op == "<=":
        if minor is None:
            return [Comparator("<", Version(major + 1, 0, 0, (0,)))]
        if patch is None:
            return [Comparator("<", Version(major, minor + 1, 0, (0,)))]
        return [Comparator("<=", lo)]
    if op == "<":
        return [Comparator("<", Version(major, minor or 0, patch or 0, pre or (0,)))]
    return [Comparator(">=", lo)]  # ">="


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

    def select(self, tags: Iterable[str]) -> list[str]:
        """Apply the rules to upstream's tag list; the newest first when versions are known."""
        chosen = []
        for tag in tags:
            if self.include is not None and not self.include.search(tag):
                continue
            if self.exclude is not None and self.exclude.search(tag):
                continue
            if self.semver is not None:
                v = parse_version(tag)
                if v is None or not self.semver.matches(v):
                    continue
            chosen.append(tag)
        if self.latest is None:
            return sorted(chosen)
        # "Latest" needs an order, and only versions give one that means something.
        versioned = [(parse_version(t), t) for t in chosen]
        ordered = sorted(
            ((v, t) for v, t in versioned if v is not None),
            key=lambda vt: (vt[0].key(), vt[1]),
            reverse=True,
        )
        return sorted(t for _, t in ordered[: self.latest])
