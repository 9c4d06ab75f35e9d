"""How ACR's two APIs look on the wire: versions, the personal edition's routes, paging, and
the loose typing of answers (numbers and booleans that may arrive as strings).

See docs/vendors/acr.md for the operations and their shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

PERSONAL_VERSION = "2016-06-07"
ENTERPRISE_VERSION = "2018-12-01"
# The Enterprise maximum; the personal one is UNCONFIRMED, and pages() copes with a smaller cap
# (docs/vendors/acr.md#page-sizes).
PAGE_SIZE = 100

# Personal edition (ROA): action -> (method, URI). Used for CommonRequest when the SDK has no
# class; where it has one, tests check the two agree.
PERSONAL_OPERATIONS: dict[str, tuple[str, str]] = {
    "GetNamespaceList": ("GET", "/namespace"),
    "CreateNamespace": ("PUT", "/namespace"),
    "GetRepoListByNamespace": ("GET", "/repos/[RepoNamespace]"),
    "CreateRepo": ("PUT", "/repos"),
    "GetRepo": ("GET", "/repos/[RepoNamespace]/[RepoName]"),
    "UpdateRepo": ("POST", "/repos/[RepoNamespace]/[RepoName]"),
    "DeleteRepo": ("DELETE", "/repos/[RepoNamespace]/[RepoName]"),
    "GetRepoSourceRepo": ("GET", "/repos/[RepoNamespace]/[RepoName]/sourceRepo"),
    "UpdateRepoSourceRepo": ("POST", "/repos/[RepoNamespace]/[RepoName]/sourceRepo"),
    "GetRepoTags": ("GET", "/repos/[RepoNamespace]/[RepoName]/tags"),
    "GetRepoBuildRuleList": ("GET", "/repos/[RepoNamespace]/[RepoName]/rules"),
    "CreateRepoBuildRule": ("PUT", "/repos/[RepoNamespace]/[RepoName]/rules"),
    "UpdateRepoBuildRule": ("POST", "/repos/[RepoNamespace]/[RepoName]/rules/[BuildRuleId]"),
    "DeleteRepoBuildRule": ("DELETE", "/repos/[RepoNamespace]/[RepoName]/rules/[BuildRuleId]"),
    "StartRepoBuildByRule": (
        "PUT",
        "/repos/[RepoNamespace]/[RepoName]/rules/[BuildRuleId]/build",
    ),
    "GetRepoBuildList": ("GET", "/repos/[RepoNamespace]/[RepoName]/build"),
    "GetRepoBuildStatus": ("GET", "/repos/[RepoNamespace]/[RepoName]/build/[BuildId]/status"),
}


def pages(fetch: Callable[[int], tuple[list[Any], int | None]]) -> Iterator[Any]:
    """Every item over pages 1, 2, …; stops at the total, so a server that serves fewer per page
    than asked (a cap below PAGE_SIZE) still pages to the end. Without a total: at an empty page
    or one shorter than PAGE_SIZE (every list relay pages is documented with its total)."""
    page, seen = 1, 0
    while True:
        items, total = fetch(page)
        yield from items
        seen += len(items)
        if not items or (total is not None and seen >= total):
            return
        if total is None and len(items) < PAGE_SIZE:
            return
        page += 1


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_text(value: Any) -> str:
    return "" if value is None else str(value)


def flag(value: bool) -> str:
    return "true" if value else "false"


def truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def newest_first(items: list[tuple[int | None, T]]) -> list[T]:
    """Items by their time, newest first; items without a time keep the server's order, after
    the timed ones. Which order ACR lists builds in is UNCONFIRMED
    (docs/vendors/acr.md#page-sizes), so relay reads every page and sorts."""
    timed = sorted((i for i in items if i[0] is not None), key=lambda i: -(i[0] or 0))
    return [v for _, v in timed] + [v for t, v in items if t is None]
