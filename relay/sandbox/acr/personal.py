"""The personal edition, API version 2016-06-07 (ROA): routes, body rules, responses.

Requests: PascalCase keys inside a PascalCase wrapper, ``Content-Type: application/json``;
anything else is ``REQUEST_BODY_FORMAT_INVALID`` (Alibaba doc 72396; aliyun/aliyun-cli#397).
Responses: camelCase inside ``{"data": {...}, "requestId": ...}`` (the server adds the
envelope). Service errors: lower-case
``{"code","message"}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay.sandbox.acr import errors
from relay.sandbox.acr.backend import EditionApi, TagRow, bare_hex, page_slice
from relay.sandbox.acr.state import (
    DETAIL_MAX,
    DOCKERFILE_LOCATION_LEN,
    DOCKERFILE_NAME_LEN,
    NAMESPACE_LEN,
    NAMESPACE_RE,
    PERSONAL,
    PUSH_TYPES,
    REPO_BUILD_TYPES,
    REPO_DOT_RE,
    REPO_NAME_MIN,
    REPO_RE,
    REPO_TYPES,
    SOURCE_REPO_TYPES,
    SUMMARY_LEN,
    TAG_RE,
    Build,
    BuildRule,
    Namespace,
    Repo,
    SourceBinding,
    now_ms,
)

# --- Body shapes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class F:
    """A body field: its JSON type (str/bool/int or a nested shape) and whether it is required."""

    kind: Any
    required: bool = False


Shape = dict[str, F]

NAMESPACE_CREATE: Shape = {"Namespace": F({"Namespace": F(str, True)}, True)}
NAMESPACE_UPDATE: Shape = {
    "Namespace": F({"AutoCreate": F(bool), "DefaultVisibility": F(str)}, True)
}
REPO_SOURCE: Shape = {
    "Source": F(
        {
            "SourceRepoType": F(str, True),
            "SourceRepoNamespace": F(str, True),
            "SourceRepoName": F(str, True),
        },
        True,
    ),
    "BuildConfig": F(
        {"IsAutoBuild": F(bool), "IsOversea": F(bool), "IsDisableCache": F(bool)}, True
    ),
}
REPO_CREATE: Shape = {
    "Repo": F(
        {
            "RepoNamespace": F(str, True),
            "RepoName": F(str, True),
            "Summary": F(str, True),
            "RepoType": F(str, True),
            "Detail": F(str),
            # Undocumented but sent by real clients (nanoric/docker-mirror-creator).
            "RepoBuildType": F(str),
            "Region": F(str),
            "RepoNamespaceName": F(str),
        },
        True,
    ),
    # Undocumented GitHub binding (nanoric/docker-mirror-creator; lizebang/aliyun-go-sdk-cr);
    # UNCONFIRMED that the server honours it: Quirks.create_repo_source.
    "RepoSource": F(REPO_SOURCE),
}
REPO_UPDATE: Shape = {
    "Repo": F({"Summary": F(str), "Detail": F(str), "RepoType": F(str)}, True),
}
SOURCE_UPDATE: Shape = {"RepoSource": F(REPO_SOURCE, True)}  # body UNCONFIRMED (same shape)
_RULE_FIELDS: Shape = {
    "PushType": F(str, True),
    "PushName": F(str, True),
    "DockerfileLocation": F(str, True),
    "DockerfileName": F(str, True),
    "Tag": F(str),
    "ImageTag": F(str),
}
RULE_CREATE: Shape = {"BuildRule": F(_RULE_FIELDS, True)}
RULE_UPDATE: Shape = {"BuildRule": F({k: F(f.kind) for k, f in _RULE_FIELDS.items()}, True)}


def _check_shape(value: Any, shape: Shape) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.body_format_invalid()
    if any(key not in shape for key in value):  # wrong casing lands here: {"repoName": ...}
        raise errors.body_format_invalid()
    out: dict[str, Any] = {}
    for key, spec in shape.items():
        v = value.get(key)
        if v is None:
            if spec.required:
                raise errors.body_format_invalid()
            continue
        if isinstance(spec.kind, dict):
            out[key] = _check_shape(v, spec.kind)
        elif spec.kind is bool:
            if not isinstance(v, bool):
                raise errors.body_format_invalid()
            out[key] = v
        elif spec.kind is int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise errors.body_format_invalid()
            out[key] = v
        else:
            if not isinstance(v, str):
                raise errors.body_format_invalid()
            out[key] = v
    return out


def parse_body(req: RoaRequest, shape: Shape) -> dict[str, Any]:
    ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json" or not req.body:
        raise errors.body_format_invalid()
    try:
        value = json.loads(req.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise errors.body_format_invalid() from None
    return _check_shape(value, shape)


# --- Value rules -------------------------------------------------------------------------------


def _param_invalid(field_name: str, detail: str) -> errors.ServiceError:
    return errors.service(errors.PARAM_INVALID, f"{field_name} is invalid: {detail}")


def _length(field_name: str, value: str, lo: int, hi: int) -> None:
    if not lo <= len(value) <= hi:
        raise _param_invalid(field_name, f"length must be {lo}-{hi}")


def _enum(field_name: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise _param_invalid(field_name, f"must be one of {sorted(allowed)}")


def _positive_int(req: RoaRequest, name: str, default: int) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _param_invalid(name, "must be an integer") from None
    if value < 1:
        raise _param_invalid(name, "must be >= 1")
    return value


# --- Requests and routes -----------------------------------------------------------------------


@dataclass
class RoaRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # path parameters


@dataclass(frozen=True)
class Flat:
    """A response body sent as is, without the data/requestId envelope (GetRepoTag)."""

    body: dict[str, Any]


Handler = Callable[["PersonalApi", RoaRequest], Any]

_SEG = r"(?P<{}>[^/]+)"
_REPO = "/repos/" + _SEG.format("ns") + "/" + _SEG.format("repo")
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile("^" + p + "$"), a)
    for m, p, a in [
        ("PUT", "/namespace", "CreateNamespace"),
        ("GET", "/namespace", "GetNamespaceList"),
        ("GET", "/namespace/" + _SEG.format("ns"), "GetNamespace"),
        ("POST", "/namespace/" + _SEG.format("ns"), "UpdateNamespace"),
        ("DELETE", "/namespace/" + _SEG.format("ns"), "DeleteNamespace"),
        ("PUT", "/repos", "CreateRepo"),
        ("GET", "/repos", "GetRepoList"),
        ("GET", "/repos/" + _SEG.format("ns"), "GetRepoListByNamespace"),
        ("GET", _REPO, "GetRepo"),
        ("POST", _REPO, "UpdateRepo"),
        ("DELETE", _REPO, "DeleteRepo"),
        ("GET", _REPO + "/sourceRepo", "GetRepoSourceRepo"),
        ("POST", _REPO + "/sourceRepo", "UpdateRepoSourceRepo"),
        ("PUT", _REPO + "/rules", "CreateRepoBuildRule"),
        ("GET", _REPO + "/rules", "GetRepoBuildRuleList"),
        ("POST", _REPO + "/rules/" + _SEG.format("rule"), "UpdateRepoBuildRule"),
        ("DELETE", _REPO + "/rules/" + _SEG.format("rule"), "DeleteRepoBuildRule"),
        ("PUT", _REPO + "/rules/" + _SEG.format("rule") + "/build", "StartRepoBuildByRule"),
        ("GET", _REPO + "/build", "GetRepoBuildList"),
        ("GET", _REPO + "/build/" + _SEG.format("build") + "/status", "GetRepoBuildStatus"),
        ("GET", _REPO + "/build/" + _SEG.format("build") + "/logs", "GetRepoBuildLogs"),
        ("POST", _REPO + "/build/" + _SEG.format("build") + "/cancel", "CancelRepoBuild"),
        ("GET", _REPO + "/tags", "GetRepoTags"),
        ("GET", _REPO + "/tags/" + _SEG.format("tag"), "GetRepoTag"),
        ("GET", "/tokens", "GetAuthorizationToken"),
    ]
]


def match(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    for m, pattern, action in ROUTES:
        if m == method:
            found = pattern.match(path)
            if found:
                return action, found.groupdict()
    return None


# --- The API -----------------------------------------------------------------------------------


class PersonalApi(EditionApi):
    def handle(self, action: str, req: RoaRequest) -> Any:
        handler: Handler = getattr(type(self), "op_" + action)
        return handler(self, req)

    # -- lookups -------------------------------------------------------------------------------

    def _namespace(self, name: str) -> Namespace:
        ns = self.state.namespaces.get((PERSONAL, name))
        if ns is None:
            raise errors.not_exist(errors.NAMESPACE_NOT_EXIST, f"namespace {name}")
        return ns

    def _repo(self, req: RoaRequest) -> Repo:
        ns, name = req.params["ns"], req.params["repo"]
        self._namespace(ns)
        repo = self.state.repos.get((PERSONAL, ns, name))
        if repo is None:
            raise errors.not_exist(errors.REPO_NOT_EXIST, f"repository {ns}/{name}")
        return repo

    def _rule(self, repo: Repo, rule_id: str) -> BuildRule:
        rule = repo.rules.get(rule_id)
        if rule is None:
            raise errors.not_exist(errors.BUILD_RULE_NOT_EXIST, f"build rule {rule_id}")
        return rule

    def _build(self, repo: Repo, build_id: str) -> Build:
        build = self.state.builds.get(build_id)
        if build is None or build.edition != PERSONAL or build.repo_id != repo.repo_id:
            raise errors.not_exist(errors.BUILD_NOT_EXIST, f"build {build_id}")
        return build

    # -- namespaces ----------------------------------------------------------------------------

    @staticmethod
    def _ns_json(ns: Namespace, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "namespace": ns.name,
            "authorizeType": "ADMIN",
            "namespaceStatus": "NORMAL",
        }
        if full:
            out["defaultVisibility"] = ns.default_visibility
            out["autoCreate"] = ns.auto_create
        return out

    def op_CreateNamespace(self, req: RoaRequest) -> dict[str, Any]:
        name = parse_body(req, NAMESPACE_CREATE)["Namespace"]["Namespace"]
        _length("Namespace", name, *NAMESPACE_LEN)
        if not NAMESPACE_RE.match(name):
            raise _param_invalid("Namespace", "lower-case letters, digits, '_' and '-'")
        with self.state.lock:
            if (PERSONAL, name) in self.state.namespaces or name in self.backend.foreign_namespaces:
                raise errors.service(*self.quirks.exists_error("NAMESPACE", f"namespace {name}"))
            self.backend.check_namespace_quota(PERSONAL, errors.service)
            self.state.namespaces[(PERSONAL, name)] = Namespace(PERSONAL, name)
        return {}  # response body UNCONFIRMED

    def op_UpdateNamespace(self, req: RoaRequest) -> dict[str, Any]:
        ns = self._namespace(req.params["ns"])
        body = parse_body(req, NAMESPACE_UPDATE)["Namespace"]
        if not body:
            raise errors.body_format_invalid()
        if "DefaultVisibility" in body:
            _enum("DefaultVisibility", body["DefaultVisibility"], REPO_TYPES)
        with self.state.lock:
            ns.default_visibility = body.get("DefaultVisibility", ns.default_visibility)
            ns.auto_create = body.get("AutoCreate", ns.auto_create)
        return {}

    def op_GetNamespace(self, req: RoaRequest) -> dict[str, Any]:
        return {"namespace": self._ns_json(self._namespace(req.params["ns"]))}

    def op_GetNamespaceList(self, req: RoaRequest) -> dict[str, Any]:
        items = sorted(self.state.namespaces_of(PERSONAL), key=lambda n: n.name)
        return {"namespaces": [self._ns_json(ns, full=False) for ns in items]}

    def op_DeleteNamespace(self, req: RoaRequest) -> dict[str, Any]:
        ns = self._namespace(req.params["ns"])
        with self.state.lock:
            for repo in self.state.repos_of(PERSONAL, ns.name):
                del self.state.repos[repo.key]
            del self.state.namespaces[(PERSONAL, ns.name)]
        return {}

    # -- repositories --------------------------------------------------------------------------

    def _repo_json(self, repo: Repo) -> dict[str, Any]:
        region = self.state.region
        return {
            "summary": repo.summary,
            "repoId": repo.repo_id,
            "gmtCreate": repo.created,
            "gmtModified": repo.modified,
            "repoNamespace": repo.namespace,
            "repoName": repo.name,
            "repoBuildType": repo.repo_build_type,
            "repoType": repo.repo_type,
            "repoDomainList": {
                "public": self.backend.registry_domain,
                "internal": f"registry-internal.{region}.aliyuncs.com",
                "vpc": f"registry-vpc.{region}.aliyuncs.com",
            },
            "regionId": region,
            "repoStatus": "NORMAL",
            "detail": repo.detail,
            "repoAuthorizeType": "ADMIN",
            "repoOriginType": "ALI_HUB",  # UNCONFIRMED value
            "logo": "",
            "stars": 0,
            "downloads": 0,
        }

    def _repo_name_ok(self, name: str) -> None:
        _length("RepoName", name, REPO_NAME_MIN, self.state.limits.repo_name_max)
        if self.quirks.repo_name_dots:
            if not REPO_DOT_RE.match(name):
                raise _param_invalid("RepoName", "lower-case letters, digits, '.', '_' and '-'")
        elif not REPO_RE.match(name):
            raise _param_invalid("RepoName", "lower-case letters, digits, '_' and '-'")

    def _source(self, body: dict[str, Any]) -> SourceBinding:
        src, cfg = body["Source"], body["BuildConfig"]
        _enum("SourceRepoType", src["SourceRepoType"], SOURCE_REPO_TYPES)
        if cfg.get("IsOversea") and self.quirks.overseas_build == "refused":
            raise _param_invalid("IsOversea", "overseas build is not offered")
        return SourceBinding(
            repo_type=src["SourceRepoType"],
            namespace=src["SourceRepoNamespace"],
            name=src["SourceRepoName"],
            auto_build=cfg.get("IsAutoBuild", False),
            oversea=cfg.get("IsOversea", False),
            disable_cache=cfg.get("IsDisableCache", False),
        )

    def op_CreateRepo(self, req: RoaRequest) -> dict[str, Any]:
        body = parse_body(req, REPO_CREATE)
        spec = body["Repo"]
        ns_name, name = spec["RepoNamespace"], spec["RepoName"]
        self._repo_name_ok(name)
        _length("Summary", spec["Summary"], *SUMMARY_LEN)
        _enum("RepoType", spec["RepoType"], REPO_TYPES)
        if len(spec.get("Detail", "")) > DETAIL_MAX:
            raise _param_invalid("Detail", f"at most {DETAIL_MAX} characters")
        if "RepoBuildType" in spec:
            _enum("RepoBuildType", spec["RepoBuildType"], REPO_BUILD_TYPES)
        honoured = "RepoSource" in body and self.quirks.create_repo_source == "honour"
        source = self._source(body["RepoSource"]) if honoured else None
        with self.state.lock:
            self._namespace(ns_name)
            if (PERSONAL, ns_name, name) in self.state.repos:
                raise errors.service(
                    *self.quirks.exists_error("REPO", f"repository {ns_name}/{name}")
                )
            self.backend.check_repo_quota(PERSONAL, errors.service)
            repo = Repo(
                edition=PERSONAL,
                namespace=ns_name,
                name=name,
                repo_id=self.state.new_repo_id(PERSONAL),
                summary=spec["Summary"],
                detail=spec.get("Detail", ""),
                repo_type=spec["RepoType"],
                repo_build_type=spec.get(
                    "RepoBuildType", "AUTO_BUILD" if source and source.auto_build else "MANUAL"
                ),
                source=source,
            )
            self.state.repos[repo.key] = repo
        return {}

    def op_GetRepo(self, req: RoaRequest) -> dict[str, Any]:
        return {"repo": self._repo_json(self._repo(req))}

    def op_UpdateRepo(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        spec = parse_body(req, REPO_UPDATE)["Repo"]
        if not spec:
            raise errors.body_format_invalid()
        if "Summary" in spec:
            _length("Summary", spec["Summary"], *SUMMARY_LEN)
        if "RepoType" in spec:
            _enum("RepoType", spec["RepoType"], REPO_TYPES)
        if len(spec.get("Detail", "")) > DETAIL_MAX:
            raise _param_invalid("Detail", f"at most {DETAIL_MAX} characters")
        with self.state.lock:
            repo.summary = spec.get("Summary", repo.summary)
            repo.detail = spec.get("Detail", repo.detail)
            repo.repo_type = spec.get("RepoType", repo.repo_type)
            repo.modified = now_ms()
        return {}

    def op_DeleteRepo(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        with self.state.lock:
            self.state.repos.pop(repo.key, None)
        return {}

    def _list_repos(self, req: RoaRequest, namespace: str | None) -> dict[str, Any]:
        page = _positive_int(req, "Page", 1)
        # Default UNCONFIRMED (doc example: 30); the maximum is Quirks.personal_page_size_cap.
        size = self.quirks.page_size(_positive_int(req, "PageSize", 30))
        status = req.query.get("Status", "ALL")
        repos = sorted(self.state.repos_of(PERSONAL, namespace), key=lambda r: r.name)
        if status not in ("ALL", "NORMAL"):
            repos = []  # every emulated repo is NORMAL
        return {
            "repos": [self._repo_json(r) for r in page_slice(repos, page, size)],
            "page": page,
            "pageSize": size,
            "total": len(repos),
        }

    def op_GetRepoList(self, req: RoaRequest) -> dict[str, Any]:
        return self._list_repos(req, None)

    def op_GetRepoListByNamespace(self, req: RoaRequest) -> dict[str, Any]:
        self._namespace(req.params["ns"])
        return self._list_repos(req, req.params["ns"])

    # -- source binding ------------------------------------------------------------------------

    def op_GetRepoSourceRepo(self, req: RoaRequest) -> dict[str, Any]:
        if self.quirks.source_routes == "absent":
            raise errors.api_not_found()
        repo = self._repo(req)
        src = repo.source
        if src is None:  # answer UNCONFIRMED: Quirks.unbound_source
            if self.quirks.unbound_source == "empty":
                return {}
            raise errors.not_exist(
                errors.REPO_SOURCE_NOT_EXIST, f"code source of {repo.namespace}/{repo.name}"
            )
        # Layout UNCONFIRMED (Quirks.source_layout): the request's block, camelCased.
        source = {
            "sourceRepoType": src.repo_type,
            "sourceRepoNamespace": src.namespace,
            "sourceRepoName": src.name,
        }
        config = {
            "isAutoBuild": src.auto_build,
            "isOversea": src.oversea,
            "isDisableCache": src.disable_cache,
        }
        layout = self.quirks.source_layout
        if layout == "flat":
            return {**source, **config}
        return {layout: {"source": source, "buildConfig": config}}

    def op_UpdateRepoSourceRepo(self, req: RoaRequest) -> dict[str, Any]:
        if self.quirks.source_routes == "absent":
            raise errors.api_not_found()
        repo = self._repo(req)
        source = self._source(parse_body(req, SOURCE_UPDATE)["RepoSource"])
        with self.state.lock:
            repo.source = source
            repo.modified = now_ms()
        return {}

    # -- build rules ---------------------------------------------------------------------------

    @staticmethod
    def _rule_values(spec: dict[str, Any]) -> None:
        if "PushType" in spec:
            _enum("PushType", spec["PushType"], PUSH_TYPES)
        if "PushName" in spec and not spec["PushName"]:
            raise _param_invalid("PushName", "must not be empty")
        if "DockerfileLocation" in spec:
            _length("DockerfileLocation", spec["DockerfileLocation"], *DOCKERFILE_LOCATION_LEN)
        if "DockerfileName" in spec:
            _length("DockerfileName", spec["DockerfileName"], *DOCKERFILE_NAME_LEN)
        for key in ("Tag", "ImageTag"):
            if key in spec and not TAG_RE.match(spec[key]):
                raise _param_invalid(key, "not a valid image tag")

    @staticmethod
    def _rule_json(rule: BuildRule) -> dict[str, Any]:
        return {
            "dockerfileName": rule.dockerfile_name,
            "dockerfileLocation": rule.dockerfile_location,
            "buildRuleId": rule.rule_id,
            "imageTag": rule.image_tag,
            "pushName": rule.push_name,
            "pushType": rule.push_type,
        }

    def op_CreateRepoBuildRule(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        spec = parse_body(req, RULE_CREATE)["BuildRule"]
        self._rule_values(spec)
        # Which of Tag/ImageTag names the image is UNCONFIRMED (Quirks.rule_image_tag_field):
        # that one is required, the other is kept as sent.
        image_tag = spec.get(self.quirks.rule_image_tag_field)
        if not image_tag:
            raise errors.body_format_invalid()
        with self.state.lock:
            self.backend.check_rule_quota(repo, errors.service)
            rule = BuildRule(
                rule_id=self.state.new_rule_id(PERSONAL),
                push_type=spec["PushType"],
                push_name=spec["PushName"],
                dockerfile_location=spec["DockerfileLocation"],
                dockerfile_name=spec["DockerfileName"],
                image_tag=image_tag,
                tag=spec.get("Tag"),
            )
            repo.rules[str(rule.rule_id)] = rule
        return {"buildRuleId": rule.rule_id}

    def op_GetRepoBuildRuleList(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        return {"buildRules": [self._rule_json(r) for r in repo.rules.values()]}

    def op_UpdateRepoBuildRule(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        rule = self._rule(repo, req.params["rule"])
        spec = parse_body(req, RULE_UPDATE)["BuildRule"]
        if not spec:
            raise errors.body_format_invalid()
        self._rule_values(spec)
        with self.state.lock:
            rule.push_type = spec.get("PushType", rule.push_type)
            rule.push_name = spec.get("PushName", rule.push_name)
            rule.dockerfile_location = spec.get("DockerfileLocation", rule.dockerfile_location)
            rule.dockerfile_name = spec.get("DockerfileName", rule.dockerfile_name)
            rule.image_tag = spec.get(self.quirks.rule_image_tag_field) or rule.image_tag
            rule.tag = spec.get("Tag", rule.tag)
        return {"buildRuleId": rule.rule_id}

    def op_DeleteRepoBuildRule(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        rule = self._rule(repo, req.params["rule"])
        with self.state.lock:
            repo.rules.pop(str(rule.rule_id), None)
        return {}  # response body UNCONFIRMED

    # -- builds --------------------------------------------------------------------------------

    def op_StartRepoBuildByRule(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        rule = self._rule(repo, req.params["rule"])
        build = self.backend.start_build(repo, rule, errors.service)
        # Response UNCONFIRMED (no doc page shows it): Quirks.start_build_returns_id. Without
        # an id, clients find the new build with GetRepoBuildList.
        return {"buildId": build.build_id} if self.quirks.start_build_returns_id else {}

    def _build_json(self, build: Build) -> dict[str, Any]:
        return {
            "buildId": build.build_id,
            "buildStatus": self.quirks.build_status(build.status),
            "startTime": build.created,
            "endTime": build.finished,
            "image": {
                "repoNamespace": build.namespace,
                "repoName": build.repo_name,
                "tag": build.image_tag,
                "region": self.state.region,
            },
        }

    def op_GetRepoBuildList(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        page = _positive_int(req, "Page", 1)
        size = self.quirks.page_size(_positive_int(req, "PageSize", 30))
        builds = list(self.state.builds_of(repo))  # oldest first
        if self.quirks.build_list_order == "newest-first":  # UNCONFIRMED: Quirks
            builds.reverse()
        return {
            "builds": [self._build_json(b) for b in page_slice(builds, page, size)],
            "page": page,  # paging fields UNCONFIRMED
            "pageSize": size,
            "total": len(builds),
        }

    def op_GetRepoBuildStatus(self, req: RoaRequest) -> dict[str, Any]:
        build = self._build(self._repo(req), req.params["build"])
        return {"buildStatus": self.quirks.build_status(build.status)}

    def op_GetRepoBuildLogs(self, req: RoaRequest) -> dict[str, Any]:
        build = self._build(self._repo(req), req.params["build"])
        with self.state.lock:
            lines = list(build.log)
        # Shape UNCONFIRMED (the operation is only in other SDKs).
        return {"buildLogs": [{"lineNumber": i + 1, "message": m} for i, m in enumerate(lines)]}

    def op_CancelRepoBuild(self, req: RoaRequest) -> dict[str, Any]:
        build = self._build(self._repo(req), req.params["build"])
        # Cancelling a finished build is a no-op here; the vendor's answer is UNCONFIRMED.
        self.backend.runner.cancel(build)
        return {}

    # -- tags ----------------------------------------------------------------------------------

    @staticmethod
    def _tag_json(row: TagRow) -> dict[str, Any]:
        return {
            "imageUpdate": row.updated,
            "imageCreate": row.created,
            "imageId": bare_hex(row.info.image_id),
            "digest": bare_hex(row.info.digest),
            "imageSize": row.info.size,
            "tag": row.info.tag,
            "status": "NORMAL",
        }

    def op_GetRepoTags(self, req: RoaRequest) -> dict[str, Any]:
        repo = self._repo(req)
        page = _positive_int(req, "Page", 1)
        size = self.quirks.page_size(_positive_int(req, "PageSize", 30))
        rows = self.backend.tags(repo)
        return {
            "tags": [self._tag_json(r) for r in page_slice(rows, page, size)],
            "page": page,
            "pageSize": size,
            "total": len(rows),
        }

    def op_GetRepoTag(self, req: RoaRequest) -> Flat:
        repo = self._repo(req)
        row = self.backend.tag(repo, req.params["tag"])
        if row is None:
            raise errors.not_exist(errors.TAG_NOT_EXIST, f"tag {req.params['tag']}")
        # The doc shows this one flat, without the data wrapper (UNCONFIRMED); the server
        # adds requestId.
        return Flat(self._tag_json(row))

    # -- auth ----------------------------------------------------------------------------------

    def op_GetAuthorizationToken(self, req: RoaRequest) -> dict[str, Any]:
        return {
            "authorizationToken": self.token_password,
            "tempUserName": self.token_user,
            "expireDate": now_ms() + 3600 * 1000,  # valid for 1 h
        }
