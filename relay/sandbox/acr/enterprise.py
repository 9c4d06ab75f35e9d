"""The enterprise edition, API version 2018-12-01 (RPC): ``POST /?Action=...`` with every
parameter in the query string; PascalCase flat responses with ``Code``/``IsSuccess``
(terraform-provider-alibabacloudstack, service_apsarastack_cr.go).

Error policy (the split is UNCONFIRMED beyond INSTANCE_NOT_EXIST): missing mandatory parameters
are gateway errors (``Missing<Name>``, HTTP 400); "does not exist", "already exists" and quota
errors come back as **HTTP 200 with IsSuccess:false**, as the terraform provider saw for
INSTANCE_NOT_EXIST; bad parameter values are HTTP 400 with IsSuccess:false.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from relay.sandbox.acr import errors
from relay.sandbox.acr.backend import EditionApi, TagRow, bare_hex, page_slice
from relay.sandbox.acr.quirks import ENTERPRISE_PAGE_SIZE_MAX
from relay.sandbox.acr.state import (
    DETAIL_MAX,
    DOCKERFILE_LOCATION_LEN,
    DOCKERFILE_NAME_LEN,
    EE_CODE_REPO_TYPES,
    EE_NAMESPACE_LEN,
    EE_NAMESPACE_RE,
    EE_REPO_LEN,
    EE_REPO_RE,
    ENTERPRISE,
    PUSH_TYPES,
    REPO_TYPES,
    SUMMARY_LEN,
    TAG_RE,
    Build,
    BuildRule,
    Namespace,
    Repo,
    SourceBinding,
    now_ms,
)

# Platforms a rule may name: ACR builds these four only (docs/vendors/acr.md#github-source-
# binding-and-overseas-build, Confirmed); anything else is refused.
PLATFORMS = frozenset({"linux/amd64", "linux/arm64", "linux/arm/v7", "linux/arm/v6"})

Params = dict[str, str]


def ee_error(code: str, message: str, status: int = 200) -> errors.EnterpriseError:
    # HTTP 200 + IsSuccess:false by default; value errors pass 400.
    return errors.EnterpriseError(code, message, status)


def _ee_factory(code: str, message: str, status: int) -> Exception:
    # Quotas/limits from the shared backend: HTTP 200 + IsSuccess:false in this edition.
    return errors.EnterpriseError(code, message, 200)


def _invalid(name: str, detail: str) -> errors.EnterpriseError:
    return ee_error(errors.PARAM_INVALID, f"{name} is invalid: {detail}", 400)


def _required(p: Params, name: str) -> str:
    value = p.get(name)
    if value is None or value == "":
        raise errors.missing_parameter(name)
    return value


def _bool(p: Params, name: str, default: bool = False) -> bool:
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise errors.invalid_parameter(name, "Expected true or false.")


def _int(p: Params, name: str, default: int) -> int:
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.invalid_parameter(name, "Expected an integer.") from None
    if value < 1:
        raise errors.invalid_parameter(name, "Expected a positive integer.")
    return value


def _repeat_list(p: Params, name: str) -> list[str]:
    """RPC arrays arrive flattened: ``Platforms.1=linux/amd64&Platforms.2=linux/arm64``."""
    pat = re.compile(re.escape(name) + r"\.(\d+)$")
    found = sorted((int(m.group(1)), v) for k, v in p.items() if (m := pat.match(k)))
    return [v for _, v in found]


class EnterpriseApi(EditionApi):
    def _page(self, p: Params) -> tuple[int, int]:
        """PageNo and PageSize; above 100 a page is refused or clamped
        (Quirks.enterprise_page_size_over_max)."""
        page, size = _int(p, "PageNo", 1), _int(p, "PageSize", 30)
        if size > ENTERPRISE_PAGE_SIZE_MAX:
            if self.quirks.enterprise_page_size_over_max == "reject":
                raise _invalid("PageSize", f"at most {ENTERPRISE_PAGE_SIZE_MAX}")
            size = ENTERPRISE_PAGE_SIZE_MAX
        return page, size

    def actions(self) -> set[str]:
        return {name[3:] for name in dir(self) if name.startswith("op_")}

    def handle(self, action: str, params: Params) -> dict[str, Any]:
        handler: Callable[[EnterpriseApi, Params], dict[str, Any]] = getattr(
            type(self), "op_" + action
        )
        _required(params, "InstanceId")
        if params["InstanceId"] != self.state.instance_id:
            raise ee_error(errors.INSTANCE_NOT_EXIST, f"instance {params['InstanceId']} not found")
        return handler(self, params)

    # -- lookups -------------------------------------------------------------------------------

    def _namespace(self, name: str) -> Namespace:
        ns = self.state.namespaces.get((ENTERPRISE, name))
        if ns is None:
            raise ee_error(errors.NAMESPACE_NOT_EXIST, f"namespace {name} does not exist")
        return ns

    def _repo(self, p: Params) -> Repo:
        repo_id = p.get("RepoId")
        repo: Repo | None
        if repo_id:
            repo = self.state.repo_by_id(repo_id)
            if repo is not None and repo.edition != ENTERPRISE:
                repo = None
        else:
            ns = _required(p, "RepoNamespaceName")
            name = _required(p, "RepoName")
            repo = self.state.repos.get((ENTERPRISE, ns, name))
        if repo is None:
            raise ee_error(errors.REPO_NOT_EXIST, "repository does not exist")
        return repo

    def _rule(self, repo: Repo, p: Params) -> BuildRule:
        rule = repo.rules.get(_required(p, "BuildRuleId"))
        if rule is None:
            raise ee_error(errors.BUILD_RULE_NOT_EXIST, "build rule does not exist")
        return rule

    def _build(self, p: Params, repo: Repo | None = None) -> Build:
        build = self.state.builds.get(_required(p, "BuildRecordId"))
        if (
            build is None
            or build.edition != ENTERPRISE
            or (repo is not None and build.repo_id != repo.repo_id)
        ):
            raise ee_error(errors.BUILD_NOT_EXIST, "build record does not exist")
        return build

    # -- auth ----------------------------------------------------------------------------------

    def op_GetAuthorizationToken(self, p: Params) -> dict[str, Any]:
        return {
            "AuthorizationToken": self.token_password,
            "TempUsername": self.token_user,
            "ExpireTime": now_ms() + 3600 * 1000,
        }

    # -- namespaces ----------------------------------------------------------------------------

    @staticmethod
    def _ns_json(ns: Namespace, instance_id: str) -> dict[str, Any]:
        return {
            "InstanceId": instance_id,
            "NamespaceId": ns.namespace_id,
            "NamespaceName": ns.name,
            "NamespaceStatus": "NORMAL",
            "AutoCreateRepo": ns.auto_create,
            "DefaultRepoType": ns.default_visibility,
        }

    def op_CreateNamespace(self, p: Params) -> dict[str, Any]:
        name = _required(p, "NamespaceName")
        lo, hi = EE_NAMESPACE_LEN
        if not lo <= len(name) <= hi or not EE_NAMESPACE_RE.match(name):
            raise _invalid("NamespaceName", f"{lo}-{hi} of a-z 0-9 . _ -")
        repo_type = p.get("DefaultRepoType") or "PRIVATE"
        if repo_type not in REPO_TYPES:
            raise _invalid("DefaultRepoType", "PUBLIC or PRIVATE")
        auto_create = _bool(p, "AutoCreateRepo", True)
        with self.state.lock:
            if (ENTERPRISE, name) in self.state.namespaces:
                raise ee_error(*self.quirks.exists_error("NAMESPACE", f"namespace {name}"))
            self.backend.check_namespace_quota(ENTERPRISE, _ee_factory)
            self.state.namespaces[(ENTERPRISE, name)] = Namespace(
                ENTERPRISE,
                name,
                namespace_id=self.state.new_namespace_id(),
                auto_create=auto_create,
                default_visibility=repo_type,
            )
        return {}

    def op_GetNamespace(self, p: Params) -> dict[str, Any]:
        if p.get("NamespaceId"):
            found = [
                ns
                for ns in self.state.namespaces_of(ENTERPRISE)
                if ns.namespace_id == p["NamespaceId"]
            ]
            if not found:
                raise ee_error(errors.NAMESPACE_NOT_EXIST, "namespace does not exist")
            ns = found[0]
        else:
            ns = self._namespace(_required(p, "NamespaceName"))
        return self._ns_json(ns, self.state.instance_id)

    def op_ListNamespace(self, p: Params) -> dict[str, Any]:
        page, size = self._page(p)
        items = sorted(self.state.namespaces_of(ENTERPRISE), key=lambda n: n.name)
        if p.get("NamespaceName"):
            items = [ns for ns in items if ns.name == p["NamespaceName"]]
        return {
            "Namespaces": [
                self._ns_json(ns, self.state.instance_id) for ns in page_slice(items, page, size)
            ],
            "TotalCount": len(items),
            "PageNo": page,
            "PageSize": size,
        }

    # -- repositories --------------------------------------------------------------------------

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        return {
            "InstanceId": self.state.instance_id,
            "RepoId": repo.repo_id,
            "RepoNamespaceName": repo.namespace,
            "RepoName": repo.name,
            "RepoType": repo.repo_type,
            "RepoBuildType": repo.repo_build_type,
            "RepoStatus": "NORMAL",
            "Summary": repo.summary,
            "Detail": repo.detail,
            "TagImmutability": repo.tag_immutability,
            "CreateTime": repo.created,
            "ModifiedTime": repo.modified,
        }

    def op_CreateRepository(self, p: Params) -> dict[str, Any]:
        ns_name = _required(p, "RepoNamespaceName")
        name = _required(p, "RepoName")
        repo_type = _required(p, "RepoType")
        summary = _required(p, "Summary")
        lo, hi = EE_REPO_LEN
        if not lo <= len(name) <= hi or not EE_REPO_RE.match(name):
            raise _invalid("RepoName", f"{lo}-{hi} of a-z 0-9 . _ -")
        if repo_type not in REPO_TYPES:
            raise _invalid("RepoType", "PUBLIC or PRIVATE")
        if not SUMMARY_LEN[0] <= len(summary) <= SUMMARY_LEN[1]:
            raise _invalid("Summary", "1-100 characters")
        with self.state.lock:
            self._namespace(ns_name)
            if (ENTERPRISE, ns_name, name) in self.state.repos:
                raise ee_error(*self.quirks.exists_error("REPO", f"repository {ns_name}/{name}"))
            self.backend.check_repo_quota(ENTERPRISE, _ee_factory)
            repo = Repo(
                edition=ENTERPRISE,
                namespace=ns_name,
                name=name,
                repo_id=self.state.new_repo_id(ENTERPRISE),
                summary=summary,
                detail=p.get("Detail", ""),
                repo_type=repo_type,
                tag_immutability=_bool(p, "TagImmutability"),
            )
            self.state.repos[repo.key] = repo
        return {"RepoId": repo.repo_id}

    def op_UpdateRepository(self, p: Params) -> dict[str, Any]:
        # RepoId, RepoType and Summary required, Detail and TagImmutability optional
        # (docs/vendors/acr.md#enterprise-edition-operations: UpdateRepository).
        repo = self._repo(p)
        repo_type = _required(p, "RepoType")
        summary = _required(p, "Summary")
        if repo_type not in REPO_TYPES:
            raise _invalid("RepoType", "PUBLIC or PRIVATE")
        if not SUMMARY_LEN[0] <= len(summary) <= SUMMARY_LEN[1]:
            raise _invalid("Summary", "1-100 characters")
        if len(p.get("Detail", "")) > DETAIL_MAX:
            raise _invalid("Detail", f"at most {DETAIL_MAX} characters")
        with self.state.lock:
            repo.repo_type = repo_type
            repo.summary = summary
            repo.detail = p.get("Detail", repo.detail)
            if "TagImmutability" in p:
                repo.tag_immutability = _bool(p, "TagImmutability")
            repo.modified = now_ms()
        return {}

    def op_GetRepository(self, p: Params) -> dict[str, Any]:
        return self._repo_json(self._repo(p))

    def op_ListRepository(self, p: Params) -> dict[str, Any]:
        page, size = self._page(p)
        repos = sorted(
            self.state.repos_of(ENTERPRISE, p.get("RepoNamespaceName") or None),
            key=lambda r: (r.namespace, r.name),
        )
        if p.get("RepoName"):
            repos = [r for r in repos if r.name == p["RepoName"]]
        if p.get("RepoStatus") not in (None, "", "ALL", "NORMAL"):
            repos = []
        return {
            "Repositories": [self._repo_json(r) for r in page_slice(repos, page, size)],
            "TotalCount": len(repos),
            "PageNo": page,
            "PageSize": size,
        }

    # -- source code binding -------------------------------------------------------------------

    @staticmethod
    def _source(p: Params) -> SourceBinding:
        code_type = _required(p, "CodeRepoType")
        if code_type not in EE_CODE_REPO_TYPES:
            raise _invalid("CodeRepoType", f"one of {sorted(EE_CODE_REPO_TYPES)}")
        return SourceBinding(
            repo_type=code_type,
            namespace=_required(p, "CodeRepoNamespaceName"),
            name=_required(p, "CodeRepoName"),
            auto_build=_bool(p, "AutoBuild"),
            oversea=_bool(p, "OverseaBuild"),
            disable_cache=_bool(p, "DisableCacheBuild"),
        )

    def op_CreateRepoSourceCodeRepo(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        source = self._source(p)
        with self.state.lock:
            if repo.source is not None and self.quirks.enterprise_rebind == "error":
                # UNCONFIRMED whether the vendor errors or overwrites (Quirks.enterprise_rebind):
                # erroring makes a client use UpdateRepoSourceCodeRepo for a bound repo.
                what = f"the code source of {repo.namespace}/{repo.name}"
                raise ee_error(*self.quirks.exists_error("REPO_SOURCE", what))
            repo.source = source
            repo.repo_build_type = "AUTO_BUILD" if source.auto_build else "MANUAL"
        return {}

    def op_UpdateRepoSourceCodeRepo(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        source = self._source(p)
        with self.state.lock:
            if repo.source is None:
                raise ee_error(errors.REPO_SOURCE_NOT_EXIST, "no source code repo bound")
            repo.source = source
            repo.repo_build_type = "AUTO_BUILD" if source.auto_build else "MANUAL"
        return {}

    def op_GetRepoSourceCodeRepo(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        src = repo.source
        if src is None:
            raise ee_error(errors.REPO_SOURCE_NOT_EXIST, "no source code repo bound")
        return {
            "InstanceId": self.state.instance_id,
            "RepoId": repo.repo_id,
            "CodeRepoType": src.repo_type,
            "CodeRepoNamespaceName": src.namespace,
            "CodeRepoName": src.name,
            "AutoBuild": src.auto_build,
            "OverseaBuild": src.oversea,
            "DisableCacheBuild": src.disable_cache,
        }

    # -- build rules ---------------------------------------------------------------------------

    @staticmethod
    def _rule_fields(p: Params, partial: bool) -> dict[str, Any]:
        def get(name: str) -> str | None:
            return p.get(name) if partial else _required(p, name)

        out: dict[str, Any] = {}
        if (v := get("PushType")) is not None:
            if v not in PUSH_TYPES:
                raise _invalid("PushType", "GIT_BRANCH or GIT_TAG")
            out["push_type"] = v
        if (v := get("PushName")) is not None:
            out["push_name"] = v
        if (v := get("DockerfileLocation")) is not None:
            if not DOCKERFILE_LOCATION_LEN[0] <= len(v) <= DOCKERFILE_LOCATION_LEN[1]:
                raise _invalid("DockerfileLocation", "1-128 characters")
            out["dockerfile_location"] = v
        if (v := get("DockerfileName")) is not None:
            if not DOCKERFILE_NAME_LEN[0] <= len(v) <= DOCKERFILE_NAME_LEN[1]:
                raise _invalid("DockerfileName", "4-64 characters")
            out["dockerfile_name"] = v
        if (v := get("ImageTag")) is not None:
            if not TAG_RE.match(v):
                raise _invalid("ImageTag", "not a valid image tag")
            out["image_tag"] = v
        platforms = _repeat_list(p, "Platforms")
        for plat in platforms:
            if plat not in PLATFORMS:
                raise _invalid("Platforms", f"unsupported platform {plat}")
        if platforms:
            out["platforms"] = platforms
        build_args = _repeat_list(p, "BuildArgs")
        if build_args:
            out["build_args"] = build_args
        return out

    @staticmethod
    def _rule_json(rule: BuildRule) -> dict[str, Any]:
        return {
            "BuildRuleId": rule.rule_id,
            "PushType": rule.push_type,
            "PushName": rule.push_name,
            "ImageTag": rule.image_tag,
            "DockerfileLocation": rule.dockerfile_location,
            "DockerfileName": rule.dockerfile_name,
            "Platforms": list(rule.platforms),
            "BuildArgs": list(rule.build_args),
        }

    def op_CreateRepoBuildRule(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        fields = self._rule_fields(p, partial=False)
        with self.state.lock:
            self.backend.check_rule_quota(repo, _ee_factory)
            rule = BuildRule(rule_id=self.state.new_rule_id(ENTERPRISE), **fields)
            repo.rules[rule.rule_id] = rule
        return {"BuildRuleId": rule.rule_id}

    def op_UpdateRepoBuildRule(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        rule = self._rule(repo, p)
        fields = self._rule_fields(p, partial=True)
        with self.state.lock:
            for key, value in fields.items():
                setattr(rule, key, value)
        return {"BuildRuleId": rule.rule_id}

    def op_ListRepoBuildRule(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        page, size = self._page(p)
        rules = list(repo.rules.values())
        return {
            "BuildRules": [self._rule_json(r) for r in page_slice(rules, page, size)],
            "TotalCount": len(rules),
            "PageNo": page,
            "PageSize": size,
        }

    def op_DeleteRepoBuildRule(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        rule = self._rule(repo, p)
        with self.state.lock:
            repo.rules.pop(rule.rule_id, None)
        return {}

    # -- builds --------------------------------------------------------------------------------

    def op_CreateBuildRecordByRule(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        rule = self._rule(repo, p)
        build = self.backend.start_build(repo, rule, _ee_factory)
        return {"BuildRecordId": build.build_id}

    def op_GetRepoBuildRecordStatus(self, p: Params) -> dict[str, Any]:
        build = self._build(p, self._repo(p))
        # The doc example of this operation is lower-case ("success") while ListRepoBuildRecord
        # shows "SUCCESS" (Alibaba doc 142770; nanoric/docker-mirror-creator); reproducing
        # both forces case-insensitive clients.
        return {"BuildStatus": self.quirks.build_status(build.status).lower()}

    def _record_json(self, build: Build) -> dict[str, Any]:
        return {
            "BuildRecordId": build.build_id,
            "BuildStatus": self.quirks.build_status(build.status),
            "StartTime": build.created,
            "EndTime": build.finished,
            "Image": {
                "ImageTag": build.image_tag,
                "RepoId": build.repo_id,
                "RepoName": build.repo_name,
                "RepoNamespaceName": build.namespace,
            },
        }

    def op_GetRepoBuildRecord(self, p: Params) -> dict[str, Any]:
        build = self._build(p)
        record = self._record_json(build)
        record["Status"] = record.pop("BuildStatus")  # this operation names it Status
        return record

    def op_ListRepoBuildRecord(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        page, size = self._page(p)
        builds = list(self.state.builds_of(repo))  # oldest first
        if self.quirks.build_list_order == "newest-first":  # UNCONFIRMED: Quirks
            builds.reverse()
        return {
            "BuildRecords": [self._record_json(b) for b in page_slice(builds, page, size)],
            "TotalCount": len(builds),
            "PageNo": page,
            "PageSize": size,
        }

    def op_CancelRepoBuildRecord(self, p: Params) -> dict[str, Any]:
        build = self._build(p, self._repo(p))
        self.backend.runner.cancel(build)
        return {}

    # -- tags ----------------------------------------------------------------------------------

    @staticmethod
    def _image_json(row: TagRow) -> dict[str, Any]:
        return {
            "Tag": row.info.tag,
            "Digest": bare_hex(row.info.digest),
            "ImageId": bare_hex(row.info.image_id),
            "ImageSize": row.info.size,
            "ImageCreate": row.created,
            "ImageUpdate": row.updated,
            "Status": "NORMAL",
        }

    def op_ListRepoTag(self, p: Params) -> dict[str, Any]:
        repo = self._repo(p)
        page, size = self._page(p)
        rows = self.backend.tags(repo)
        return {
            "Images": [self._image_json(r) for r in page_slice(rows, page, size)],
            "TotalCount": len(rows),
            "PageNo": page,
            "PageSize": size,
        }
