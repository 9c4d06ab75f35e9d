"""One switch per UNCONFIRMED behaviour the ACR emulator would otherwise hard-code.

docs/vendors/acr.md marks what nobody has checked against the live service as UNCONFIRMED; each
:class:`Quirks` field is one such point (its section is cited above the field; the page's
#emulator-quirks table lists them all), and the emulator plays whichever reading the field
says. relay's fallbacks are tested against every reading (tests/test_acr_quirks.py).

Defaults: where one reading is harder on a client (it says less, or needs a fallback), the
default is that reading. Where the readings are only spellings or layouts, none is harder, and
the default is the one the emulator has always played (so its contract tests keep their codes).
Where the hard reading would leave relay nothing to fall back on but a setting (a refused
overseas flag), the default is the reading relay's default settings assume, so that the default
emulator tests relay's code rather than its settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The spellings of "already exists" and limit codes the emulator can play.
ExistsSpelling = Literal["ALREADY_EXIST", "EXIST", "DUPLICATE"]
LimitSpelling = Literal["LIMIT_EXCEED", "QUOTA", "TOO_MANY"]
EXISTS_SPELLINGS: tuple[ExistsSpelling, ...] = ("ALREADY_EXIST", "EXIST", "DUPLICATE")
LIMIT_SPELLINGS: tuple[LimitSpelling, ...] = ("LIMIT_EXCEED", "QUOTA", "TOO_MANY")

# What an "already exists" or a limit error is about, in the emulator's own code stems.
ExistsKind = Literal["NAMESPACE", "REPO", "REPO_SOURCE"]
LimitKind = Literal["NAMESPACE", "REPO", "BUILD_RULE", "BUILD_CONCURRENCY"]

# Plural nouns for the TOO_MANY_* spelling.
_MANY = {
    "NAMESPACE": "NAMESPACES",
    "REPO": "REPOS",
    "BUILD_RULE": "BUILD_RULES",
    "BUILD_CONCURRENCY": "RUNNING_BUILDS",
}

ENTERPRISE_PAGE_SIZE_MAX = 100  # Confirmed: ListRepository and ListRepoTag pages (#page-sizes)


@dataclass
class Quirks:
    """One switch per UNCONFIRMED ACR behaviour; each cites its docs/vendors/acr.md section."""

    # CreateRepo's undocumented RepoSource block
    # (docs/vendors/acr.md#github-source-binding-and-overseas-build). "ignore": accepted and
    # dropped, the repository has no code source until UpdateRepoSourceRepo binds one;
    # "honour": the repository is bound as the block says.
    create_repo_source: Literal["ignore", "honour"] = "ignore"

    # GetRepoSourceRepo's answer (docs/vendors/acr.md#personal-edition-operations: UNCONFIRMED)
    # for a repository with no code source: "not-exist" answers REPO_SOURCE_NOT_EXIST (HTTP
    # 404), "empty" answers ``data: {}``.
    unbound_source: Literal["not-exist", "empty"] = "not-exist"

    # Whether the personal source-binding routes exist at all (GetRepoSourceRepo and
    # UpdateRepoSourceRepo: docs/vendors/acr.md#github-source-binding-and-overseas-build, body
    # UNCONFIRMED, and cr 2016-06-07 "has been made private"). "present": served; "absent":
    # the gateway answers InvalidAction.NotFound (HTTP 404), as for any unknown route.
    source_routes: Literal["present", "absent"] = "present"

    # The same answer for a bound repository: the request's block in camelCase under
    # ``repoSource``, under ``sourceRepo``, or its fields flat in ``data``.
    source_layout: Literal["repoSource", "sourceRepo", "flat"] = "repoSource"

    # StartRepoBuildByRule's answer (docs/vendors/acr.md#personal-edition-operations:
    # UNCONFIRMED). False answers ``data: {}``, so the new build is found only in
    # GetRepoBuildList; True adds ``buildId``.
    start_build_returns_id: bool = False

    # The order of build listings, GetRepoBuildList and ListRepoBuildRecord
    # (docs/vendors/acr.md#page-sizes: UNCONFIRMED). "newest-first" or "oldest-first"; the
    # clients read every page and sort by start time, so either works.
    build_list_order: Literal["newest-first", "oldest-first"] = "newest-first"

    # The cancelled state (docs/vendors/acr.md#build-status-values), in both editions; the
    # Enterprise status call answers it lower-cased, like every status it gives.
    canceled_status: Literal["CANCELED", "CANCELLED"] = "CANCELED"

    # The personal edition's maximum page size is unknown (docs/vendors/acr.md#page-sizes;
    # examples use 30). GetRepoList(ByNamespace), GetRepoTags and GetRepoBuildList serve at most
    # this many items a page, whatever PageSize asks, and answer the size served. None: no cap.
    personal_page_size_cap: int | None = 30

    # An Enterprise List* call asking for more than 100 a page (docs/vendors/acr.md#page-sizes:
    # "the system reports a parameter error or uses 100"). "reject": PARAM_INVALID (HTTP 400);
    # "clamp": 100 are served.
    enterprise_page_size_over_max: Literal["reject", "clamp"] = "reject"

    # Which personal rule field names the image tag (docs/vendors/acr.md#build-rule-fields).
    # The named field is required on create and read on update; the other is stored as sent
    # and has no effect.
    rule_image_tag_field: Literal["ImageTag", "Tag"] = "ImageTag"

    # "Already exists" codes (docs/vendors/acr.md#already-exists-and-limit-errors).
    # "ALREADY_EXIST": REPO_ALREADY_EXIST and a message saying "already exists"; "EXIST":
    # REPO_EXIST, "DUPLICATE": REPO_DUPLICATE, both with a message that names neither word, so
    # only the code tells.
    already_exists: ExistsSpelling = "ALREADY_EXIST"

    # Quota and limit codes (docs/vendors/acr.md#already-exists-and-limit-errors).
    # "LIMIT_EXCEED": REPO_LIMIT_EXCEED and a message saying "quota exceeded (limit N)";
    # "QUOTA": REPO_QUOTA, "TOO_MANY": TOO_MANY_REPOS, both with a message that has none of
    # relay's words.
    limit_exceeded: LimitSpelling = "LIMIT_EXCEED"

    # Enterprise CreateRepoSourceCodeRepo on a repository that is bound already
    # (docs/vendors/acr.md#github-source-binding-and-overseas-build). "error": an "already
    # exists" error (use UpdateRepoSourceCodeRepo); "overwrite": the new binding replaces the old.
    enterprise_rebind: Literal["error", "overwrite"] = "error"

    # Whether the personal edition still offers overseas builds
    # (docs/vendors/acr.md#github-source-binding-and-overseas-build). "offered": IsOversea is
    # kept; "refused": IsOversea true is PARAM_INVALID wherever a binding is set. relay's way
    # out is its acr.overseas_build setting, so the default plays what that setting assumes.
    overseas_build: Literal["offered", "refused"] = "offered"

    # Whether a personal repository name may hold `.` (docs/vendors/acr.md#name-rules: ROS doc
    # 135727 allows it, doc 72396 and the console's other revisions do not). The length rule
    # is Limits.repo_name_max (30 by default, ROS says 64).
    repo_name_dots: bool = False

    # -- what the switches mean on the wire -----------------------------------------------------

    def build_status(self, status: str) -> str:
        """A build state as the API spells it (the emulator keeps ``CANCELED`` inside)."""
        return self.canceled_status if status == "CANCELED" else status

    def page_size(self, asked: int) -> int:
        """The personal edition's page size served for ``asked``."""
        cap = self.personal_page_size_cap
        return asked if cap is None else min(asked, cap)

    def exists_error(self, kind: ExistsKind, what: str) -> tuple[str, str]:
        """(code, message) for "``what`` already exists"."""
        if self.already_exists == "ALREADY_EXIST":
            return f"{kind}_ALREADY_EXIST", f"{what} already exists"
        return f"{kind}_{self.already_exists}", f"the name of {what} is taken"

    def limit_error(self, kind: LimitKind, noun: str, limit: int) -> tuple[str, str]:
        """(code, message) for "no more ``noun`` than ``limit``"."""
        if self.limit_exceeded == "LIMIT_EXCEED":
            return f"{kind}_LIMIT_EXCEED", f"{noun} quota exceeded (limit {limit})"
        code = f"{kind}_QUOTA" if self.limit_exceeded == "QUOTA" else f"TOO_MANY_{_MANY[kind]}"
        return code, f"no more {noun} allowed: {limit} at most"
