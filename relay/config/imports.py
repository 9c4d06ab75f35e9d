"""Reading the image lists people already keep, for `relay import FORMAT FILE`.

Formats, each read as it is found in real repositories:

* ``images-txt``: docker_image_pusher's `images.txt` (tech-shrimp/docker_image_pusher): one
  ``image[:tag][@digest]`` a line, optionally after ``--platform=os/arch`` (or
  ``--platform os/arch``), ``#`` comments, blank lines. The same image at several platforms
  becomes one entry with a platform list.
* ``image-syncer``: image-syncer's images file, JSON or YAML, read by relay.sync.files (the one
  reader of that format). Destinations are dropped: the list's target is ACR and Harbor.
* ``refs``: one reference a line, as `kubeadm config images list` prints, or as
  ``helm template … | grep image:`` does (``image: "docker.io/x:1"``, list dashes, quotes).

Every format tolerates Windows line endings and a byte-order mark. A line that is not a
reference is an error naming file and line (nothing is written); what is valid but cannot be
said in the list (a digest without a tag, a renamed destination tag) is a note.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from relay import platforms as platform_rules
from relay import reference
from relay.errors import InputError, Problem

Format = Literal["images-txt", "image-syncer", "refs"]
FORMATS: tuple[Format, ...] = ("images-txt", "image-syncer", "refs")


@dataclass
class Wanted:
    """One repository the foreign file asks for, merged over all its lines."""

    source: reference.Reference  # repository only
    line: int
    tags: list[str] = field(default_factory=list)  # "1.0" or "1.0@sha256:…"
    platforms: list[str] = field(default_factory=list)
    any_platform: bool = False  # some line asked without --platform: every platform
    all_tags: bool = False
    include: str | None = None  # a tag regex

    @property
    def spelled(self) -> str:
        """The repository as the list writes it: docker's short form."""
        return self.source.familiar()

    def add_tag(self, tag: str) -> None:
        if all(t.partition("@")[0] != tag.partition("@")[0] for t in self.tags):
            self.tags.append(tag)

    def add_platform(self, platform: str | None) -> None:
        if platform is None:
            self.any_platform = True
        elif not platform_rules.contains(self.platforms, platform):
            self.platforms.append(platform)

    @property
    def wanted_platforms(self) -> list[str]:
        # A line without --platform pulled every platform: no list narrows it.
        return [] if self.any_platform else self.platforms


@dataclass
class Imported:
    path: str
    wanted: list[Wanted]
    notes: list[Problem]


def read(fmt: Format, path: str | os.PathLike[str]) -> Imported:
    name = str(path)
    if fmt == "image-syncer":
        return _image_syncer(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(Problem(name, None, f"cannot read: {exc.strerror or exc}")) from None
    except UnicodeDecodeError:
        raise InputError(Problem(name, None, "not UTF-8 text")) from None
    return _lines(fmt, name, text)


# --- line formats -------------------------------------------------------------------------------

_COMMENT = re.compile(r"(?:^|\s)#.*$")
# What `helm template | grep image:` and YAML manifests put around a reference.
_YAML_IMAGE = re.compile(r"""^(?:-\s+)?(?:image:\s*)?(?P<q>["']?)(?P<ref>[^"'\s]+)(?P=q)$""")


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    # splitlines() also splits on \r, \x0b…; real files mean \n and \r\n.
    for number, line in enumerate(text.split("\n"), start=1):
        line = _COMMENT.sub("", line.rstrip("\r")).strip()
        if line:
            yield number, line


def _lines(fmt: Format, name: str, text: str) -> Imported:
    by_source: dict[str, Wanted] = {}
    problems: list[Problem] = []
    notes: list[Problem] = []
    for number, line in _numbered(text):
        platforms: list[str | None] = []
        refs: list[str] = []
        if fmt == "images-txt":
            tokens = line.split()
            i = 0
            while i < len(tokens):
                token = tokens[i]
                if token.startswith("--platform="):
                    platforms.append(token.split("=", 1)[1])
                elif token == "--platform" and i + 1 < len(tokens):
                    platforms.append(tokens[i + 1])
                    i += 1
                elif token.startswith("-"):
                    notes.append(Problem(name, number, f"option '{token}' ignored"))
                else:
                    refs.append(token)
                i += 1
        else:
            m = _YAML_IMAGE.match(line)
            refs = [m["ref"]] if m else line.split()
        if len(refs) != 1:
            problems.append(
                Problem(name, number, f"expected one image reference, found {len(refs) or 'none'}")
            )
            continue
        bad = [p for p in platforms if p is not None and platform_rules.problem(p)]
        if bad:
            problems.append(
                Problem(name, number, f"platform '{bad[0]}' {platform_rules.problem(bad[0])}")
            )
            continue
        _add_reference(name, number, refs[0], platforms or [None], by_source, problems, notes)
    if problems:
        raise InputError(problems)
    return Imported(name, list(by_source.values()), notes)


def _add_reference(
    name: str,
    number: int,
    text: str,
    platforms: list[str | None],
    by_source: dict[str, Wanted],
    problems: list[Problem],
    notes: list[Problem],
) -> None:
    try:
        ref = reference.parse(text)
    except ValueError as exc:
        problems.append(Problem(name, number, f"'{text[:80]}' is not an image reference: {exc}"))
        return
    repo = reference.Reference(ref.domain, ref.path)
    if ref.digest is not None and ref.tag is None:
        notes.append(
            Problem(
                name,
                number,
                f"{text}: a digest without a tag cannot be pinned in the list; add it as "
                "TAG@sha256:… to the entry by hand",
            )
        )
        return
    if ref.digest is not None and not ref.digest.startswith("sha256:"):
        notes.append(Problem(name, number, f"{text}: only sha256 pins are supported; skipped"))
        return
    wanted = by_source.setdefault(repo.name, Wanted(repo, number))
    tag = ref.tag or "latest"  # what docker pulls for a bare name
    wanted.add_tag(f"{tag}@{ref.digest}" if ref.digest else tag)
    for platform in platforms:
        wanted.add_platform(platform)


# --- image-syncer -------------------------------------------------------------------------------


class _Placeholders(Mapping[str, str]):
    """Destinations are dropped, so `$VARS` in them need no value: any name reads as one."""

    def __getitem__(self, key: str) -> str:
        return "relay-import"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _image_syncer(path: str | os.PathLike[str]) -> Imported:
    from relay.sync.files import load_rules

    name = str(path)
    rules = load_rules(path, _Placeholders())
    by_source: dict[str, Wanted] = {}
    notes: list[Problem] = []
    destinations = 0
    for rule in rules:
        destinations += 1
        line = rule.line or 0
        if rule.digest is not None:
            notes.append(
                Problem(
                    name,
                    line,
                    f"{rule.source}: a digest without a tag cannot be pinned in the list; add "
                    "it as TAG@sha256:… to the entry by hand",
                )
            )
            continue
        wanted = by_source.setdefault(rule.repository.name, Wanted(rule.repository, line))
        wanted.any_platform = True
        if rule.target_tags:
            notes.append(
                Problem(
                    name,
                    line,
                    f"{rule.source}: renamed tags ({', '.join(rule.target_tags)}) dropped; the "
                    "list keeps upstream's tags",
                )
            )
        if rule.pattern is not None:
            if wanted.include not in (None, rule.pattern):
                notes.append(
                    Problem(
                        name,
                        line,
                        f"{rule.source}: a second tag regex for one repository; kept "
                        f"/{wanted.include}/",
                    )
                )
            else:
                wanted.include = rule.pattern
        elif rule.tags:
            for tag in rule.tags:
                wanted.add_tag(tag)
        else:
            wanted.all_tags = True
    if destinations:
        notes.append(
            Problem(
                name,
                None,
                f"{destinations} destination(s) dropped: the list's images go to ACR and Harbor "
                "(Go regexes are kept as Python ones; they agree on the common syntax)",
            )
        )
    return Imported(name, list(by_source.values()), notes)
