"""`relay import FORMAT FILE [--dry-run]`: add another tool's image list to mirrors/images.yaml.

Appends new entries and merges tags into entries the list has, never duplicating, keeping the
list's comments and order (relay.config.listedit edits the text). Prints what changed on
stdout and what the file could not express as warnings; the result is validated before it is
written, and nothing is written when anything is wrong.
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

from relay import untrusted
from relay.commands.common import load_settings
from relay.config import imports, listedit, mirrors
from relay.errors import InputError, Problem
from relay.files import write_if_changed
from relay.output import ghactions

log = logging.getLogger(__name__)


def import_list(*, repo: Path, fmt: imports.Format, file: Path, dry_run: bool = False) -> int:
    cfg = load_settings(repo)
    path = untrusted.repo_path(repo, mirrors.LIST_FILE)
    # Read as every repository file is (regular, inside the repo, capped, UTF-8). A byte order
    # mark is kept aside: the edit works on the text after it and it is written back.
    read = untrusted.read_repo_text(repo, mirrors.LIST_FILE, keep_bom=True)
    bom = "\ufeff" if read is not None and read.startswith("\ufeff") else ""
    if read is not None:
        original = read.removeprefix(bom)
        # The list as it is must be valid: import adds to it, it does not repair it.
        mirrors.parse(
            original,
            mirrors.LIST_FILE,
            max_name_length=cfg.naming.max_length,
            prefixes=cfg.naming.prefixes,
        )
    else:
        original = "# yaml-language-server: $schema=./images.schema.json\n"
    found = imports.read(fmt, file)
    edit = listedit.merge(
        original,
        mirrors.LIST_FILE,
        found.wanted,
        max_name_length=cfg.naming.max_length,
        prefixes=cfg.naming.prefixes,
        comment=f"imported with `relay import {fmt} {file.name}`",
    )
    try:
        mirrors.parse(
            edit.text,
            mirrors.LIST_FILE,
            max_name_length=cfg.naming.max_length,
            prefixes=cfg.naming.prefixes,
        )
    except InputError as exc:
        # What the file asks for does not make a valid list: say so with the import's lines.
        raise InputError(
            [Problem(found.path, None, "the list would not be valid after the import:")]
            + exc.problems
        ) from None
    for change in edit.changes:
        print(change)
    notes = found.notes + [
        Problem(mirrors.LIST_FILE, n.line, n.message) if not n.path else n for n in edit.notes
    ]
    ghactions.warn(notes)
    added = sum(1 for c in edit.changes if c.kind == "added")
    merged = len(edit.changes) - added
    skipped = len(found.wanted) - len(edit.changes)
    summary = (
        f"{found.path}: {len(found.wanted)} image(s): {added} added, {merged} merged, "
        f"{skipped} already listed; {len(notes)} note(s)"
    )
    if dry_run:
        diff = difflib.unified_diff(
            original.splitlines(keepends=True),
            edit.text.splitlines(keepends=True),
            mirrors.LIST_FILE,
            mirrors.LIST_FILE,
        )
        print("".join(line.rstrip("\r\n") + "\n" for line in diff), end="")
        print(f"{summary}; dry run: {mirrors.LIST_FILE} not written")
        return 0
    written = edit.text != original and write_if_changed(path, bom + edit.text)
    print(f"{summary}; {mirrors.LIST_FILE} {'written' if written else 'unchanged'}")
    return 0
