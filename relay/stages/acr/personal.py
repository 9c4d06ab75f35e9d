"""The personal edition (API 2016-06-07, ROA): PascalCase JSON bodies under wrappers, camelCase
answers under `data`, lower-case service error codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from aliyunsdkcore.request import AcsRequest

from relay.stages.acr.api import ONCE_ONLY
from relay.stages.acr.errors import AcrError
from relay.stages.acr.sdk import SdkClient, new_request
from relay.stages.acr.state import (
    Binding,
    Build,
    Image,
    RepoInfo,
    Rule,
    RuleSpec,
    normalise_digest,
)
from relay.stages.acr.wire import (
    PAGE_SIZE,
    PERSONAL_OPERATIONS,
    PERSONAL_VERSION,
    as_text,
    int_or_none,
    newest_first,
    pages,
    truthy,
)

log = logging.getLogger(__name__)


class PersonalClient(SdkClient):
    edition = "personal"

    def _call(
        self,
        action: str,
        *,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        method, uri = PERSONAL_OPERATIONS[action]

        def build() -> AcsRequest:
            request = new_request(PERSONAL_VERSION, action, method, uri)
            for key, value in (path or {}).items():
                request.add_path_param(key, str(value))
            for key, value in (query or {}).items():
                request.add_query_param(key, str(value))
            if body is not None:
                request.set_content(json.dumps(body).encode("utf-8"))
                request.set_content_type("application/json")
            return request

        answer = self._send(action, method, build, idempotent=action not in ONCE_ONLY)
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    def _envelope(self, action: str, answer: dict[str, Any]) -> None:
        data = answer.get("data")
        if data is None and ("code" in answer or "Code" in answer):
            # A 2xx that still carries an error
            # (docs/vendors/acr.md#personal-edition-envelope-and-casing).
            code = as_text(answer.get("code") or answer.get("Code"))
            if code.lower() not in ("success", "ok", "200"):
                raise AcrError(
                    action, code, as_text(answer.get("message") or answer.get("Message"))
                )

    @staticmethod
    def _repo_path(repo: RepoInfo) -> dict[str, str]:
        return {"RepoNamespace": repo.namespace, "RepoName": repo.name}

    def list_namespaces(self) -> list[str]:
        data = self._call("GetNamespaceList")
        return [
            as_text(ns.get("namespace"))
            for ns in data.get("namespaces") or []
            if isinstance(ns, dict) and ns.get("namespace")
        ]

    def create_namespace(self, name: str) -> None:
        self._call("CreateNamespace", body={"Namespace": {"Namespace": name}})

    def _repo_page(self, namespace: str, page: int, size: int) -> tuple[list[Any], int | None]:
        data = self._call(
            "GetRepoListByNamespace",
            path={"RepoNamespace": namespace},
            query={"Page": page, "PageSize": size, "Status": "ALL"},
        )
        return [r for r in data.get("repos") or [] if isinstance(r, dict)], int_or_none(
            data.get("total")
        )

    def list_repos(self, namespace: str) -> list[RepoInfo]:
        return [
            RepoInfo(
                namespace=namespace,
                name=as_text(r.get("repoName")),
                repo_id=as_text(r.get("repoId")) or None,
                summary=as_text(r.get("summary")),
                detail=as_text(r.get("detail")),
            )
            for r in pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE))
        ]

    @staticmethod
    def _repo_source(binding: Binding) -> dict[str, Any]:
        # Undocumented but used by real code
        # (docs/vendors/acr.md#github-source-binding-and-overseas-build); the same block serves
        # UpdateRepoSourceRepo, whose body is UNCONFIRMED.
        return {
            "Source": {
                "SourceRepoType": "GITHUB",
                "SourceRepoNamespace": binding.owner,
                "SourceRepoName": binding.name,
            },
            "BuildConfig": {
                "IsAutoBuild": binding.auto_build,
                "IsOversea": binding.overseas,
                "IsDisableCache": binding.no_cache,
            },
        }

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo:
        body = {
            "Repo": {
                "RepoNamespace": namespace,
                "RepoName": name,
                "Summary": summary,
                "Detail": detail,
                "RepoType": self.settings.repo_type,
                "RepoBuildType": "AUTO_BUILD" if binding.auto_build else "MANUAL",
            },
            "RepoSource": self._repo_source(binding),
        }
        data = self._call("CreateRepo", body=body)
        repo = RepoInfo(namespace, name, as_text(data.get("repoId")) or None, summary, detail)
        self._ensure_bound(repo, binding)
        return repo

    def _ensure_bound(self, repo: RepoInfo, binding: Binding) -> None:
        """RepoSource in CreateRepo is undocumented
        (docs/vendors/acr.md#github-source-binding-and-overseas-build): check that it took, and bind
        with UpdateRepoSourceRepo when it did not. "Not found" (a *_NOT_EXIST code) means no
        binding (how the read answers an unbound repository is UNCONFIRMED); an unknown route
        means the binding API is not there, and a server that cannot say otherwise is trusted."""
        if self._binding_api_missing:
            return
        current: Binding | None
        try:
            current = self.get_binding(repo)
        except AcrError as exc:
            if exc.retryable:
                raise
            if exc.unknown_action:
                self._no_binding_api(exc)
                return
            if exc.not_found:
                current = None
            else:
                log.debug(
                    "cannot read the source binding of %s (%s); trusting CreateRepo",
                    repo.name,
                    exc.code,
                )
                return
        if current != binding:
            self.bind_source(repo, binding)

    def get_repo(self, namespace: str, name: str) -> RepoInfo | None:
        """GetRepo (doc 72398, docs/vendors/acr.md#personal-edition-operations)."""
        try:
            data = self._call("GetRepo", path={"RepoNamespace": namespace, "RepoName": name})
        except AcrError as exc:
            if exc.not_found:
                return None
            raise
        r = data.get("repo")
        if not isinstance(r, dict):
            return None
        return RepoInfo(
            namespace,
            name,
            as_text(r.get("repoId")) or None,
            as_text(r.get("summary")),
            as_text(r.get("detail")),
        )

    def update_repo(self, repo: RepoInfo, *, summary: str, detail: str) -> None:
        body = {"Repo": {"Summary": summary, "Detail": detail, "RepoType": self.settings.repo_type}}
        self._call("UpdateRepo", path=self._repo_path(repo), body=body)

    def delete_repo(self, repo: RepoInfo) -> None:
        self._call("DeleteRepo", path=self._repo_path(repo))

    def get_binding(self, repo: RepoInfo) -> Binding | None:
        data = self._call("GetRepoSourceRepo", path=self._repo_path(repo))
        # Shape UNCONFIRMED: accept the request's PascalCase layout in camelCase, nested or flat.
        src: dict[str, Any] = data.get("sourceRepo") or data.get("repoSource") or data
        if not isinstance(src, dict):
            return None
        source: dict[str, Any] = src["source"] if isinstance(src.get("source"), dict) else src
        config: dict[str, Any] = (
            src["buildConfig"] if isinstance(src.get("buildConfig"), dict) else src
        )
        owner = as_text(source.get("sourceRepoNamespace"))
        name = as_text(source.get("sourceRepoName"))
        if not owner or not name:
            return None
        # The flags' type is UNCONFIRMED: a "false" string must read false (wire.truthy), or
        # every run would rebind.
        return Binding(
            owner,
            name,
            overseas=truthy(config.get("isOversea")),
            no_cache=truthy(config.get("isDisableCache")),
            auto_build=truthy(config.get("isAutoBuild")),
        )

    def bind_source(self, repo: RepoInfo, binding: Binding) -> None:
        """Bind with UpdateRepoSourceRepo. Its route is UNCONFIRMED
        (docs/vendors/acr.md#github-source-binding-and-overseas-build): when the gateway does
        not know it, CreateRepo's RepoSource is all there is, so it is trusted (with one
        warning) and the repository's builds go ahead rather than being blocked for good."""
        if self._binding_api_missing:
            return
        try:
            self._call(
                "UpdateRepoSourceRepo",
                path=self._repo_path(repo),
                body={"RepoSource": self._repo_source(binding)},
            )
        except AcrError as exc:
            if not exc.unknown_action:
                raise
            self._no_binding_api(exc)

    _binding_api_missing = False

    def _no_binding_api(self, exc: AcrError) -> None:
        if not self._binding_api_missing:
            self._binding_api_missing = True
            log.warning(
                "ACR does not offer the source-binding API (%s %s): trusting the binding "
                "CreateRepo sent; check a repository's build settings in the console once",
                exc.action,
                exc.code,
            )

    def list_images(self, repo: RepoInfo) -> dict[str, Image]:
        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "GetRepoTags", path=self._repo_path(repo), query={"Page": n, "PageSize": PAGE_SIZE}
            )
            return [t for t in data.get("tags") or [] if isinstance(t, dict)], int_or_none(
                data.get("total")
            )

        images: dict[str, Image] = {}
        for t in pages(page):
            tag = as_text(t.get("tag"))
            if tag:
                images[tag] = Image(
                    tag, normalise_digest(t.get("imageId")), normalise_digest(t.get("digest"))
                )
        return images

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        data = self._call("GetRepoBuildRuleList", path=self._repo_path(repo))
        return [
            Rule(
                rule_id=as_text(r.get("buildRuleId")),
                push_type=as_text(r.get("pushType")),
                push_name=as_text(r.get("pushName")),
                location=as_text(r.get("dockerfileLocation")),
                dockerfile_name=as_text(r.get("dockerfileName")),
                image_tag=as_text(r.get("imageTag") or r.get("tag")),
            )
            for r in data.get("buildRules") or []
            if isinstance(r, dict) and r.get("buildRuleId") is not None
        ]

    @staticmethod
    def _rule_body(spec: RuleSpec) -> dict[str, Any]:
        # Which of ImageTag / Tag the server reads is UNCONFIRMED
        # (docs/vendors/acr.md#build-rule-fields): send both.
        return {
            "BuildRule": {
                "PushType": spec.push_type,
                "PushName": spec.branch,
                "DockerfileLocation": spec.location,
                "DockerfileName": spec.dockerfile_name,
                "ImageTag": spec.tag,
                "Tag": spec.tag,
            }
        }

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        def write() -> str | None:
            data = self._call(
                "CreateRepoBuildRule", path=self._repo_path(repo), body=self._rule_body(spec)
            )
            return as_text(data.get("buildRuleId")) or None

        return self._write_once("CreateRepoBuildRule", write, lambda: self._rule_landed(repo, spec))

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None:
        self._call(
            "UpdateRepoBuildRule",
            path={**self._repo_path(repo), "BuildRuleId": str(rule_id)},
            body=self._rule_body(spec),
        )

    def delete_rule(self, repo: RepoInfo, rule_id: str) -> None:
        self._call(
            "DeleteRepoBuildRule", path={**self._repo_path(repo), "BuildRuleId": str(rule_id)}
        )

    def start_build(
        self, repo: RepoInfo, rule_id: str, tag: str, *, known: frozenset[str] | None = None
    ) -> str | None:
        # The answer is UNCONFIRMED (docs/vendors/acr.md#personal-edition-operations): take a build
        # id if there is one; the caller finds the build in GetRepoBuildList otherwise.
        def write() -> str | None:
            data = self._call(
                "StartRepoBuildByRule",
                path={**self._repo_path(repo), "BuildRuleId": str(rule_id)},
            )
            return as_text(data.get("buildId")) or None

        return self._write_once(
            "StartRepoBuildByRule", write, lambda: self._build_landed(repo, tag, known)
        )

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        """Every build of the repository, newest first. GetRepoBuildList's order and paging are
        UNCONFIRMED (docs/vendors/acr.md#personal-edition-operations): all pages are read and
        sorted by start time, so a build is found wherever the server lists it."""

        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "GetRepoBuildList",
                path=self._repo_path(repo),
                query={"Page": n, "PageSize": PAGE_SIZE},
            )
            items = [b for b in data.get("builds") or [] if isinstance(b, dict)]
            return items, int_or_none(data.get("total"))

        builds: list[tuple[int | None, Build]] = []
        for b in pages(page):
            if b.get("buildId") is None:
                continue
            image: dict[str, Any] = b["image"] if isinstance(b.get("image"), dict) else {}
            build = Build(
                as_text(b.get("buildId")), as_text(b.get("buildStatus")), image.get("tag")
            )
            builds.append((int_or_none(b.get("startTime")), build))
        return newest_first(builds)

    def build_status(self, repo: RepoInfo, build_id: str) -> str:
        data = self._call(
            "GetRepoBuildStatus", path={**self._repo_path(repo), "BuildId": str(build_id)}
        )
        return as_text(data.get("buildStatus"))
