"""image-syncer's rules: `source: destination` keys expanded into image pairs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from relay.reference import Reference, is_valid_tag, parse, parse_repository
from relay.userregex import PatternError, compile_pattern

log = logging.getLogger(__name__)


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
    pattern: str | None = None  # the /regex/ without its slashes (RE2: relay.userregex)
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
            compile_pattern(pattern)  # RE2, as image-syncer's Go regexp
        except PatternError as exc:
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
        raise PermanentFailure(
            f"destination has {len(rule.target_tags)} tag(s) but the source selects "
            f"{len(tags)}: {', '.join(tags) or 'none'}"
        )
    targets = rule.target_tags or tuple(tags)
    return [
        Pair(rule.repository.with_tag(tag), rule.target.with_tag(target))
        for tag, target in zip(tags, targets, strict=True)
    ]


class PermanentFailure(Exception):
    """A failure that another pass cannot fix (the rule and upstream disagree)."""
