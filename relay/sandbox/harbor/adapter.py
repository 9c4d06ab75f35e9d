"""What Harbor's ``ali-acr`` adapter does (``src/pkg/reg/adapter/aliacr``), done for real.

* :func:`ping`: ``util.Ping`` -- an unauthenticated ``GET <url>/v2/`` and the Bearer challenge's
  ``realm`` and ``service``.
* :func:`parse_service`: ``parseRegistryService`` -- ``registry.aliyuncs.com:<region>:...``,
  Enterprise Edition when the last part starts with ``cri-``.
* :class:`OpenApi`: the ACR OpenAPI calls the adapter makes (personal 2016-06-07:
  GetNamespaceList, GetRepoListByNamespace, GetRepoTags, GetAuthorizationToken; Enterprise
  2018-12-01: ListNamespace, ListRepository, ListRepoTag, GetAuthorizationToken), signed with
  the registry's stored AccessKey by the Alibaba SDK, and counted.
* :meth:`Adapter.health_check`: the native adapter's ``Ping`` with the aliyun credential
  modifier: temporary credentials from GetAuthorizationToken, used as Basic auth at the token
  realm, then ``GET /v2/`` with the Bearer token.
* :meth:`Adapter.fetch_artifacts`: ``FetchArtifacts`` -- namespaces from the name filter when
  literal, repositories, doublestar match, tags, tag filter.

The real adapter talks to ``cr.<region>.aliyuncs.com``; the emulator takes an override endpoint
(the ACR emulator's), and a host map standing in for DNS so realistic registry URLs reach the
local stand-in registry.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from relay.sandbox.common.registry import parse_challenge, session
from relay.sandbox.harbor import patterns
from relay.sandbox.harbor.state import Filter

ACR_SERVICE = "registry.aliyuncs.com"  # registryACRService in aliacr/types.go
_CR_URL = re.compile(r"https://cr\.([\w\-]+)\.aliyuncs\.com")  # regACRServiceURL
# Before v2.12 only these URLs were accepted (aliacr/adapter.go at v2.11.0; -vpc and -internal
# since v2.8.0).
_OLD_URL = re.compile(
    r"https://(registry|cr|registry-vpc|registry-internal)\.([\w\-]+)\.aliyuncs\.com"
)
_OLD_URL_BEFORE_2_8 = re.compile(r"https://(registry|cr)\.([\w\-]+)\.aliyuncs\.com")


class AdapterError(Exception):
    """A plain Go error from the adapter: the API answers 500, the text goes to the core log."""


class Unhealthy(Exception):
    """The health check failed (the API answers 400 "the registry is unhealthy")."""


def rewrite_cr_url(url: str) -> str:
    """``getRegistryURL``: ``https://cr.<region>.aliyuncs.com`` -> ``https://registry.<region>...``."""
    found = _CR_URL.search(url)
    if found is None:
        return url
    return f"https://registry.{found.group(1)}.aliyuncs.com"


def check_old_url(url: str, *, vpc_urls: bool) -> None:
    pattern = _OLD_URL if vpc_urls else _OLD_URL_BEFORE_2_8
    if not pattern.search(url):
        raise AdapterError("Invalid Rgistry|CR service url")


@dataclass(frozen=True)
class ServiceInfo:
    region: str
    instance_id: str | None  # set for Enterprise Edition

    @property
    def enterprise(self) -> bool:
        return self.instance_id is not None


def parse_service(service: str) -> ServiceInfo:
    parts = service.split(":")
    if len(parts) < 2:
        raise AdapterError("invalid service format: expected 'registry.aliyuncs.com:region:xxxxx'")
    if parts[0].lower() != ACR_SERVICE:
        raise AdapterError("not a acr service")
    if parts[-1].startswith("cri-"):
        return ServiceInfo(parts[1], parts[-1])
    return ServiceInfo(parts[1], None)


@dataclass
class Net:
    """How the emulated Harbor host reaches the network: DNS stand-in and trust."""

    host_map: Mapping[str, str] = field(default_factory=dict)  # "host" or "host:port" -> addr
    trust_ca_file: str | None = None  # the CA bundle the Harbor host trusts besides the system
    timeout: float = 10.0

    def resolve(self, url: str) -> str:
        """The URL with its host replaced as the host map says (like /etc/hosts plus a port)."""
        parts = urlsplit(url)
        netloc = parts.netloc
        target = self.host_map.get(netloc) or self.host_map.get(parts.hostname or "")
        if target is None:
            return url
        return urlunsplit((parts.scheme, target, parts.path, parts.query, parts.fragment))

    def resolve_host(self, host: str) -> str:
        return self.host_map.get(host) or self.host_map.get(host.split(":")[0]) or host

    def verify(self, insecure: bool, ca_file: str | None) -> str | bool:
        if insecure:
            return False
        return ca_file or self.trust_ca_file or True


def ping(net: Net, url: str, verify: str | bool) -> tuple[str, str]:
    """``util.Ping``: (realm, service) of the registry's Bearer challenge."""
    try:
        with session() as s:
            resp = s.get(net.resolve(url) + "/v2/", verify=verify, timeout=net.timeout)
    except requests.RequestException as exc:
        raise AdapterError(f'Get "{url}/v2/": {exc}') from None
    challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
    if challenge is None or challenge.scheme != "bearer":
        shown = [] if challenge is None else [challenge.scheme]
        raise AdapterError(f"bearer auth scheme isn't supported: {shown}")
    return challenge.params.get("realm", ""), challenge.params.get("service", "")


@dataclass(frozen=True)
class Repository:
    namespace: str
    name: str
    id: str = ""  # Enterprise Edition RepoId

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class TempToken:
    user: str
    password: str = field(repr=False)


class OpenApiError(Exception):
    """An SDK error, worded like the Go SDK's ServerError / ClientError (Harbor logs those)."""


class OpenApi:
    """The adapter's ACR OpenAPI client; every call is counted in ``counts`` (by action)."""

    def __init__(
        self,
        access_key: str,
        access_secret: str,
        info: ServiceInfo,
        *,
        endpoint: str | None,
        counts: Counter[str],
        counts_lock: threading.Lock,
        timeout: float = 10.0,
    ) -> None:
        from aliyunsdkcore.client import AcsClient

        self.info = info
        self._counts = counts
        self._counts_lock = counts_lock
        # The real adapter signs with the stored AccessKey against cr.<region>.aliyuncs.com
        # (endpointTpl), even for Enterprise Edition ("FIXME: use vpc endpoint").
        self.endpoint = endpoint or f"cr.{info.region}.aliyuncs.com"
        self._https = endpoint is None
        self._client = AcsClient(
            access_key,
            access_secret,
            info.region,
            auto_retry=False,  # the Python SDK retries nothing for cr anyway
            proxy={"http": None, "https": None},  # NO_PROXY is ignored by the SDK
            timeout=timeout,
            connect_timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"OpenApi({self.endpoint!r}, region={self.info.region!r})"

    def _call(self, action: str, request: Any) -> dict[str, Any]:
        from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException

        request.set_endpoint(self.endpoint)
        if self._https:
            request.set_protocol_type("https")
        with self._counts_lock:
            self._counts[action] += 1
        try:
            raw = self._client.do_action_with_exception(request)
        except ServerException as exc:
            raise OpenApiError(
                "SDK.ServerError\n"
                f"ErrorCode: {exc.get_error_code()}\n"
                f"RequestId: {exc.get_request_id()}\n"
                f"Message: {exc.get_error_msg()}"
            ) from None
        except ClientException as exc:
            raise OpenApiError(f"[{exc.get_error_code()}] {exc.get_error_msg()}") from None
        body: dict[str, Any] = json.loads(raw)
        return body

    def get_token(self) -> TempToken:
        if self.info.enterprise:
            from aliyunsdkcr.request.v20181201.GetAuthorizationTokenRequest import (
                GetAuthorizationTokenRequest as EeToken,
            )

            req = EeToken()
            req.set_InstanceId(self.info.instance_id)
            body = self._call("GetAuthorizationToken", req)
            if not body.get("IsSuccess", False):
                raise OpenApiError(f"failed to get authorization token: {json.dumps(body)}")
            return TempToken(body["TempUsername"], body["AuthorizationToken"])
        from aliyunsdkcr.request.v20160607.GetAuthorizationTokenRequest import (
            GetAuthorizationTokenRequest,
        )

        data = self._call("GetAuthorizationToken", GetAuthorizationTokenRequest())["data"]
        return TempToken(data["tempUserName"], data["authorizationToken"])

    def list_namespaces(self) -> list[str]:
        if self.info.enterprise:
            from aliyunsdkcr.request.v20181201.ListNamespaceRequest import ListNamespaceRequest

            names: list[str] = []
            page = 1
            while True:
                req = ListNamespaceRequest()
                req.set_InstanceId(self.info.instance_id)
                req.set_PageNo(page)
                body = self._call("ListNamespace", req)
                names += [ns["NamespaceName"] for ns in body.get("Namespaces") or []]
                if not body.get("IsSuccess", False):
                    raise OpenApiError(f"failed to list namespace: {json.dumps(body)}")
                if int(body["TotalCount"]) - int(body["PageNo"]) * int(body["PageSize"]) <= 0:
                    return names
                page += 1
        from aliyunsdkcr.request.v20160607.GetNamespaceListRequest import GetNamespaceListRequest

        data = self._call("GetNamespaceList", GetNamespaceListRequest())["data"]
        return [ns["namespace"] for ns in data.get("namespaces") or []]

    def list_repositories(self, namespace: str) -> list[Repository]:
        repos: list[Repository] = []
        page = 1
        while True:
            if self.info.enterprise:
                from aliyunsdkcr.request.v20181201.ListRepositoryRequest import (
                    ListRepositoryRequest,
                )

                ee = ListRepositoryRequest()
                ee.set_InstanceId(self.info.instance_id)
                ee.set_RepoNamespaceName(namespace)
                ee.set_RepoStatus("NORMAL")
                ee.set_PageNo(page)
                body = self._call("ListRepository", ee)
                if not body.get("IsSuccess", False):
                    raise OpenApiError(f"failed to list repo: {json.dumps(body)}")
                repos += [
                    Repository(r["RepoNamespaceName"], r["RepoName"], str(r["RepoId"]))
                    for r in body.get("Repositories") or []
                ]
                if int(body["TotalCount"]) <= page * int(body["PageSize"]):
                    return repos
            else:
                from aliyunsdkcr.request.v20160607.GetRepoListByNamespaceRequest import (
                    GetRepoListByNamespaceRequest,
                )

                req = GetRepoListByNamespaceRequest()
                req.set_RepoNamespace(namespace)
                req.set_Page(page)
                data = self._call("GetRepoListByNamespace", req)["data"]
                repos += [
                    Repository(r["repoNamespace"], r["repoName"]) for r in data.get("repos") or []
                ]
                if int(data["total"]) <= int(data["page"]) * int(data["pageSize"]):
                    return repos
            page += 1

    def list_tags(self, repo: Repository) -> list[str]:
        tags: list[str] = []
        page = 1
        while True:
            if self.info.enterprise:
                from aliyunsdkcr.request.v20181201.ListRepoTagRequest import ListRepoTagRequest

                ee = ListRepoTagRequest()
                ee.set_InstanceId(self.info.instance_id)
                ee.set_RepoId(repo.id)
                ee.set_PageNo(page)
                body = self._call("ListRepoTag", ee)
                tags += [i["Tag"] for i in body.get("Images") or []]
                if not body.get("IsSuccess", False):
                    raise OpenApiError(f"failed to list repo tag: {json.dumps(body)}")
                if int(body["TotalCount"]) <= page * int(body["PageSize"]):
                    return tags
            else:
                from aliyunsdkcr.request.v20160607.GetRepoTagsRequest import GetRepoTagsRequest

                req = GetRepoTagsRequest()
                req.set_RepoNamespace(repo.namespace)
                req.set_RepoName(repo.name)
                req.set_Page(page)
                data = self._call("GetRepoTags", req)["data"]
                tags += [t["tag"] for t in data.get("tags") or []]
                if int(data["total"]) <= int(data["page"]) * int(data["pageSize"]):
                    return tags
            page += 1


@dataclass(frozen=True)
class Resource:
    """One repository to copy and the tags that passed the filters."""

    repository: str  # "ns/repo"
    tags: tuple[str, ...]


class Adapter:
    """``newAdapter`` + the calls made on it. Construction pings the registry (no OpenAPI)."""

    def __init__(
        self,
        *,
        url: str,
        access_key: str,
        access_secret: str,
        insecure: bool,
        ca_file: str | None,
        net: Net,
        openapi_endpoint: str | None,
        counts: Counter[str],
        counts_lock: threading.Lock,
    ) -> None:
        self.url = url
        self.net = net
        self.verify = net.verify(insecure, ca_file)
        self.realm, self.service = ping(net, url, self.verify)
        self.info = parse_service(self.service)
        self.api = OpenApi(
            access_key,
            access_secret,
            self.info,
            endpoint=openapi_endpoint,
            counts=counts,
            counts_lock=counts_lock,
            timeout=net.timeout,
        )
        self._token: TempToken | None = None

    def temp_token(self) -> TempToken:
        """The temporary registry credentials, fetched once (auth.go caches them until expiry)."""
        if self._token is None:
            self._token = self.api.get_token()
        return self._token

    def health_check(self) -> None:
        """The native adapter's Ping with credentials; raises :class:`Unhealthy`."""
        try:
            token = self.temp_token()
        except OpenApiError as exc:
            raise Unhealthy(f"failed to ping registry {self.url}: {exc}") from None
        try:
            with session() as s:
                resp = s.get(
                    self.realm,
                    params={"service": self.service},
                    auth=(token.user, token.password),
                    verify=self.verify,
                    timeout=self.net.timeout,
                )
                if resp.status_code != 200:
                    raise Unhealthy(
                        f"failed to ping registry {self.url}: token request: {resp.status_code}"
                    )
                bearer = resp.json().get("token") or resp.json().get("access_token")
                check = s.get(
                    self.net.resolve(self.url) + "/v2/",
                    headers={"Authorization": f"Bearer {bearer}"},
                    verify=self.verify,
                    timeout=self.net.timeout,
                )
        except requests.RequestException as exc:
            raise Unhealthy(f"failed to ping registry {self.url}: {exc}") from None
        if check.status_code != 200:
            raise Unhealthy(f"failed to ping registry {self.url}: /v2/ {check.status_code}")

    def fetch_artifacts(
        self, filters: list[Filter], log: Callable[[str], None] | None = None
    ) -> list[Resource]:
        """``FetchArtifacts``; raises :class:`OpenApiError` or :class:`patterns.PatternError`."""
        repo_pattern = ""
        for f in filters:
            if f.type == "name":
                repo_pattern = str(f.value)  # the last name filter wins
        namespace_pattern = repo_pattern.split("/")[0]
        namespaces = patterns.specific_component(namespace_pattern) if namespace_pattern else None
        if namespaces is None:
            namespaces = self.api.list_namespaces()
        elif log is not None:
            log(f"parsed the namespaces {namespaces} from pattern {namespace_pattern}")
        repositories: list[Repository] = []
        for ns in namespaces:
            for repo in self.api.list_repositories(ns):
                if patterns.match(repo_pattern, repo.path):
                    repositories.append(repo)
        resources: list[Resource] = []
        for repo in repositories:
            try:
                tags = self.api.list_tags(repo)
            except OpenApiError as exc:
                raise OpenApiError(
                    f"failed to fetch artifacts: list tags for repo '{repo.name}' error: {exc}"
                ) from None
            kept = filter_tags(tags, filters)
            if kept:
                resources.append(Resource(repo.path, tuple(kept)))
        return resources


def filter_tags(tags: list[str], filters: list[Filter]) -> list[str]:
    """``filter.DoFilterArtifacts`` for one-tag artifacts: every tag filter applies in turn."""
    kept = list(tags)
    for f in filters:
        if f.type != "tag" or not f.value:
            continue
        pattern = str(f.value)
        if f.decoration == "excludes":
            kept = [t for t in kept if not patterns.match(pattern, t)]
        else:
            kept = [t for t in kept if patterns.match(pattern, t)]
    return kept
