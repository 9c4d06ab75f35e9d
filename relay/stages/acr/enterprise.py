"""The enterprise edition (API 2018-12-01, RPC): every parameter in the query, PascalCase flat
answers that must be checked for IsSuccess."""

from __future__ import annotations

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
    ENTERPRISE_VERSION,
    PAGE_SIZE,
    as_text,
    flag,
    int_or_none,
    newest_first,
    pages,
    truthy,
)

log = logging.getLogger(__name__)


class EnterpriseClient(SdkClient):
    edition = "enterprise"

    def _call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        def build() -> AcsRequest:
            request = new_request(ENTERPRISE_VERSION, action, "POST")
            request.add_query_param("InstanceId", str(self.settings.instance_id))
            for key, value in (params or {}).items():
                if isinstance(value, (list, tuple)):
                    # RPC repeat lists are flattened as Key.1, Key.2, …
                    for i, item in enumerate(value, start=1):
                        request.add_query_param(f"{key}.{i}", str(item))
                elif isinstance(value, bool):
                    request.add_query_param(key, flag(value))
                else:
                    request.add_query_param(key, str(value))
            return request

        answer: dict[str, Any] = self._send(
            action, "POST", build, idempotent=action not in ONCE_ONLY
        )
        return answer

    def _envelope(self, action: str, answer: dict[str, Any]) -> None:
        # HTTP 200 with IsSuccess false (docs/vendors/acr.md#error-shapes).
        if answer.get("IsSuccess") is False:
            raise AcrError(
                action,
                as_text(answer.get("Code")) or "IsSuccessFalse",
                as_text(answer.get("Message")),
                request_id=as_text(answer.get("RequestId")) or None,
            )

    def list_namespaces(self) -> list[str]:
        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call("ListNamespace", {"PageNo": n, "PageSize": PAGE_SIZE})
            items = [ns for ns in data.get("Namespaces") or [] if isinstance(ns, dict)]
            return items, int_or_none(data.get("TotalCount"))

        return [as_text(ns.get("NamespaceName")) for ns in pages(page) if ns.get("NamespaceName")]

    def create_namespace(self, name: str) -> None:
        self._call(
            "CreateNamespace",
            {"NamespaceName": name, "AutoCreateRepo": False, "DefaultRepoType": "PRIVATE"},
        )

    def _repo_page(self, namespace: str, page: int, size: int) -> tuple[list[Any], int | None]:
        data = self._call(
            "ListRepository",
            {"RepoNamespaceName": namespace, "RepoStatus": "ALL", "PageNo": page, "PageSize": size},
        )
        items = [r for r in data.get("Repositories") or [] if isinstance(r, dict)]
        return items, int_or_none(data.get("TotalCount"))

    def list_repos(self, namespace: str) -> list[RepoInfo]:
        return [
            RepoInfo(
                namespace=namespace,
                name=as_text(r.get("RepoName")),
                repo_id=as_text(r.get("RepoId")) or None,
                summary=as_text(r.get("Summary")),
                detail=as_text(r.get("Detail")),
            )
            for r in pages(lambda page: self._repo_page(namespace, page, PAGE_SIZE))
        ]

    def create_repo(
        self, namespace: str, name: str, *, summary: str, detail: str, binding: Binding
    ) -> RepoInfo:
        data = self._call(
            "CreateRepository",
            {
                "RepoNamespaceName": namespace,
                "RepoName": name,
                "RepoType": self.settings.repo_type,
                "Summary": summary,
                "Detail": detail,
            },
        )
        repo = RepoInfo(namespace, name, as_text(data.get("RepoId")) or None, summary, detail)
        if repo.repo_id is None:
            repo = self._find_repo(namespace, name) or repo
        self.bind_source(repo, binding)
        return repo

    def _find_repo(self, namespace: str, name: str) -> RepoInfo | None:
        data = self._call(
            "ListRepository",
            {"RepoNamespaceName": namespace, "RepoName": name, "PageNo": 1, "PageSize": 10},
        )
        for r in data.get("Repositories") or []:
            if isinstance(r, dict) and r.get("RepoName") == name:
                return RepoInfo(
                    namespace,
                    name,
                    as_text(r.get("RepoId")),
                    as_text(r.get("Summary")),
                    as_text(r.get("Detail")),
                )
        return None

    def get_repo(self, namespace: str, name: str) -> RepoInfo | None:
        return self._find_repo(namespace, name)

    def _repo_id(self, repo: RepoInfo) -> str:
        if repo.repo_id:
            return repo.repo_id
        found = self._find_repo(repo.namespace, repo.name)
        if found is None or not found.repo_id:
            raise AcrError("ListRepository", "REPO_NOT_EXIST", f"{repo.namespace}/{repo.name}")
        return found.repo_id

    def update_repo(self, repo: RepoInfo, *, summary: str, detail: str) -> None:
        self._call(
            "UpdateRepository",
            {
                "RepoId": self._repo_id(repo),
                "RepoType": self.settings.repo_type,
                "Summary": summary,
                "Detail": detail,
            },
        )

    def delete_repo(self, repo: RepoInfo) -> None:
        self._call("DeleteRepository", {"RepoId": self._repo_id(repo)})

    def get_binding(self, repo: RepoInfo) -> Binding | None:
        data = self._call("GetRepoSourceCodeRepo", {"RepoId": self._repo_id(repo)})
        owner, name = as_text(data.get("CodeRepoNamespaceName")), as_text(data.get("CodeRepoName"))
        if not owner or not name:
            return None
        return Binding(
            owner,
            name,
            overseas=truthy(data.get("OverseaBuild")),
            no_cache=truthy(data.get("DisableCacheBuild")),
            auto_build=truthy(data.get("AutoBuild")),
        )

    def bind_source(self, repo: RepoInfo, binding: Binding) -> None:
        params = {
            "RepoId": self._repo_id(repo),
            "CodeRepoType": "GITHUB",
            "CodeRepoNamespaceName": binding.owner,
            "CodeRepoName": binding.name,
            "AutoBuild": binding.auto_build,
            "OverseaBuild": binding.overseas,
            "DisableCacheBuild": binding.no_cache,
        }
        try:
            self._call("CreateRepoSourceCodeRepo", params)
        except AcrError as exc:
            # A repository bound before (by hand, or by a run that crashed) is re-bound.
            if not exc.already_exists:
                raise
            self._call("UpdateRepoSourceCodeRepo", params)

    def list_images(self, repo: RepoInfo) -> dict[str, Image]:
        repo_id = self._repo_id(repo)

        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "ListRepoTag", {"RepoId": repo_id, "PageNo": n, "PageSize": PAGE_SIZE}
            )
            items = [i for i in data.get("Images") or [] if isinstance(i, dict)]
            return items, int_or_none(data.get("TotalCount"))

        images: dict[str, Image] = {}
        for i in pages(page):
            tag = as_text(i.get("Tag"))
            if tag:
                images[tag] = Image(
                    tag, normalise_digest(i.get("ImageId")), normalise_digest(i.get("Digest"))
                )
        return images

    def list_rules(self, repo: RepoInfo) -> list[Rule]:
        repo_id = self._repo_id(repo)

        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "ListRepoBuildRule", {"RepoId": repo_id, "PageNo": n, "PageSize": PAGE_SIZE}
            )
            items = [r for r in data.get("BuildRules") or [] if isinstance(r, dict)]
            return items, int_or_none(data.get("TotalCount"))

        return [
            Rule(
                rule_id=as_text(r.get("BuildRuleId")),
                push_type=as_text(r.get("PushType")),
                push_name=as_text(r.get("PushName")),
                location=as_text(r.get("DockerfileLocation")),
                dockerfile_name=as_text(r.get("DockerfileName")),
                image_tag=as_text(r.get("ImageTag")),
                platforms=tuple(str(p) for p in r.get("Platforms") or ()),
            )
            for r in pages(page)
            if r.get("BuildRuleId")
        ]

    def _rule_params(self, repo: RepoInfo, spec: RuleSpec) -> dict[str, Any]:
        params: dict[str, Any] = {
            "RepoId": self._repo_id(repo),
            "PushType": spec.push_type,
            "PushName": spec.branch,
            "DockerfileLocation": spec.location,
            "DockerfileName": spec.dockerfile_name,
            "ImageTag": spec.tag,
        }
        if spec.platforms:
            params["Platforms"] = list(spec.platforms)
        return params

    def create_rule(self, repo: RepoInfo, spec: RuleSpec) -> str | None:
        def write() -> str | None:
            data = self._call("CreateRepoBuildRule", self._rule_params(repo, spec))
            return as_text(data.get("BuildRuleId")) or None

        return self._write_once("CreateRepoBuildRule", write, lambda: self._rule_landed(repo, spec))

    def update_rule(self, repo: RepoInfo, rule_id: str, spec: RuleSpec) -> None:
        params = self._rule_params(repo, spec)
        params["BuildRuleId"] = str(rule_id)
        self._call("UpdateRepoBuildRule", params)

    def delete_rule(self, repo: RepoInfo, rule_id: str) -> None:
        self._call(
            "DeleteRepoBuildRule", {"RepoId": self._repo_id(repo), "BuildRuleId": str(rule_id)}
        )

    def start_build(
        self, repo: RepoInfo, rule_id: str, tag: str, *, known: frozenset[str] | None = None
    ) -> str | None:
        def write() -> str | None:
            data = self._call(
                "CreateBuildRecordByRule",
                {"RepoId": self._repo_id(repo), "BuildRuleId": str(rule_id)},
            )
            return as_text(data.get("BuildRecordId")) or None

        return self._write_once(
            "CreateBuildRecordByRule", write, lambda: self._build_landed(repo, tag, known)
        )

    def list_builds(self, repo: RepoInfo) -> list[Build]:
        """Every build record, newest first: all pages, sorted by StartTime (the listing's
        order is not documented)."""
        repo_id = self._repo_id(repo)

        def page(n: int) -> tuple[list[Any], int | None]:
            data = self._call(
                "ListRepoBuildRecord", {"RepoId": repo_id, "PageNo": n, "PageSize": PAGE_SIZE}
            )
            items = [b for b in data.get("BuildRecords") or [] if isinstance(b, dict)]
            return items, int_or_none(data.get("TotalCount"))

        builds: list[tuple[int | None, Build]] = []
        for b in pages(page):
            if not b.get("BuildRecordId"):
                continue
            image: dict[str, Any] = b["Image"] if isinstance(b.get("Image"), dict) else {}
            build = Build(
                as_text(b.get("BuildRecordId")),
                as_text(b.get("BuildStatus") or b.get("Status")),
                image.get("ImageTag"),
            )
            builds.append((int_or_none(b.get("StartTime")), build))
        return newest_first(builds)

    def build_status(self, repo: RepoInfo, build_id: str) -> str:
        data = self._call(
            "GetRepoBuildRecordStatus",
            {"RepoId": self._repo_id(repo), "BuildRecordId": str(build_id)},
        )
        return as_text(data.get("BuildStatus"))
