"""Operations both editions share: quotas, starting builds, reading tags from the registry."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from relay.sandbox.acr import errors
from relay.sandbox.acr.builds import BuildRunner
from relay.sandbox.acr.quirks import Quirks
from relay.sandbox.acr.registry_view import RegistryTarget, RegistryView, TagInfo
from relay.sandbox.acr.state import ENTERPRISE, Build, BuildRule, Edition, Repo, State, now_ms

# Builds an edition-specific exception from (code, message, http status).
ErrorFactory = Callable[[str, str, int], Exception]


@dataclass(frozen=True)
class TagRow:
    info: TagInfo
    created: int  # ms
    updated: int  # ms


class Backend:
    def __init__(
        self,
        state: State,
        runner: BuildRunner,
        registry: RegistryTarget,
        *,
        registry_domain: str,
        ee_registry_domain: str,
        quirks: Quirks | None = None,
    ) -> None:
        self.state = state
        # Read at each request, so a test may change a switch between calls.
        self.quirks = quirks or Quirks()
        self.runner = runner
        self.registry = registry
        self.view = RegistryView(registry)
        self.registry_domain = registry_domain
        self.ee_registry_domain = ee_registry_domain
        # Namespace names are global in the personal edition: names another account holds.
        self.foreign_namespaces: set[str] = set()

    # -- quotas ----------------------------------------------------------------------------

    def check_namespace_quota(self, edition: Edition, err: ErrorFactory) -> None:
        limit = self.state.limits.namespaces
        if len(self.state.namespaces_of(edition)) >= limit:
            raise err(*self.quirks.limit_error("NAMESPACE", "namespaces", limit), 400)

    def check_repo_quota(self, edition: Edition, err: ErrorFactory) -> None:
        limit = self.state.limits.repos
        if len(self.state.repos_of(edition)) >= limit:
            raise err(*self.quirks.limit_error("REPO", "repositories", limit), 400)

    def check_rule_quota(self, repo: Repo, err: ErrorFactory) -> None:
        limit = self.state.limits.rules_per_repo
        if len(repo.rules) >= limit:
            noun = f"build rules for {repo.namespace}/{repo.name}"
            raise err(*self.quirks.limit_error("BUILD_RULE", noun, limit), 400)

    # -- builds ----------------------------------------------------------------------------

    def start_build(self, repo: Repo, rule: BuildRule, err: ErrorFactory) -> Build:
        with self.state.lock:
            if repo.source is None:
                raise err(
                    errors.REPO_SOURCE_NOT_EXIST,
                    f"repository {repo.namespace}/{repo.name} has no code source bound",
                    400,
                )
            limit = self.state.limits.concurrent_builds
            if len(self.state.active_builds()) >= limit:
                noun = "running builds"
                raise err(*self.quirks.limit_error("BUILD_CONCURRENCY", noun, limit), 400)
            build = Build(
                build_id=self.state.new_build_id(repo.edition),
                edition=repo.edition,
                namespace=repo.namespace,
                repo_name=repo.name,
                repo_id=repo.repo_id,
                rule=copy.deepcopy(rule),
                source=copy.deepcopy(repo.source),
            )
            self.state.builds[build.build_id] = build
        self.runner.submit(build)
        return build

    def domain_for(self, build: Build) -> str:
        return self.ee_registry_domain if build.edition == ENTERPRISE else self.registry_domain

    # -- tags --------------------------------------------------------------------------------

    def tags(self, repo: Repo) -> list[TagRow]:
        """Tags as the stand-in registry has them, newest first (then by name)."""
        path = f"{repo.namespace}/{repo.name}"
        rows = []
        for tag in self.view.tags(path):
            info = self.view.describe(path, tag)
            if info is None:  # deleted between the list and the read
                continue
            t = now_ms()
            created, updated = self.state.tag_times.get((repo.namespace, repo.name, tag), (t, t))
            rows.append(TagRow(info, created, updated))
        rows.sort(key=lambda r: (-r.updated, r.info.tag))
        return rows

    def tag(self, repo: Repo, tag: str) -> TagRow | None:
        info = self.view.describe(f"{repo.namespace}/{repo.name}", tag)
        if info is None:
            return None
        t = now_ms()
        created, updated = self.state.tag_times.get((repo.namespace, repo.name, tag), (t, t))
        return TagRow(info, created, updated)


class EditionApi:
    """What each edition's API (personal.PersonalApi, enterprise.EnterpriseApi) stands on: the
    shared backend, and the temporary login GetAuthorizationToken hands out."""

    def __init__(self, backend: Backend, token_user: str, token_password: str) -> None:
        self.backend = backend
        self.state = backend.state
        self.token_user = token_user
        self.token_password = token_password

    @property
    def quirks(self) -> Quirks:
        return self.backend.quirks


def page_slice(items: list, page: int, page_size: int) -> list:
    start = (page - 1) * page_size
    return items[start : start + page_size]


def bare_hex(digest: str) -> str:
    """ACR's doc examples show digests and image ids as bare hex (no ``sha256:``)."""
    return digest.split(":", 1)[1] if ":" in digest else digest
