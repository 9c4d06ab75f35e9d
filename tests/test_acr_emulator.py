"""The ACR emulator is strict: it holds clients to the vendor's contract (its documented API).

Requests are signed by the real SDK (aliyun-python-sdk-core + aliyun-python-sdk-cr) wherever
possible; raw requests signed by relay/sandbox/acr/signing.py are used where a test needs to
see or bend the exact bytes. Builds are real (git + buildah + docker-registry) and few.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

import pytest
import requests
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.request import CommonRequest
from aliyunsdkcore.vendored.requests.sessions import Session as VendoredSession
from aliyunsdkcr.request.v20160607 import (
    CreateNamespaceRequest,
    CreateRepoBuildRuleRequest,
    CreateRepoRequest,
    DeleteRepoBuildRuleRequest,
    GetAuthorizationTokenRequest,
    GetNamespaceListRequest,
    GetNamespaceRequest,
    GetRepoBuildListRequest,
    GetRepoBuildRuleListRequest,
    GetRepoBuildStatusRequest,
    GetRepoListByNamespaceRequest,
    GetRepoRequest,
    GetRepoTagsRequest,
    StartRepoBuildByRuleRequest,
    UpdateRepoBuildRuleRequest,
    UpdateRepoRequest,
)
from aliyunsdkcr.request.v20181201 import (
    CreateBuildRecordByRuleRequest,
    CreateRepositoryRequest,
    GetRepoBuildRecordStatusRequest,
    ListRepoTagRequest,
)
from aliyunsdkcr.request.v20181201.CreateNamespaceRequest import (
    CreateNamespaceRequest as EeCreateNamespace,
)
from aliyunsdkcr.request.v20181201.CreateRepoBuildRuleRequest import (
    CreateRepoBuildRuleRequest as EeCreateRepoBuildRule,
)
from aliyunsdkcr.request.v20181201.GetAuthorizationTokenRequest import (
    GetAuthorizationTokenRequest as EeGetAuthorizationToken,
)
from aliyunsdkcr.request.v20181201.GetNamespaceRequest import (
    GetNamespaceRequest as EeGetNamespace,
)

from relay.sandbox.acr import signing
from relay.sandbox.acr.quirks import EXISTS_SPELLINGS, LIMIT_SPELLINGS
from relay.sandbox.images import OCI_INDEX_KIND, ImageFactory, OracleClient, PushedImage
from tests.fixtures.registries import Registry, RegistryFactory

if TYPE_CHECKING:
    # Imported for annotations only: importing the plugin module here, before pytest loads it
    # as a plugin, would stop pytest from rewriting its asserts.
    from tests.fixtures.acr import AcrEmulator


GATEWAY_KEYS = {"Code", "Message", "RequestId", "HostId", "Recommend"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def with_body(req: Any, body: dict[str, Any]) -> Any:
    # The SDK never builds a body for cr 2016 (docs/vendors/acr.md#endpoints-and-the-python-sdk): set it and its type by hand.
    req.set_content(json.dumps(body).encode())
    req.set_content_type("application/json")
    return req


def call(emu: AcrEmulator, req: Any) -> dict[str, Any]:
    return json.loads(emu.sdk_client().do_action_with_exception(req))


def service_error(exc: ServerException) -> dict[str, Any]:
    """The lower-case body the SDK could not parse (it reports SDK.UnknownServerError)."""
    assert exc.get_error_code() == "SDK.UnknownServerError", exc
    return json.loads(exc.get_error_msg().split("ServerResponseBody: ", 1)[1])


def expect_service_error(emu: AcrEmulator, req: Any, code: str, status: int = 400) -> None:
    with pytest.raises(ServerException) as info:
        call(emu, req)
    assert info.value.get_http_status() == status
    body = service_error(info.value)
    assert set(body) == {"code", "message"}
    assert body["code"] == code


def create_namespace(emu: AcrEmulator, name: str) -> None:
    call(emu, with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body(name)))


def ns_body(name: str) -> dict[str, Any]:
    return {"Namespace": {"Namespace": name}}


def repo_body(ns: str, name: str, source: tuple[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Repo": {"RepoNamespace": ns, "RepoName": name, "Summary": "s", "RepoType": "PRIVATE"}
    }
    if source:
        body["RepoSource"] = {
            "Source": {
                "SourceRepoType": "GITHUB",
                "SourceRepoNamespace": source[0],
                "SourceRepoName": source[1],
            },
            "BuildConfig": {"IsAutoBuild": False, "IsOversea": True, "IsDisableCache": True},
        }
    return body


def create_repo(
    emu: AcrEmulator, ns: str, name: str, source: tuple[str, str] | None = None
) -> None:
    """A repository, bound to ``source`` when given: whether CreateRepo's RepoSource block
    takes is a quirk (off by default), so bind with UpdateRepoSourceRepo as relay does."""
    body = repo_body(ns, name, source)
    call(emu, with_body(CreateRepoRequest.CreateRepoRequest(), body))
    if source:
        sourced = json.dumps({"RepoSource": body["RepoSource"]}).encode()
        resp = raw_roa(emu, "POST", f"/repos/{ns}/{name}/sourceRepo", body=sourced)
        assert resp.status_code == 200, resp.text


def rule_body(location: str, name: str = "Dockerfile", tag: str = "1.0", branch: str = "main"):
    return {
        "BuildRule": {
            "PushType": "GIT_BRANCH",
            "PushName": branch,
            "DockerfileLocation": location,
            "DockerfileName": name,
            "Tag": tag,
            "ImageTag": tag,
        }
    }


def create_rule(emu: AcrEmulator, ns: str, repo: str, body: dict[str, Any]) -> str:
    req = CreateRepoBuildRuleRequest.CreateRepoBuildRuleRequest()
    req.set_RepoNamespace(ns)
    req.set_RepoName(repo)
    rule_id = call(emu, with_body(req, body))["data"]["buildRuleId"]
    assert isinstance(rule_id, int)  # a Long in the 2016 API
    return str(rule_id)  # the SDK only takes str path params


def local_session() -> requests.Session:
    """No proxies (they would see 127.0.0.1 traffic) and no REQUESTS_CA_BUNDLE override."""
    session = requests.Session()
    session.trust_env = False
    return session


def raw_roa(
    emu: AcrEmulator,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    content_type: str | None = "application/json",
    query: dict[str, str] | None = None,
    secret: str | None = None,
    action: str | None = None,
) -> requests.Response:
    """A ROA request signed by the test signer and sent with plain requests."""
    target, headers = signing.sign_roa(
        method,
        path,
        query or {},
        access_key_id=emu.access_key_id,
        secret=secret or emu.access_key_secret,
        action=action,
        region=emu.region,
        body=body,
        content_type=content_type,
    )
    with local_session() as s:
        return s.request(method, f"http://{emu.endpoint}{target}", data=body, headers=headers)


def raw_rpc(emu: AcrEmulator, action: str, params: dict[str, str], **kw: Any) -> requests.Response:
    query = signing.sign_rpc(
        action,
        params,
        access_key_id=kw.pop("access_key_id", emu.access_key_id),
        secret=kw.pop("secret", emu.access_key_secret),
        region=emu.region,
        **kw,
    )
    with local_session() as s:
        return s.post(f"http://{emu.endpoint}/?{query}")


@pytest.fixture
def tamper(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., list]]:
    """Rewrite the SDK's prepared request in flight (after signing) and keep raw responses.

    ``tamper(fn)`` installs ``fn(prepared) -> None``; returns the list that collects the raw
    responses the SDK received.
    """
    original = VendoredSession.send
    responses: list = []

    def install(fn: Callable[[Any], None]) -> list:
        def send(self: Any, prepared: Any, **kwargs: Any) -> Any:
            fn(prepared)
            resp = original(self, prepared, **kwargs)
            responses.append(resp)
            return resp

        monkeypatch.setattr(VendoredSession, "send", send)
        return responses

    yield install


# --------------------------------------------------------------------------------------------
# signatures
# --------------------------------------------------------------------------------------------


def test_sdk_signed_roa_requests_are_accepted_and_answered_in_camel_case(
    acr_emulator: AcrEmulator,
) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    req = GetNamespaceRequest.GetNamespaceRequest()
    req.set_Namespace("relay")
    got = call(emu, req)
    assert set(got) == {"data", "requestId"}
    assert got["data"]["namespace"] == {
        "namespace": "relay",
        "authorizeType": "ADMIN",
        "defaultVisibility": "PRIVATE",
        "autoCreate": True,
        "namespaceStatus": "NORMAL",
    }
    listing = call(emu, GetNamespaceListRequest.GetNamespaceListRequest())["data"]
    assert [n["namespace"] for n in listing["namespaces"]] == ["relay"]
    assert [(c.action, c.edition, c.method, c.status) for c in emu.calls] == [
        ("CreateNamespace", "personal", "PUT", 200),
        ("GetNamespace", "personal", "GET", 200),
        ("GetNamespaceList", "personal", "GET", 200),
    ]
    assert emu.calls[0].body == {"Namespace": {"Namespace": "relay"}}
    assert emu.calls[0].query == {"RegionId": "cn-hangzhou"}  # the SDK always adds RegionId


def test_set_endpoint_and_common_request_also_reach_the_emulator(
    acr_emulator: AcrEmulator,
) -> None:
    emu = acr_emulator
    from aliyunsdkcore.client import AcsClient

    # No add_endpoint: per-request set_endpoint, as docs/vendors/acr.md#endpoints-and-the-python-sdk says.
    client = AcsClient(
        emu.access_key_id, emu.access_key_secret, emu.region, proxy={"http": None, "https": None}
    )
    req = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body("viaset"))
    req.set_endpoint(emu.endpoint)
    client.do_action_with_exception(req)
    create_repo(emu, "viaset", "app")
    # sourceRepo is not in aliyun-python-sdk-cr: a ROA CommonRequest (no x-acs-action header).
    common = CommonRequest(
        domain=emu.endpoint,
        version="2016-06-07",
        uri_pattern="/repos/[RepoNamespace]/[RepoName]/sourceRepo",
        product="cr",
    )
    common.set_method("POST")
    common.add_path_param("RepoNamespace", "viaset")
    common.add_path_param("RepoName", "app")
    with_body(common, {"RepoSource": repo_body("x", "y", ("owner", "repo"))["RepoSource"]})
    client.do_action_with_exception(common)
    assert emu.state.repos[("personal", "viaset", "app")].source.owner_repo == "owner/repo"
    assert emu.calls[-1].action == "UpdateRepoSourceRepo"


def test_sdk_signed_rpc_requests_are_accepted(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    req = EeCreateNamespace()
    req.set_InstanceId(emu.instance_id)
    req.set_NamespaceName("mirrors")
    req.set_AutoCreateRepo(False)
    created = call(emu, req)
    assert created["IsSuccess"] is True and created["Code"] == "success"
    get = EeGetNamespace()
    get.set_InstanceId(emu.instance_id)
    get.set_NamespaceName("mirrors")
    ns = call(emu, get)
    assert ns["NamespaceName"] == "mirrors" and ns["AutoCreateRepo"] is False
    assert ns["NamespaceId"].startswith("crn-")
    assert emu.calls[-1].edition == "enterprise" and emu.calls[-1].action == "GetNamespace"
    assert "Signature" not in emu.calls[-1].query


def test_wrong_secret_is_rejected_with_the_gateway_body(
    acr_emulator: AcrEmulator, tamper: Callable[..., list]
) -> None:
    emu = acr_emulator
    responses = tamper(lambda prepared: None)
    client = emu.sdk_client(access_key_secret="not-the-secret")
    with pytest.raises(ServerException) as info:
        client.do_action_with_exception(GetNamespaceListRequest.GetNamespaceListRequest())
    assert info.value.get_http_status() == 400
    assert info.value.get_error_code() == "SignatureDoesNotMatch"
    raw = responses[-1].json()
    assert set(raw) == GATEWAY_KEYS
    assert raw["Code"] == "SignatureDoesNotMatch" and raw["HostId"] == "cr.cn-hangzhou.aliyuncs.com"
    assert info.value.get_request_id() == raw["RequestId"]

    # RPC: the server's string-to-sign equals the SDK's own, so the SDK concludes the secret is
    # wrong (client.py rewrites the code): proof the emulator canonicalises exactly like the SDK.
    req = EeGetAuthorizationToken()
    req.set_InstanceId(emu.instance_id)
    with pytest.raises(ServerException) as info:
        client.do_action_with_exception(req)
    assert info.value.get_http_status() == 400
    assert info.value.get_error_code() == "InvalidAccessKeySecret"
    assert responses[-1].json()["Code"] == "SignatureDoesNotMatch"
    assert [c.status for c in emu.calls] == [400, 400]
    assert [c.code for c in emu.calls] == ["SignatureDoesNotMatch"] * 2


def test_unknown_access_key_is_404_not_found(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    client = emu.sdk_client(access_key_id="LTAIunknownunknown00")
    with pytest.raises(ServerException) as info:
        client.do_action_with_exception(GetNamespaceListRequest.GetNamespaceListRequest())
    assert info.value.get_http_status() == 404
    assert info.value.get_error_code() == "InvalidAccessKeyId.NotFound"
    resp = raw_rpc(emu, "GetNamespace", {"InstanceId": "x"}, access_key_id="LTAIunknown")
    assert resp.status_code == 404 and set(resp.json()) == GATEWAY_KEYS


@pytest.mark.parametrize(
    ("what", "mutate", "code"),
    [
        # a signed query value changed in flight
        (
            "roa-query",
            lambda p: setattr(p, "url", p.url.replace("Page=1", "Page=2")),
            "SignatureDoesNotMatch",
        ),
        # the path changed in flight
        (
            "roa-path",
            lambda p: setattr(p, "url", p.url.replace("/repos/relay", "/repos/other")),
            "SignatureDoesNotMatch",
        ),
        # a signed header changed
        (
            "roa-header",
            lambda p: p.headers.__setitem__("x-acs-region-id", "cn-beijing"),
            "SignatureDoesNotMatch",
        ),
        # an x-acs-* header added after signing is part of the string-to-sign too
        (
            "roa-extra-acs-header",
            lambda p: p.headers.__setitem__("x-acs-extra", "1"),
            "SignatureDoesNotMatch",
        ),
    ],
)
def test_tampered_roa_requests_are_rejected(
    acr_emulator: AcrEmulator, tamper: Callable[..., list], what: str, mutate: Any, code: str
) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    responses = tamper(mutate)
    req = GetRepoListByNamespaceRequest.GetRepoListByNamespaceRequest()
    req.set_RepoNamespace("relay")
    req.set_Page(1)
    req.set_PageSize(30)
    with pytest.raises(ServerException) as info:
        call(emu, req)
    assert info.value.get_error_code() == code, what
    assert info.value.get_http_status() == 400
    assert set(responses[-1].json()) == GATEWAY_KEYS


def test_tampered_roa_body_is_rejected(
    acr_emulator: AcrEmulator, tamper: Callable[..., list]
) -> None:
    emu = acr_emulator
    evil = json.dumps(ns_body("evil")).encode()

    def swap_body(p: Any) -> None:
        p.body = evil
        p.headers["Content-Length"] = str(len(evil))

    tamper(swap_body)
    with pytest.raises(ServerException) as info:
        create_namespace(emu, "good")
    # Content-MD5 is signed, so a new body with the old MD5 fails the MD5 check...
    assert info.value.get_error_code() == "ContentMD5NotMatched"

    def swap_body_and_md5(p: Any) -> None:
        swap_body(p)
        p.headers["Content-MD5"] = signing.content_md5(evil)

    tamper(swap_body_and_md5)
    with pytest.raises(ServerException) as info:
        create_namespace(emu, "good")
    # ...and a recomputed MD5 breaks the signature.
    assert info.value.get_error_code() == "SignatureDoesNotMatch"
    assert emu.state.namespaces == {}


def test_tampered_and_replayed_rpc_requests_are_rejected(
    acr_emulator: AcrEmulator, tamper: Callable[..., list]
) -> None:
    emu = acr_emulator
    tamper(lambda p: setattr(p, "url", p.url.replace("NamespaceName=good", "NamespaceName=evil")))
    req = EeCreateNamespace()
    req.set_InstanceId(emu.instance_id)
    req.set_NamespaceName("good")
    with pytest.raises(ServerException) as info:
        call(emu, req)
    assert info.value.get_error_code() == "SignatureDoesNotMatch"

    # Replay: the same signed URL twice (same SignatureNonce).
    fixed = signing.sign_rpc(
        "GetAuthorizationToken",
        {"InstanceId": emu.instance_id},
        access_key_id=emu.access_key_id,
        secret=emu.access_key_secret,
        region=emu.region,
        nonce="fixed-nonce-1",
    )
    with local_session() as s:
        first = s.post(f"http://{emu.endpoint}/?{fixed}")
        second = s.post(f"http://{emu.endpoint}/?{fixed}")
    assert first.status_code == 200 and first.json()["IsSuccess"] is True
    assert second.status_code == 400 and second.json()["Code"] == "SignatureNonceUsed"

    # A stale timestamp is refused even when correctly signed.
    stale = raw_rpc(
        emu,
        "GetAuthorizationToken",
        {"InstanceId": emu.instance_id},
        timestamp="2020-01-01T00:00:00Z",
    )
    assert stale.status_code == 400 and stale.json()["Code"] == "InvalidTimeStamp.Expired"
    assert emu.state.namespaces == {}


def test_test_signer_matches_the_sdk(acr_emulator: AcrEmulator) -> None:
    """The independent signer in signing.py is accepted: it and the SDK agree byte for byte."""
    emu = acr_emulator
    resp = raw_roa(emu, "PUT", "/namespace", body=json.dumps(ns_body("signed")).encode())
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"data", "requestId"}
    q = {"Weird": "a b&c/d~e*f", "Page": "1"}  # raw-signed, urlencoded on the wire
    resp = raw_roa(emu, "GET", "/repos/signed", query=q, content_type=None)
    assert resp.status_code == 200, resp.text
    resp = raw_rpc(emu, "GetNamespace", {"InstanceId": emu.instance_id, "NamespaceName": "n x"})
    assert resp.status_code == 200 and resp.json()["Code"] == "NAMESPACE_NOT_EXIST"
    with local_session() as s:
        no_auth = s.get(f"http://{emu.endpoint}/namespace", headers={"x-acs-version": "2016-06-07"})
    assert no_auth.status_code == 400 and no_auth.json()["Code"] == "IncompleteSignature"
    unknown = raw_roa(emu, "GET", "/nonsense", content_type=None)
    assert unknown.status_code == 404 and unknown.json()["Code"] == "InvalidAction.NotFound"
    assert emu.calls[-1].action is None


# --------------------------------------------------------------------------------------------
# personal edition contract
# --------------------------------------------------------------------------------------------

BAD_BODIES = [
    (
        "camelCase inner keys",
        {
            "Repo": {
                "repoNamespace": "relay",
                "repoName": "app",
                "summary": "s",
                "repoType": "PRIVATE",
            }
        },
    ),
    (
        "response casing",
        {
            "repo": {
                "RepoNamespace": "relay",
                "RepoName": "app",
                "Summary": "s",
                "RepoType": "PRIVATE",
            }
        },
    ),
    (
        "no wrapper",
        {"RepoNamespace": "relay", "RepoName": "app", "Summary": "s", "RepoType": "PRIVATE"},
    ),
    (
        "missing required",
        {"Repo": {"RepoNamespace": "relay", "RepoName": "app", "RepoType": "PRIVATE"}},
    ),
    (
        "unknown key",
        {
            "Repo": {
                "RepoNamespace": "relay",
                "RepoName": "app",
                "Summary": "s",
                "RepoType": "PRIVATE",
                "Colour": "red",
            }
        },
    ),
    (
        "wrong type",
        {
            "Repo": {
                "RepoNamespace": "relay",
                "RepoName": "app",
                "Summary": 1,
                "RepoType": "PRIVATE",
            }
        },
    ),
    (
        "bool as string",
        repo_body("relay", "app")
        | {
            "RepoSource": {
                "Source": {
                    "SourceRepoType": "GITHUB",
                    "SourceRepoNamespace": "o",
                    "SourceRepoName": "r",
                },
                "BuildConfig": {"IsOversea": "true"},
            }
        },
    ),
    ("list", [{"Repo": {}}]),
]


@pytest.mark.parametrize(("what", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_wrong_body_shapes_are_rejected(acr_emulator: AcrEmulator, what: str, body: Any) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    req = CreateRepoRequest.CreateRepoRequest()
    req.set_content(json.dumps(body).encode())
    req.set_content_type("application/json")
    expect_service_error(emu, req, "REQUEST_BODY_FORMAT_INVALID")
    assert emu.state.repos == {}


@pytest.mark.parametrize(
    ("what", "content", "ctype"),
    [
        (
            "octet-stream (set_content without set_content_type)",
            json.dumps(repo_body("relay", "app")).encode(),
            None,
        ),
        ("form encoded", b"RepoNamespace=relay&RepoName=app", "application/x-www-form-urlencoded"),
        ("not JSON", b"{Repo:", "application/json"),
        ("empty", b"", "application/json"),
    ],
)
def test_wrong_content_is_rejected(
    acr_emulator: AcrEmulator, what: str, content: bytes, ctype: str | None
) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    req = CreateRepoRequest.CreateRepoRequest()
    if content:
        req.set_content(content)
    if ctype:
        req.set_content_type(ctype)
    expect_service_error(emu, req, "REQUEST_BODY_FORMAT_INVALID")
    # Raw: exactly the lower-case body the vendor sends.
    resp = raw_roa(emu, "PUT", "/repos", body=content or None, content_type=ctype)
    assert resp.status_code == 400
    assert resp.json() == {
        "code": "REQUEST_BODY_FORMAT_INVALID",
        "message": "Request body format is not correct",
    }


@pytest.mark.parametrize(
    "name", ["a", "Relay", "-relay", "_relay", "re lay", "re.lay", "x" * 31, "中文"]
)
def test_namespace_name_rules(acr_emulator: AcrEmulator, name: str) -> None:
    req = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body(name))
    expect_service_error(acr_emulator, req, "PARAM_INVALID")


def test_valid_namespace_names(acr_emulator: AcrEmulator) -> None:
    acr_emulator.set_limits(namespaces=3)
    for name in ["ab", "relay_mirrors-1", "x" * 30]:
        create_namespace(acr_emulator, name)


def test_repo_name_rules_and_configurable_length(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    for bad in ["a", "App", "-app", "a/b", "a.b", "x" * 31]:
        req = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("relay", bad))
        expect_service_error(emu, req, "PARAM_INVALID")
    create_repo(emu, "relay", "x" * 30)
    emu.set_limits(repo_name_max=64)
    create_repo(emu, "relay", "y" * 64)
    req = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("relay", "z" * 65))
    expect_service_error(emu, req, "PARAM_INVALID")


def test_build_rule_field_rules(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app")
    cases = [
        rule_body(""),  # DockerfileLocation 1-128
        rule_body("/" + "d" * 128),
        rule_body("/", name="Dfi"),  # DockerfileName 4-64
        rule_body("/", name="D" * 65),
        rule_body("/", tag="bad tag"),
        {"BuildRule": rule_body("/")["BuildRule"] | {"PushType": "BRANCH"}},
    ]
    for body in cases:
        req = CreateRepoBuildRuleRequest.CreateRepoBuildRuleRequest()
        req.set_RepoNamespace("relay")
        req.set_RepoName("app")
        expect_service_error(emu, with_body(req, body), "PARAM_INVALID")
    assert create_rule(emu, "relay", "app", rule_body("/" + "d" * 127, name="D" * 64))
    assert create_rule(emu, "relay", "app", rule_body("/", name="Dock"))


def test_missing_namespace_and_repo(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    req = GetRepoRequest.GetRepoRequest()
    req.set_RepoNamespace("nope")
    req.set_RepoName("app")
    expect_service_error(emu, req, "NAMESPACE_NOT_EXIST", 404)
    create_namespace(emu, "relay")
    req.set_RepoNamespace("relay")
    expect_service_error(emu, req, "REPO_NOT_EXIST", 404)
    req = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("nope", "app"))
    expect_service_error(emu, req, "NAMESPACE_NOT_EXIST", 404)
    create_repo(emu, "relay", "app")
    got = call(emu, _get_repo("relay", "app"))
    repo = got["data"]["repo"]
    assert repo["repoNamespace"] == "relay" and repo["repoName"] == "app"
    assert repo["repoDomainList"]["public"] == emu.registry_domain
    assert isinstance(repo["repoId"], int)
    # Creating it again is an error (the code is UNCONFIRMED).
    req = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("relay", "app"))
    expect_service_error(emu, req, "REPO_ALREADY_EXIST")


def _get_repo(ns: str, name: str) -> Any:
    req = GetRepoRequest.GetRepoRequest()
    req.set_RepoNamespace(ns)
    req.set_RepoName(name)
    return req


def test_repo_list_paginates(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    for i in range(5):
        create_repo(emu, "relay", f"app{i}")
    seen = []
    for page in (1, 2, 3):
        req = GetRepoListByNamespaceRequest.GetRepoListByNamespaceRequest()
        req.set_RepoNamespace("relay")
        req.set_Page(page)
        req.set_PageSize(2)
        data = call(emu, req)["data"]
        assert (data["page"], data["pageSize"], data["total"]) == (page, 2, 5)
        seen += [r["repoName"] for r in data["repos"]]
    assert seen == [f"app{i}" for i in range(5)]


def test_repo_update_source_and_rule_lifecycle(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app", ("relay-bot", "mirrors"))
    update = UpdateRepoRequest.UpdateRepoRequest()
    update.set_RepoNamespace("relay")
    update.set_RepoName("app")
    call(emu, with_body(update, {"Repo": {"Summary": "new", "RepoType": "PUBLIC"}}))
    repo = call(emu, _get_repo("relay", "app"))["data"]["repo"]
    assert (repo["summary"], repo["repoType"]) == ("new", "PUBLIC")
    source = raw_roa(emu, "GET", "/repos/relay/app/sourceRepo", content_type=None).json()
    assert source["data"]["repoSource"] == {
        "source": {
            "sourceRepoType": "GITHUB",
            "sourceRepoNamespace": "relay-bot",
            "sourceRepoName": "mirrors",
        },
        "buildConfig": {"isAutoBuild": False, "isOversea": True, "isDisableCache": True},
    }

    rule_id = create_rule(emu, "relay", "app", rule_body("/a/", tag="1.0"))
    upd = UpdateRepoBuildRuleRequest.UpdateRepoBuildRuleRequest()
    upd.set_RepoNamespace("relay")
    upd.set_RepoName("app")
    upd.set_BuildRuleId(rule_id)
    body = {"BuildRule": {"DockerfileLocation": "/b/", "ImageTag": "2.0", "Tag": "2.0"}}
    assert call(emu, with_body(upd, body))["data"] == {"buildRuleId": int(rule_id)}
    listing = GetRepoBuildRuleListRequest.GetRepoBuildRuleListRequest()
    listing.set_RepoNamespace("relay")
    listing.set_RepoName("app")
    assert call(emu, listing)["data"]["buildRules"] == [
        {
            "dockerfileName": "Dockerfile",
            "dockerfileLocation": "/b/",
            "buildRuleId": int(rule_id),
            "imageTag": "2.0",
            "pushName": "main",
            "pushType": "GIT_BRANCH",
        }
    ]
    delete = DeleteRepoBuildRuleRequest.DeleteRepoBuildRuleRequest()
    delete.set_RepoNamespace("relay")
    delete.set_RepoName("app")
    delete.set_BuildRuleId(rule_id)
    call(emu, delete)
    assert call(emu, listing)["data"]["buildRules"] == []
    expect_service_error(emu, delete, "BUILD_RULE_NOT_EXIST", 404)
    expect_service_error(emu, with_body(upd, body), "BUILD_RULE_NOT_EXIST", 404)


def test_enterprise_crud_without_builds(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    iid = emu.instance_id

    def rpc(action: str, **params: str) -> dict[str, Any]:
        resp = raw_rpc(emu, action, {"InstanceId": iid, **params})
        assert resp.status_code == 200, resp.text
        return resp.json()

    assert rpc("CreateNamespace", NamespaceName="mirrors.team-1")["IsSuccess"] is True
    assert (
        rpc("CreateNamespace", NamespaceName="mirrors.team-1")["Code"] == "NAMESPACE_ALREADY_EXIST"
    )
    repo_id = rpc(
        "CreateRepository",
        RepoNamespaceName="mirrors.team-1",
        RepoName="app",
        RepoType="PRIVATE",
        Summary="s",
    )["RepoId"]
    got = rpc("GetRepository", RepoNamespaceName="mirrors.team-1", RepoName="app")
    assert got["RepoId"] == repo_id and got["RepoBuildType"] == "MANUAL"
    listed = rpc("ListRepository", RepoNamespaceName="mirrors.team-1", PageNo="1", PageSize="10")
    assert [r["RepoName"] for r in listed["Repositories"]] == ["app"] and listed["TotalCount"] == 1
    src = {
        "RepoId": repo_id,
        "CodeRepoType": "GITHUB",
        "CodeRepoNamespaceName": "o",
        "CodeRepoName": "r",
    }
    assert rpc("GetRepoSourceCodeRepo", RepoId=repo_id)["Code"] == "REPO_SOURCE_NOT_EXIST"
    assert rpc("CreateRepoSourceCodeRepo", **src, OverseaBuild="true")["IsSuccess"] is True
    assert rpc("CreateRepoSourceCodeRepo", **src)["Code"] == "REPO_SOURCE_ALREADY_EXIST"
    assert rpc("UpdateRepoSourceCodeRepo", **src, AutoBuild="true")["IsSuccess"] is True
    bound = rpc("GetRepoSourceCodeRepo", RepoId=repo_id)
    assert (bound["CodeRepoName"], bound["AutoBuild"], bound["OverseaBuild"]) == ("r", True, False)
    bad_bool = raw_rpc(
        emu, "UpdateRepoSourceCodeRepo", {"InstanceId": iid, **src, "AutoBuild": "yes"}
    )
    assert bad_bool.status_code == 400 and bad_bool.json()["Code"] == "InvalidParameter.AutoBuild"

    rule = {
        "RepoId": repo_id,
        "PushType": "GIT_BRANCH",
        "PushName": "main",
        "DockerfileLocation": "/",
        "DockerfileName": "Dockerfile",
        "ImageTag": "1.0",
    }
    rule_id = rpc("CreateRepoBuildRule", **rule)["BuildRuleId"]
    rpc(
        "UpdateRepoBuildRule",
        RepoId=repo_id,
        BuildRuleId=rule_id,
        ImageTag="1.1",
        **{"Platforms.1": "linux/arm64"},
    )
    rules = rpc("ListRepoBuildRule", RepoId=repo_id)
    assert rules["TotalCount"] == 1
    assert (rules["BuildRules"][0]["ImageTag"], rules["BuildRules"][0]["Platforms"]) == (
        "1.1",
        ["linux/arm64"],
    )
    bad = raw_rpc(
        emu, "CreateRepoBuildRule", {"InstanceId": iid, **rule, "Platforms.1": "linux/sparc"}
    )
    assert bad.status_code == 400 and bad.json()["IsSuccess"] is False
    # Only the four platforms ACR builds (docs/vendors/acr.md): linux/386 and s390x are refused.
    for plat in ("linux/s390x", "linux/386"):
        bad = raw_rpc(emu, "CreateRepoBuildRule", {"InstanceId": iid, **rule, "Platforms.1": plat})
        assert bad.status_code == 400 and bad.json()["IsSuccess"] is False, plat
    missing = raw_rpc(emu, "CreateRepoBuildRule", {"InstanceId": iid, "RepoId": repo_id})
    assert missing.status_code == 400 and missing.json()["Code"] == "MissingPushType"
    emu.set_limits(rules_per_repo=1)
    assert rpc("CreateRepoBuildRule", **rule)["Code"] == "BUILD_RULE_LIMIT_EXCEED"
    assert rpc("DeleteRepoBuildRule", RepoId=repo_id, BuildRuleId=rule_id)["IsSuccess"] is True
    assert rpc("ListRepoBuildRule", RepoId=repo_id)["BuildRules"] == []
    assert rpc("ListRepoBuildRecord", RepoId=repo_id)["BuildRecords"] == []
    assert rpc("GetRepository", RepoId="crr-nope")["Code"] == "REPO_NOT_EXIST"
    unknown = raw_rpc(emu, "FlyToTheMoon", {"InstanceId": iid})
    assert unknown.status_code == 404 and unknown.json()["Code"] == "InvalidAction.NotFound"


# --------------------------------------------------------------------------------------------
# quotas and limits
# --------------------------------------------------------------------------------------------


def test_namespace_quota_default_and_configured(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    for name in ("ns1", "ns2", "ns3"):
        create_namespace(emu, name)
    req = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body("ns4"))
    expect_service_error(emu, req, "NAMESPACE_LIMIT_EXCEED")
    emu.set_limits(namespaces=4)
    create_namespace(emu, "ns4")
    # Namespaces are global in the personal edition: one held by another account.
    emu.set_limits(namespaces=10)
    emu.reserve_namespace("taken")
    req = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body("taken"))
    expect_service_error(emu, req, "NAMESPACE_ALREADY_EXIST")


def test_repo_quota(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    emu.set_limits(repos=2)
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "a1")
    create_repo(emu, "relay", "a2")
    req = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("relay", "a3"))
    expect_service_error(emu, req, "REPO_LIMIT_EXCEED")


@pytest.mark.buildah
def test_build_rule_limit_per_repo(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app")
    create_repo(emu, "relay", "other")
    for i in range(5):
        create_rule(emu, "relay", "app", rule_body("/", tag=f"v{i}"))
    req = CreateRepoBuildRuleRequest.CreateRepoBuildRuleRequest()
    req.set_RepoNamespace("relay")
    req.set_RepoName("app")
    expect_service_error(emu, with_body(req, rule_body("/", tag="v5")), "BUILD_RULE_LIMIT_EXCEED")
    create_rule(emu, "relay", "other", rule_body("/"))  # the limit is per repository
    # Deleting a rule frees a slot.
    resp = raw_roa(
        emu,
        "DELETE",
        "/repos/relay/app/rules/" + next(iter(emu.state.repos[("personal", "relay", "app")].rules)),
        content_type=None,
    )
    assert resp.status_code == 200, resp.text
    create_rule(emu, "relay", "app", rule_body("/", tag="v5"))


@pytest.mark.buildah
def test_concurrent_build_limit_and_cancel(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    emu.set_limits(concurrent_builds=1)
    emu.build_settings.pending_seconds = 30  # holds the first build in PENDING
    emu.create_git_remote("relay-bot/mirrors", {"Dockerfile": "FROM scratch\n"})
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app", ("relay-bot", "mirrors"))
    rule = create_rule(emu, "relay", "app", rule_body("/"))
    start = StartRepoBuildByRuleRequest.StartRepoBuildByRuleRequest()
    start.set_RepoNamespace("relay")
    start.set_RepoName("app")
    start.set_BuildRuleId(rule)
    assert call(emu, start)["data"] == {}  # no build id promised (UNCONFIRMED)
    expect_service_error(emu, start, "BUILD_CONCURRENCY_LIMIT_EXCEED")
    builds = _builds(emu, "relay", "app")
    assert [b["buildStatus"] for b in builds] == ["PENDING"]
    resp = raw_roa(
        emu, "POST", f"/repos/relay/app/build/{builds[0]['buildId']}/cancel", content_type=None
    )
    assert resp.status_code == 200
    emu.wait_idle(10)
    assert _status(emu, "relay", "app", builds[0]["buildId"]) == "CANCELED"


# --------------------------------------------------------------------------------------------
# fault injection and recording
# --------------------------------------------------------------------------------------------


def test_throttling_injection(acr_emulator: AcrEmulator, tamper: Callable[..., list]) -> None:
    emu = acr_emulator
    responses = tamper(lambda p: None)
    emu.inject("throttling", count=2, action="GetNamespaceList")
    req = GetNamespaceListRequest.GetNamespaceListRequest()
    create_namespace(emu, "relay")  # another action: not affected
    for _ in range(2):
        with pytest.raises(ServerException) as info:
            call(emu, req)
        assert info.value.get_error_code() == "Throttling.User"
        assert info.value.get_http_status() == 400
        assert set(responses[-1].json()) == GATEWAY_KEYS
    assert call(emu, req)["data"]["namespaces"]
    emu.inject("throttling", status=429)
    with pytest.raises(ServerException) as info:
        call(emu, req)
    assert info.value.get_http_status() == 429


def test_5xx_and_latency_injection(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    emu.inject("5xx", count=1)
    with pytest.raises(ServerException) as info:
        create_namespace(emu, "relay")
    assert info.value.get_http_status() == 503
    assert info.value.get_error_code() == "ServiceUnavailable"
    assert emu.state.namespaces == {}  # the action did not run
    # 5xx-after: the write happens, the client still sees 503, and its retry sees "exists".
    emu.inject("5xx-after", action="CreateNamespace")
    with pytest.raises(ServerException) as info:
        create_namespace(emu, "relay")
    assert info.value.get_http_status() == 503
    assert ("personal", "relay") in emu.state.namespaces
    req = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body("relay"))
    expect_service_error(emu, req, "NAMESPACE_ALREADY_EXIST")
    # Latency, enterprise edition too.
    emu.inject("latency", count=1, seconds=0.4)
    token = EeGetAuthorizationToken()
    token.set_InstanceId(emu.instance_id)
    t0 = time.monotonic()
    assert call(emu, token)["IsSuccess"] is True
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    call(emu, token)
    assert time.monotonic() - t0 < 0.4
    with pytest.raises(ValueError):
        emu.inject("meteor")


def test_calls_split_into_reads_and_writes_without_secrets(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app")
    call(emu, _get_repo("relay", "app"))
    call(emu, GetNamespaceListRequest.GetNamespaceListRequest())
    token = EeGetAuthorizationToken()
    token.set_InstanceId(emu.instance_id)
    call(emu, token)
    assert [c.action for c in emu.writes()] == ["CreateNamespace", "CreateRepo"]
    assert [c.action for c in emu.reads()] == [
        "GetRepo",
        "GetNamespaceList",
        "GetAuthorizationToken",
    ]
    dump = repr(emu) + repr(emu.calls)
    assert emu.access_key_secret not in dump
    emu.reset_calls()
    assert emu.calls == [] and emu.state.calls is emu.calls


# --------------------------------------------------------------------------------------------
# enterprise edition
# --------------------------------------------------------------------------------------------


def test_enterprise_errors_come_as_http_200_is_success_false(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    req = EeGetNamespace()
    req.set_InstanceId("cri-doesnotexist")
    req.set_NamespaceName("x")
    got = call(emu, req)  # no exception: HTTP 200
    assert got["IsSuccess"] is False and got["Code"] == "INSTANCE_NOT_EXIST"
    assert set(got) == {"RequestId", "Code", "Message", "IsSuccess"}
    # A missing mandatory parameter is a gateway error, HTTP 400.
    create = CreateRepositoryRequest.CreateRepositoryRequest()
    create.set_InstanceId(emu.instance_id)
    create.set_RepoNamespaceName("x")
    with pytest.raises(ServerException) as info:
        call(emu, create)
    assert info.value.get_http_status() == 400
    assert info.value.get_error_code() == "MissingRepoName"


# --------------------------------------------------------------------------------------------
# quirks: each UNCONFIRMED behaviour, read both ways (relay/sandbox/acr/quirks.py)
# --------------------------------------------------------------------------------------------


def _ee(emu: AcrEmulator, action: str, **params: str) -> requests.Response:
    return raw_rpc(emu, action, {"InstanceId": emu.instance_id, **params})


def _ee_repo(emu: AcrEmulator) -> str:
    """Enterprise: namespace "relay" and its repository "app"; returns the RepoId."""
    assert _ee(emu, "CreateNamespace", NamespaceName="relay").json()["IsSuccess"] is True
    repo_id: str = _ee(
        emu,
        "CreateRepository",
        RepoNamespaceName="relay",
        RepoName="app",
        RepoType="PRIVATE",
        Summary="s",
    ).json()["RepoId"]
    return repo_id


def _source_answer(emu: AcrEmulator, repo: str) -> requests.Response:
    return raw_roa(emu, "GET", f"/repos/relay/{repo}/sourceRepo", content_type=None)


def test_quirk_repo_source_on_create_and_the_source_answer(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    block = repo_body("relay", "dropped", ("relay-bot", "mirrors"))
    # Default: the block is accepted and dropped; the read says there is no source (404).
    call(emu, with_body(CreateRepoRequest.CreateRepoRequest(), block))
    assert emu.state.repos[("personal", "relay", "dropped")].source is None
    resp = _source_answer(emu, "dropped")
    assert resp.status_code == 404 and resp.json()["code"] == "REPO_SOURCE_NOT_EXIST"
    emu.quirks.unbound_source = "empty"
    resp = _source_answer(emu, "dropped")
    assert resp.status_code == 200 and resp.json()["data"] == {}

    emu.quirks.create_repo_source = "honour"
    block = repo_body("relay", "kept", ("relay-bot", "mirrors"))
    call(emu, with_body(CreateRepoRequest.CreateRepoRequest(), block))
    assert emu.state.repos[("personal", "relay", "kept")].source is not None
    source = {
        "sourceRepoType": "GITHUB",
        "sourceRepoNamespace": "relay-bot",
        "sourceRepoName": "mirrors",
    }
    config = {"isAutoBuild": False, "isOversea": True, "isDisableCache": True}
    nested = {"source": source, "buildConfig": config}
    layouts: list[tuple[Literal["repoSource", "sourceRepo", "flat"], dict[str, Any]]] = [
        ("repoSource", {"repoSource": nested}),
        ("sourceRepo", {"sourceRepo": nested}),
        ("flat", {**source, **config}),
    ]
    for layout, data in layouts:
        emu.quirks.source_layout = layout
        assert _source_answer(emu, "kept").json()["data"] == data, layout


def test_quirk_overseas_build_refused(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    emu.quirks.overseas_build = "refused"
    create_namespace(emu, "relay")
    block = repo_body("relay", "app", ("relay-bot", "mirrors"))
    call(emu, with_body(CreateRepoRequest.CreateRepoRequest(), block))
    sent = json.dumps({"RepoSource": block["RepoSource"]}).encode()
    refused = raw_roa(emu, "POST", "/repos/relay/app/sourceRepo", body=sent)
    assert refused.status_code == 400
    assert refused.json()["code"] == "PARAM_INVALID" and "IsOversea" in refused.json()["message"]
    block["RepoSource"]["BuildConfig"]["IsOversea"] = False
    sent = json.dumps({"RepoSource": block["RepoSource"]}).encode()
    assert raw_roa(emu, "POST", "/repos/relay/app/sourceRepo", body=sent).status_code == 200


def test_quirk_repo_name_dots(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    dotted = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("relay", "app.v2"))
    expect_service_error(emu, dotted, "PARAM_INVALID")
    emu.quirks.repo_name_dots = True
    call(emu, dotted)
    leading = with_body(CreateRepoRequest.CreateRepoRequest(), repo_body("relay", ".app"))
    expect_service_error(emu, leading, "PARAM_INVALID")
    assert ("personal", "relay", "app.v2") in emu.state.repos


def test_quirk_rule_image_tag_field(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app")
    req = CreateRepoBuildRuleRequest.CreateRepoBuildRuleRequest()
    req.set_RepoNamespace("relay")
    req.set_RepoName("app")
    only_tag = rule_body("/")
    del only_tag["BuildRule"]["ImageTag"]
    expect_service_error(emu, with_body(req, only_tag), "REQUEST_BODY_FORMAT_INVALID")
    both = rule_body("/", tag="image")
    both["BuildRule"]["Tag"] = "source"
    first = create_rule(emu, "relay", "app", both)
    emu.quirks.rule_image_tag_field = "Tag"
    second = create_rule(emu, "relay", "app", both)
    only_image = rule_body("/")
    del only_image["BuildRule"]["Tag"]
    expect_service_error(emu, with_body(req, only_image), "REQUEST_BODY_FORMAT_INVALID")
    rules = emu.state.repos[("personal", "relay", "app")].rules
    assert (rules[first].image_tag, rules[second].image_tag) == ("image", "source")


@pytest.mark.parametrize("returns_id", [False, True])
@pytest.mark.parametrize("spelling", ["CANCELED", "CANCELLED"])
def test_quirk_start_answer_and_cancelled_spelling(
    acr_emulator: AcrEmulator, returns_id: bool, spelling: Literal["CANCELED", "CANCELLED"]
) -> None:
    emu = acr_emulator
    emu.quirks.start_build_returns_id = returns_id
    emu.quirks.canceled_status = spelling
    emu.build_settings.pending_seconds = 30  # held PENDING: buildah never runs
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "app", ("relay-bot", "mirrors"))
    start = StartRepoBuildByRuleRequest.StartRepoBuildByRuleRequest()
    start.set_RepoNamespace("relay")
    start.set_RepoName("app")
    start.set_BuildRuleId(create_rule(emu, "relay", "app", rule_body("/")))
    answer = call(emu, start)["data"]
    (build,) = _builds(emu, "relay", "app")
    assert answer == ({"buildId": build["buildId"]} if returns_id else {})
    emu.server.runner.cancel(emu.state.builds[build["buildId"]])
    assert _status(emu, "relay", "app", build["buildId"]) == spelling
    assert _builds(emu, "relay", "app")[0]["buildStatus"] == spelling

    # Enterprise: the same state, lower-cased by GetRepoBuildRecordStatus as every status.
    repo_id = _ee_repo(emu)
    source = {"CodeRepoType": "GITHUB", "CodeRepoNamespaceName": "o", "CodeRepoName": "r"}
    assert _ee(emu, "CreateRepoSourceCodeRepo", RepoId=repo_id, **source).json()["IsSuccess"]
    rule = {
        "PushType": "GIT_BRANCH",
        "PushName": "main",
        "DockerfileLocation": "/",
        "DockerfileName": "Dockerfile",
        "ImageTag": "1.0",
    }
    rule_id = _ee(emu, "CreateRepoBuildRule", RepoId=repo_id, **rule).json()["BuildRuleId"]
    record = _ee(emu, "CreateBuildRecordByRule", RepoId=repo_id, BuildRuleId=rule_id).json()
    emu.server.runner.cancel(emu.state.builds[record["BuildRecordId"]])
    status = _ee(
        emu, "GetRepoBuildRecordStatus", RepoId=repo_id, BuildRecordId=record["BuildRecordId"]
    ).json()
    assert status["BuildStatus"] == spelling.lower()
    listed = _ee(emu, "ListRepoBuildRecord", RepoId=repo_id).json()["BuildRecords"]
    assert [r["BuildStatus"] for r in listed] == [spelling]


def test_quirk_page_sizes(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    create_namespace(emu, "relay")
    for i in range(35):
        create_repo(emu, "relay", f"app{i:02d}")

    def page(n: int) -> dict[str, Any]:
        req = GetRepoListByNamespaceRequest.GetRepoListByNamespaceRequest()
        req.set_RepoNamespace("relay")
        req.set_Page(n)
        req.set_PageSize(100)
        return call(emu, req)["data"]

    first, second = page(1), page(2)
    assert (len(first["repos"]), first["pageSize"], first["total"]) == (30, 30, 35)
    assert [r["repoName"] for r in second["repos"]] == [f"app{i}" for i in range(30, 35)]
    emu.quirks.personal_page_size_cap = None
    assert (len(page(1)["repos"]), page(1)["pageSize"]) == (35, 100)

    assert _ee(emu, "CreateNamespace", NamespaceName="relay").json()["IsSuccess"] is True
    over = _ee(emu, "ListRepository", RepoNamespaceName="relay", PageNo="1", PageSize="101")
    assert over.status_code == 400 and over.json()["Code"] == "PARAM_INVALID"
    assert over.json()["IsSuccess"] is False
    at_max = _ee(emu, "ListRepository", RepoNamespaceName="relay", PageNo="1", PageSize="100")
    assert at_max.status_code == 200 and at_max.json()["PageSize"] == 100
    emu.quirks.enterprise_page_size_over_max = "clamp"
    over = _ee(emu, "ListRepository", RepoNamespaceName="relay", PageNo="1", PageSize="101")
    assert over.status_code == 200 and over.json()["PageSize"] == 100


def test_quirk_error_spellings(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    emu.set_limits(namespaces=1)
    create_namespace(emu, "relay")
    again = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body("relay"))
    another = with_body(CreateNamespaceRequest.CreateNamespaceRequest(), ns_body("other"))
    relay_words = ("ALREADY", "EXIST", "DUPLICATE", "LIMIT", "QUOTA", "EXCEED", "TOO", "MAXIMUM")
    exists_codes = ["NAMESPACE_ALREADY_EXIST", "NAMESPACE_EXIST", "NAMESPACE_DUPLICATE"]
    for spelling, code in zip(EXISTS_SPELLINGS, exists_codes, strict=True):
        emu.quirks.already_exists = spelling
        with pytest.raises(ServerException) as info:
            call(emu, again)
        body = service_error(info.value)
        assert body["code"] == code
        if spelling != "ALREADY_EXIST":  # only the code tells
            assert not any(w in body["message"].upper() for w in relay_words), body
    limit_codes = ["NAMESPACE_LIMIT_EXCEED", "NAMESPACE_QUOTA", "TOO_MANY_NAMESPACES"]
    for limit, code in zip(LIMIT_SPELLINGS, limit_codes, strict=True):
        emu.quirks.limit_exceeded = limit
        with pytest.raises(ServerException) as info:
            call(emu, another)
        body = service_error(info.value)
        assert body["code"] == code
        if limit != "LIMIT_EXCEED":
            assert not any(w in body["message"].upper() for w in relay_words), body


def test_quirk_enterprise_rebind(acr_emulator: AcrEmulator) -> None:
    emu = acr_emulator
    repo_id = _ee_repo(emu)
    source = {"RepoId": repo_id, "CodeRepoType": "GITHUB", "CodeRepoNamespaceName": "o"}
    assert _ee(emu, "CreateRepoSourceCodeRepo", **source, CodeRepoName="r1").json()["IsSuccess"]
    again = _ee(emu, "CreateRepoSourceCodeRepo", **source, CodeRepoName="r2").json()
    assert again["Code"] == "REPO_SOURCE_ALREADY_EXIST"
    emu.quirks.enterprise_rebind = "overwrite"
    assert _ee(emu, "CreateRepoSourceCodeRepo", **source, CodeRepoName="r2").json()["IsSuccess"]
    assert emu.state.repos[("enterprise", "relay", "app")].source.owner_repo == "o/r2"


# --------------------------------------------------------------------------------------------
# real builds
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream(registry_factory: RegistryFactory) -> Registry:
    """A registry standing in for registry.k8s.io (module-private, so names cannot collide)."""
    return registry_factory("plain", name="acr-upstream")


@pytest.fixture(scope="module")
def pause_image(upstream: Registry, image_factory: ImageFactory) -> PushedImage:
    return image_factory.push(upstream, "pause", "3.9", "oci", seed="acr-emulator-pause")


def _builds(emu: AcrEmulator, ns: str, repo: str) -> list[dict[str, Any]]:
    req = GetRepoBuildListRequest.GetRepoBuildListRequest()
    req.set_RepoNamespace(ns)
    req.set_RepoName(repo)
    return call(emu, req)["data"]["builds"]


def _status(emu: AcrEmulator, ns: str, repo: str, build_id: str) -> str:
    req = GetRepoBuildStatusRequest.GetRepoBuildStatusRequest()
    req.set_RepoNamespace(ns)
    req.set_RepoName(repo)
    req.set_BuildId(build_id)
    return call(emu, req)["data"]["buildStatus"]


def _poll(emu: AcrEmulator, ns: str, repo: str, build_id: str, timeout: float = 120) -> list[str]:
    """Poll like a client would; return the distinct statuses seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(emu, ns, repo, build_id)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("SUCCESS", "FAILED", "CANCELED"):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"build {build_id} still {seen[-1]} after {timeout}s")


@pytest.mark.buildah
def test_real_build_pushes_the_upstream_image_and_missing_dockerfile_fails(
    acr_emulator: AcrEmulator,
    upstream: Registry,
    pause_image: PushedImage,
    image_factory: ImageFactory,
) -> None:
    emu = acr_emulator
    emu.map_upstream("registry.k8s.io", upstream)
    # Slow the state machine down so a poller sees every state (real builds take minutes).
    emu.build_settings.pending_seconds = 0.5
    emu.build_settings.min_building_seconds = 0.5
    dockerfile = f"FROM registry.k8s.io/pause:3.9@{pause_image.digest}\n"
    emu.create_git_remote(
        "relay-bot/mirrors", {"mirrors/dockerfiles/pause/3.9/Dockerfile": dockerfile}
    )
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "pause", ("relay-bot", "mirrors"))
    good = create_rule(
        emu, "relay", "pause", rule_body("/mirrors/dockerfiles/pause/3.9/", tag="3.9")
    )
    missing = create_rule(emu, "relay", "pause", rule_body("/mirrors/dockerfiles/nope/", tag="0"))

    t0 = time.monotonic()
    start = StartRepoBuildByRuleRequest.StartRepoBuildByRuleRequest()
    start.set_RepoNamespace("relay")
    start.set_RepoName("pause")
    start.set_BuildRuleId(good)
    call(emu, start)
    build = _builds(emu, "relay", "pause")[0]
    assert build["image"]["tag"] == "3.9"
    assert _poll(emu, "relay", "pause", build["buildId"]) == ["PENDING", "BUILDING", "SUCCESS"]
    elapsed = time.monotonic() - t0
    work = [m for m in emu.state.builds[build["buildId"]].log if "succeeded in" in m]
    print(f"\nreal build: {work[0]}; seen by the poller after {elapsed:.2f}s (1 s staged)")

    start.set_BuildRuleId(missing)
    call(emu, start)
    failed = _builds(emu, "relay", "pause")[0]  # newest first
    assert failed["buildId"] != build["buildId"]
    assert _poll(emu, "relay", "pause", failed["buildId"])[-1] == "FAILED"
    log = emu.state.builds[failed["buildId"]].log_text()
    assert "Dockerfile not found: /mirrors/dockerfiles/nope/Dockerfile" in log

    # GetRepoTags reflects the stand-in registry: digest = manifest, imageId = config digest.
    tags_req = GetRepoTagsRequest.GetRepoTagsRequest()
    tags_req.set_RepoNamespace("relay")
    tags_req.set_RepoName("pause")
    data = call(emu, tags_req)["data"]
    assert data["total"] == 1 and [t["tag"] for t in data["tags"]] == ["3.9"]
    tag = data["tags"][0]
    assert "sha256:" + tag["imageId"] == pause_image.config_digest

    # The token from GetAuthorizationToken is what the stand-in registry accepts.
    token = call(emu, GetAuthorizationTokenRequest.GetAuthorizationTokenRequest())["data"]
    assert token["tempUserName"] == "cr_temp_user"
    reg = emu.registry
    assert (token["tempUserName"], token["authorizationToken"]) == (reg.username, reg.password)
    with OracleClient(reg) as oracle:
        raw, _, _ = oracle.get_manifest("relay/pause", "3.9")
        manifest = json.loads(raw)
        assert "sha256:" + tag["digest"] == oracle.manifest_digest("relay/pause", "3.9")
        assert manifest["config"]["digest"] == pause_image.config_digest
        config = json.loads(b"".join(oracle.iter_blob("relay/pause", pause_image.config_digest)))
    upstream_diff_ids = [layer.diff_id for layer in pause_image.image.layers]
    assert config["rootfs"]["diff_ids"] == upstream_diff_ids
    with local_session() as s:
        anonymous = s.get(f"{reg.url}/v2/relay/pause/tags/list", verify=reg.ca_file)
    assert anonymous.status_code == 401  # the stand-in wants the token, like ACR

    # Tags come from the registry itself: an image pushed there directly shows up too.
    direct = image_factory.push(reg, "relay/pause", "direct", "docker", seed="acr-direct")
    tags_req.set_PageSize(1)
    pages = []
    for page in (1, 2):
        tags_req.set_Page(page)
        data = call(emu, tags_req)["data"]
        assert data["total"] == 2
        pages += [(t["tag"], t["imageId"]) for t in data["tags"]]
    assert sorted(pages) == [
        ("3.9", tag["imageId"]),
        ("direct", direct.config_digest.removeprefix("sha256:")),
    ]
    # Nothing of the build is left on disk.
    assert list((emu.workdir / "builds").iterdir()) == []


@pytest.mark.buildah
def test_build_failures_clone_and_source(acr_emulator: AcrEmulator) -> None:
    """Failures that need no buildah run: unknown GitHub repo, missing branch, no source."""
    emu = acr_emulator
    emu.create_git_remote(
        "relay-bot/mirrors",
        {
            "Dockerfile": "FROM scratch\n",
            "offline/Dockerfile": "FROM docker.io/library/busybox:1\n",
        },
    )
    create_namespace(emu, "relay")
    create_repo(emu, "relay", "ghost", ("relay-bot", "does-not-exist"))
    create_repo(emu, "relay", "branch", ("relay-bot", "mirrors"))
    create_repo(emu, "relay", "unbound")
    create_repo(emu, "relay", "offline", ("relay-bot", "mirrors"))
    cases = {
        "ghost": ("main", "/", "github.com/relay-bot/does-not-exist not found"),
        "branch": ("no-such-branch", "/", "clone exited with"),
        # An upstream nobody mapped must not reach the internet: it fails at once.
        "offline": ("main", "/offline/", "build exited with"),
    }
    for repo, (branch, location, expected) in cases.items():
        rule = create_rule(emu, "relay", repo, rule_body(location, branch=branch))
        start = StartRepoBuildByRuleRequest.StartRepoBuildByRuleRequest()
        start.set_RepoNamespace("relay")
        start.set_RepoName(repo)
        start.set_BuildRuleId(rule)
        call(emu, start)
        build_id = _builds(emu, "relay", repo)[0]["buildId"]
        t0 = time.monotonic()
        assert _poll(emu, "relay", repo, build_id)[-1] == "FAILED"
        assert time.monotonic() - t0 < 30
        log = emu.state.builds[build_id].log_text()
        assert expected in log, log
        if repo == "offline":
            assert "127.0.0.1:9" in log or "proxyconnect" in log, log
    rule = create_rule(emu, "relay", "unbound", rule_body("/"))
    start = StartRepoBuildByRuleRequest.StartRepoBuildByRuleRequest()
    start.set_RepoNamespace("relay")
    start.set_RepoName("unbound")
    start.set_BuildRuleId(rule)
    expect_service_error(emu, start, "REPO_SOURCE_NOT_EXIST")


@pytest.fixture(scope="module")
def multi_image(upstream: Registry, image_factory: ImageFactory) -> PushedImage:
    """A two-platform OCI index (linux/amd64 + linux/arm64/v8)."""
    return image_factory.push(upstream, "multi", "1", OCI_INDEX_KIND, seed="acr-emulator-multi")


@pytest.mark.buildah
def test_enterprise_multi_platform_build_flow(
    acr_emulator: AcrEmulator, upstream: Registry, multi_image: PushedImage
) -> None:
    emu = acr_emulator
    emu.map_upstream("registry.k8s.io", upstream)
    emu.create_git_remote(
        "relay-bot/mirrors",
        {"d/pause/Dockerfile": f"FROM registry.k8s.io/multi:1@{multi_image.digest}\n"},
        tags=("v1",),
    )
    iid = emu.instance_id
    ns = EeCreateNamespace()
    ns.set_InstanceId(iid)
    ns.set_NamespaceName("relay")
    call(emu, ns)
    repo = CreateRepositoryRequest.CreateRepositoryRequest()
    repo.set_InstanceId(iid)
    repo.set_RepoNamespaceName("relay")
    repo.set_RepoName("pause")
    repo.set_RepoType("PRIVATE")
    repo.set_Summary("pause")
    repo_id = call(emu, repo)["RepoId"]
    assert repo_id.startswith("crr-")
    # Not in aliyun-python-sdk-cr 4.1.2: an RPC CommonRequest.
    bind = CommonRequest(
        domain=emu.endpoint,
        version="2018-12-01",
        action_name="CreateRepoSourceCodeRepo",
        product="cr",
    )
    bind.set_method("POST")
    for k, v in {
        "InstanceId": iid,
        "RepoId": repo_id,
        "CodeRepoType": "GITHUB",
        "CodeRepoNamespaceName": "relay-bot",
        "CodeRepoName": "mirrors",
        "OverseaBuild": "true",
        "DisableCacheBuild": "true",
    }.items():
        bind.add_query_param(k, v)
    assert call(emu, bind)["IsSuccess"] is True
    rule = EeCreateRepoBuildRule()
    rule.set_InstanceId(iid)
    rule.set_RepoId(repo_id)
    rule.set_PushType("GIT_TAG")
    rule.set_PushName("v1")
    rule.set_DockerfileLocation("/d/pause")
    rule.set_DockerfileName("Dockerfile")
    rule.set_ImageTag("3.9")
    rule.add_query_param("Platforms.1", "linux/amd64")  # RPC arrays are flattened
    rule.add_query_param("Platforms.2", "linux/arm64")
    rule_id = call(emu, rule)["BuildRuleId"]
    assert rule_id.startswith("crbr-")
    start = CreateBuildRecordByRuleRequest.CreateBuildRecordByRuleRequest()
    start.set_InstanceId(iid)
    start.set_RepoId(repo_id)
    start.set_BuildRuleId(rule_id)
    record_id = call(emu, start)["BuildRecordId"]
    emu.wait_idle(120)
    status = GetRepoBuildRecordStatusRequest.GetRepoBuildRecordStatusRequest()
    status.set_InstanceId(iid)
    status.set_RepoId(repo_id)
    status.set_BuildRecordId(record_id)
    got = call(emu, status)["BuildStatus"]
    assert got == "success", emu.state.builds[record_id].log_text()  # lower-case, as documented
    tags = ListRepoTagRequest.ListRepoTagRequest()
    tags.set_InstanceId(iid)
    tags.set_RepoId(repo_id)
    images = call(emu, tags)["Images"]
    amd64, arm64 = multi_image.children
    assert [(i["Tag"], "sha256:" + i["ImageId"]) for i in images] == [
        ("3.9", amd64.config_digest)  # an index is described by its linux/amd64 image
    ]
    build = emu.state.builds[record_id]
    assert emu.ee_registry_domain in build.log_text()
    print(f"\nreal 2-platform build, clone to push: {(build.finished - build.started) / 1000:.2f}s")
    # A manifest list whose per-platform configs are the upstream ones.
    with OracleClient(emu.registry) as oracle:
        index = json.loads(oracle.get_manifest("relay/pause", "3.9")[0])
        assert len(index["manifests"]) == 2
        configs = {}
        for desc in index["manifests"]:
            child = json.loads(oracle.get_manifest("relay/pause", desc["digest"])[0])
            configs[desc["platform"]["architecture"]] = child["config"]["digest"]
    assert configs == {"amd64": amd64.config_digest, "arm64": arm64.config_digest}
