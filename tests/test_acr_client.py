"""The ACR client without a server: error digging, retries, request building, proxies."""

from __future__ import annotations

import json

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.client import AcsClient

from relay.stages.acr import sdk as client_mod
from relay.stages.acr.api import CallStats, kind_of
from relay.stages.acr.enterprise import EnterpriseClient
from relay.stages.acr.errors import AcrError, dig, from_sdk
from relay.stages.acr.personal import PersonalClient
from relay.stages.acr.sdk import proxies_for, sdk_class
from relay.stages.acr.settings import AcrSettings, Credentials, RetrySettings, SourceSettings
from relay.stages.acr.state import Binding, RepoInfo, RuleSpec, normalise_digest, outcome
from relay.stages.acr.wire import PERSONAL_OPERATIONS, PERSONAL_VERSION

SECRET = "s3cr3t-DISTINCTIVE-acr-secret"
CREDS = Credentials("LTAItestkey", SECRET)


# --- errors --------------------------------------------------------------------------------------


def test_dig_lower_case_service_error() -> None:
    exc = ServerException(
        "SDK.UnknownServerError",
        'ServerResponseBody: {"code":"REPO_NOT_EXIST","message":"repo x does not exist"}',
        http_status=404,
    )
    err = from_sdk("GetRepoTags", exc)
    assert (err.code, err.message, err.http_status) == (
        "REPO_NOT_EXIST",
        "repo x does not exist",
        404,
    )
    assert err.not_found and not err.retryable
    assert "REPO_NOT_EXIST" in str(err) and "GetRepoTags" in str(err)


def test_dig_variants() -> None:
    assert dig('ServerResponseBody: {"Code":"X","Message":"m"}') == ("X", "m")
    assert dig("ServerResponseBody: not json") is None
    assert dig("ServerResponseBody: [1]") is None
    assert dig("no body here") is None
    err = from_sdk(
        "A", ServerException("SDK.UnknownServerError", "ServerResponseBody: <html>", 502)
    )
    assert err.code == "SDK.UnknownServerError" and err.message == "<html>" and err.retryable


def test_gateway_errors_and_retryable() -> None:
    throttled = from_sdk("A", ServerException("Throttling.User", "flow control", 400, "req-1"))
    assert throttled.throttled and throttled.retryable and throttled.request_id == "req-1"
    assert from_sdk("A", ServerException("ServiceUnavailable", "x", 503)).retryable
    assert from_sdk("A", ServerException("X", "x", 429)).retryable
    assert not from_sdk("A", ServerException("InvalidAccessKeyId.NotFound", "x", 404)).retryable
    # The SDK's own words (its vendored requests): a refused connection never reached the
    # server; a reset or a close after the request was sent may follow work done.
    refused = (
        "HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /repos "
        "(Caused by NewConnectionError('<HTTPConnection object>: Failed to establish a new "
        "connection: [Errno 111] Connection refused'))"
    )
    http = from_sdk("A", ClientException("SDK.HttpError", refused))
    assert http.transport and http.retryable and http.connect_failure and not http.ambiguous
    for lost in (
        "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))",
        "('Connection aborted.', RemoteDisconnected('Remote end closed connection without "
        "response'))",
        "HTTPConnectionPool(host='127.0.0.1', port=1): Read timed out. (read timeout=20)",
    ):
        err = from_sdk("A", ClientException("SDK.HttpError", lost))
        assert err.retryable and err.ambiguous and not err.connect_failure, lost


@pytest.mark.parametrize(
    ("code", "exists", "limit"),
    [
        ("REPO_ALREADY_EXIST", True, False),
        ("NAMESPACE_ALREADY_EXIST", True, False),
        ("REPO_NOT_EXIST", False, False),
        ("BUILD_RULE_LIMIT_EXCEED", False, True),
        ("BUILD_CONCURRENCY_LIMIT_EXCEED", False, True),
        ("REPO_SOURCE_ALREADY_EXIST", True, False),
    ],
)
def test_error_families(code: str, exists: bool, limit: bool) -> None:
    err = AcrError("A", code, "")
    assert (err.already_exists, err.limit_reached) == (exists, limit)


def test_status_outcomes_ignore_case() -> None:
    assert outcome("success") == outcome("SUCCESS") == "success"
    for status in ("FAILED", "canceled", "CANCELLED", "error"):
        assert outcome(status) == "failed"
    for status in ("PENDING", "BUILDING", "", None, "SOMETHING_NEW"):
        assert outcome(status) == "running"


def test_normalise_digest() -> None:
    assert normalise_digest("a" * 64) == "sha256:" + "a" * 64
    assert normalise_digest("sha256:" + "B" * 64) == "sha256:" + "b" * 64
    assert normalise_digest("") is None and normalise_digest(None) is None


# --- retry ---------------------------------------------------------------------------------------


# --- requests, through a fake transport ------------------------------------------------------------


def settings(**kw: object) -> AcrSettings:
    base = dict(
        namespace="mirrors",
        source=SourceSettings("octo/relay"),
        retry=RetrySettings(attempts=4, backoff=0.0, max_backoff=0.0),
    )
    return AcrSettings(**(base | kw))  # type: ignore[arg-type]


class FakeTransport:
    """Stands in for AcsClient.do_action_with_exception: records requests, plays answers."""

    def __init__(self, answers: list[object]) -> None:
        self.answers = list(answers)
        self.requests: list[dict] = []

    def __call__(self, acs: AcsClient, request) -> bytes:  # noqa: ANN001
        if hasattr(request, "trans_to_acs_request"):
            request.trans_to_acs_request()
            inner = request.request
        else:
            inner = request
        self.requests.append(
            {
                "action": inner.get_action_name(),
                "method": inner.get_method(),
                "uri": inner.get_uri_pattern(),
                "path": dict(getattr(inner, "get_path_params", lambda: {})() or {}),
                "query": dict(inner.get_query_params() or {}),
                "body": inner.get_content(),
                "content_type": inner.get_headers().get("Content-Type"),
                "endpoint": request.endpoint,
                "proxy": acs.proxy,
            }
        )
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return json.dumps(answer).encode()


@pytest.fixture
def sdk_answers(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    def install(answers: list[object]) -> FakeTransport:
        transport = FakeTransport(answers)
        monkeypatch.setattr(
            AcsClient, "do_action_with_exception", lambda acs, request: transport(acs, request)
        )
        return transport

    return install


def test_personal_create_repo_body_and_binding_check(sdk_answers) -> None:  # noqa: ANN001
    binding = Binding("octo", "relay")
    source_answer = {
        "data": {
            "repoSource": {
                "source": {"sourceRepoNamespace": "octo", "sourceRepoName": "relay"},
                "buildConfig": {"isAutoBuild": False, "isOversea": True, "isDisableCache": True},
            }
        }
    }
    transport = sdk_answers([{"data": {}, "requestId": "r"}, source_answer])
    stats = CallStats()
    c = PersonalClient(settings(), CREDS, env={"HTTPS_PROXY": "http://proxy:3128"}, stats=stats)
    c.create_repo("mirrors", "nginx", summary="s", detail="d", binding=binding)
    create, get = transport.requests
    assert (create["action"], create["method"], create["uri"]) == ("CreateRepo", "PUT", "/repos")
    assert create["content_type"] == "application/json"
    body = json.loads(create["body"])
    assert body["Repo"] == {
        "RepoNamespace": "mirrors",
        "RepoName": "nginx",
        "Summary": "s",
        "Detail": "d",
        "RepoType": "PRIVATE",
        "RepoBuildType": "MANUAL",
    }
    assert body["RepoSource"] == {
        "Source": {
            "SourceRepoType": "GITHUB",
            "SourceRepoNamespace": "octo",
            "SourceRepoName": "relay",
        },
        "BuildConfig": {"IsAutoBuild": False, "IsOversea": True, "IsDisableCache": True},
    }
    assert create["endpoint"] == "https://cr.cn-hangzhou.aliyuncs.com"
    assert create["proxy"] == {"http": None, "https": "http://proxy:3128"}
    # GetRepoSourceRepo is not in the SDK: a CommonRequest with the table's method and URI.
    assert (get["action"], get["method"]) == ("GetRepoSourceRepo", "GET")
    assert get["path"] == {"RepoNamespace": "mirrors", "RepoName": "nginx"}
    assert (stats.writes, stats.reads) == (1, 1)


def test_personal_create_repo_rebinds_when_repo_source_was_ignored(sdk_answers) -> None:  # noqa: ANN001
    transport = sdk_answers([{"data": {}}, {"data": {}}, {"data": {}}])
    c = PersonalClient(settings(), CREDS, env={})
    c.create_repo("mirrors", "nginx", summary="s", detail="d", binding=Binding("octo", "relay"))
    update = transport.requests[2]
    assert (update["action"], update["method"]) == ("UpdateRepoSourceRepo", "POST")
    assert update["uri"] == "/repos/[RepoNamespace]/[RepoName]/sourceRepo"
    assert json.loads(update["body"])["RepoSource"]["BuildConfig"]["IsOversea"] is True


def test_retries_count_every_attempt_and_ids_are_strings(sdk_answers) -> None:  # noqa: ANN001
    throttled = ServerException("Throttling.User", "flow control", 400)
    unavailable = ServerException("SDK.UnknownServerError", 'ServerResponseBody: {"code":"X"}', 503)
    transport = sdk_answers([throttled, unavailable, {"data": {"buildStatus": "success"}}])
    stats = CallStats()
    c = PersonalClient(settings(), CREDS, env={}, stats=stats, sleep=lambda _: None)
    repo = RepoInfo("mirrors", "nginx")
    assert c.build_status(repo, 12345) == "success"  # type: ignore[arg-type]
    assert stats.reads == 3 and stats.retries == 2
    assert all(isinstance(v, str) for r in transport.requests for v in r["path"].values())


def test_a_2xx_carrying_an_error_is_an_error(sdk_answers) -> None:  # noqa: ANN001
    sdk_answers([{"code": "REQUEST_BODY_FORMAT_INVALID", "message": "bad"}])
    c = PersonalClient(settings(), CREDS, env={})
    with pytest.raises(AcrError, match="REQUEST_BODY_FORMAT_INVALID"):
        c.create_namespace("mirrors")


def test_personal_rule_and_list_parsing(sdk_answers) -> None:  # noqa: ANN001
    rules = {
        "data": {
            "buildRules": [
                {
                    "buildRuleId": 129304,
                    "pushType": "GIT_BRANCH",
                    "pushName": "main",
                    "dockerfileLocation": "/mirrors/dockerfiles/nginx/1.27/",
                    "dockerfileName": "Dockerfile",
                    "imageTag": "1.27",
                }
            ]
        }
    }
    page1 = {
        "data": {"repos": [{"repoName": f"r{i}", "summary": "x"} for i in range(100)], "total": 130}
    }
    page2 = {"data": {"repos": [{"repoName": f"s{i}"} for i in range(30)], "total": 130}}
    transport = sdk_answers([rules, {"data": {"buildRuleId": 7}}, page1, page2])
    c = PersonalClient(settings(), CREDS, env={})
    repo = RepoInfo("mirrors", "nginx")
    (rule,) = c.list_rules(repo)
    assert rule.rule_id == "129304" and rule.image_tag == "1.27"
    spec = RuleSpec("1.27", "/mirrors/dockerfiles/nginx/1.27/", "main")
    assert rule.matches(spec, check_platforms=False)
    assert c.create_rule(repo, spec) == "7"
    body = json.loads(transport.requests[1]["body"])["BuildRule"]
    assert body["ImageTag"] == body["Tag"] == "1.27" and body["PushType"] == "GIT_BRANCH"
    assert len(c.list_repos("mirrors")) == 130
    assert [r["query"]["Page"] for r in transport.requests[2:]] == ["1", "2"]


def test_enterprise_rpc_and_is_success(sdk_answers) -> None:  # noqa: ANN001
    transport = sdk_answers(
        [
            {"IsSuccess": True, "BuildRuleId": "crbr-1", "Code": "success"},
            {"IsSuccess": False, "Code": "INSTANCE_NOT_EXIST", "Message": "no", "RequestId": "q"},
        ]
    )
    c = EnterpriseClient(settings(edition="enterprise", instance_id="cri-x"), CREDS, env={})
    repo = RepoInfo("mirrors", "nginx", repo_id="crr-1")
    spec = RuleSpec(
        "1.27", "/mirrors/dockerfiles/nginx/1.27/", "main", ("linux/amd64", "linux/arm64")
    )
    assert c.create_rule(repo, spec) == "crbr-1"
    query = transport.requests[0]["query"]
    assert query["InstanceId"] == "cri-x" and query["RepoId"] == "crr-1"
    assert query["Platforms.1"] == "linux/amd64" and query["Platforms.2"] == "linux/arm64"
    with pytest.raises(AcrError, match="INSTANCE_NOT_EXIST"):
        c.list_rules(repo)


def test_operation_table_matches_the_sdk() -> None:
    for action, (method, uri) in PERSONAL_OPERATIONS.items():
        cls = sdk_class(PERSONAL_VERSION, action)
        if cls is None:
            assert action in ("GetRepoSourceRepo", "UpdateRepoSourceRepo")
            continue
        request = cls()
        assert (request.get_method(), request.get_uri_pattern()) == (method, uri), action


def test_kinds() -> None:
    assert kind_of("GetRepoListByNamespace") == kind_of("ListRepository") == "list"
    assert kind_of("GetRepoTags") == kind_of("ListRepoTag") == "read"
    assert kind_of("CreateRepo") == kind_of("StartRepoBuildByRule") == "write"


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("http://127.0.0.1:9", {"HTTP_PROXY": "http://p:1"}, {"http": None, "https": None}),
        ("http://localhost:9", {"http_proxy": "http://p:1"}, {"http": None, "https": None}),
        ("https://cr.x.com", {}, {"http": None, "https": None}),
        ("https://cr.x.com", {"HTTPS_PROXY": "http://p:1"}, {"http": None, "https": "http://p:1"}),
        (
            "https://cr.x.com",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".x.com"},
            {"http": None, "https": None},
        ),
        (
            "https://cr.x.com",
            {"https_proxy": "http://p:1", "no_proxy": "*"},
            {"http": None, "https": None},
        ),
        # CIDRs, read the way the registry client reads them (requests' rule).
        (
            "https://10.1.2.3:8443",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"},
            {"http": None, "https": None},
        ),
        (
            "https://11.1.2.3",
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"},
            {"http": None, "https": "http://p:1"},
        ),
    ],
)
def test_proxies(url: str, env: dict[str, str], expected: dict) -> None:
    assert proxies_for(url, env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ALL_PROXY": "socks5h://p:1"}, {"http": "socks5h://p:1", "https": "socks5h://p:1"}),
        ({"all_proxy": "http://p:1", "NO_PROXY": "aliyuncs.com"}, {"http": None, "https": None}),
        (
            {"ALL_PROXY": "http://a:1", "HTTPS_PROXY": "http://s:1"},
            {"http": "http://a:1", "https": "http://s:1"},
        ),
    ],
)
def test_all_proxy_is_honoured_like_the_registry_client(env: dict, expected: dict) -> None:
    """The ACR client used to ignore ALL_PROXY; it now shares relay.net.proxies' rule."""
    url = "https://cr.cn-hangzhou.aliyuncs.com"
    assert proxies_for(url, env) == expected
    from relay.net.proxies import proxy_for

    assert proxy_for(url, env) == expected["https"]


def test_secret_is_not_in_errors_or_repr(sdk_answers) -> None:  # noqa: ANN001
    sdk_answers(
        [ServerException("InvalidAccessKeySecret", "The AccessKeySecret is incorrect.", 400)]
    )
    c = PersonalClient(settings(), CREDS, env={})
    with pytest.raises(AcrError) as info:
        c.list_namespaces()
    assert SECRET not in str(info.value) and SECRET not in repr(c)
    assert client_mod.READ_TIMEOUT > 0


def test_platform_matching_for_upstream_configs() -> None:
    from relay.platforms import matches as platform_matches

    assert platform_matches("linux/amd64", {"os": "linux", "architecture": "amd64"})
    assert platform_matches(
        "linux/arm64", {"os": "linux", "architecture": "arm64", "variant": "v8"}
    )
    assert platform_matches("linux/arm64/v8", {"os": "linux", "architecture": "arm64"})
    assert not platform_matches(
        "linux/arm/v7", {"os": "linux", "architecture": "arm", "variant": "v6"}
    )
    assert not platform_matches("linux/amd64", {"os": "windows", "architecture": "amd64"})


def test_an_error_inside_a_2xx_is_retried_like_any_other(sdk_answers) -> None:  # noqa: ANN001
    """Throttling in a personal 2xx body, SystemError with IsSuccess false in an Enterprise
    200 (docs/vendors/acr.md#error-shapes, #error-codes): both retryable, both retried by the
    one retry helper; a non-retryable one is not."""
    sdk_answers([{"code": "Throttling", "message": "slow down"}, {"data": {"buildStatus": "x"}}])
    stats = CallStats()
    c = PersonalClient(settings(), CREDS, env={}, stats=stats, sleep=lambda _: None)
    assert c.build_status(RepoInfo("mirrors", "nginx"), "1") == "x"
    assert stats.retries == 1
    failed = {"IsSuccess": False, "Code": "SystemError", "Message": "", "RequestId": "r"}
    ok = {"IsSuccess": True, "Code": "success", "BuildStatus": "SUCCESS"}
    sdk_answers([failed, ok])
    ee = settings(edition="enterprise", instance_id="cri-x")
    stats = CallStats()
    e = EnterpriseClient(ee, CREDS, env={}, stats=stats, sleep=lambda _: None)
    assert e.build_status(RepoInfo("m", "n", "crr-1"), "b") == "SUCCESS"
    assert stats.retries == 1
    sdk_answers([{"IsSuccess": False, "Code": "NoPrivilege", "Message": "", "RequestId": "r"}])
    stats = CallStats()
    e = EnterpriseClient(ee, CREDS, env={}, stats=stats, sleep=lambda _: None)
    with pytest.raises(AcrError, match="NoPrivilege"):
        e.build_status(RepoInfo("m", "n", "crr-1"), "b")
    assert stats.retries == 0


def test_after_ctrl_c_no_request_goes_out_and_waits_end(sdk_answers) -> None:  # noqa: ANN001
    """The CLI's Ctrl-C (relay.net.cancel.trigger): a worker's next ACR call raises Interrupted
    before sending, and a retry wait ends at once instead of sleeping (the default wait is
    cancel.pause, not time.sleep)."""
    from relay.net import cancel, deadline

    transport = sdk_answers([{"data": {}}])
    c = PersonalClient(settings(), CREDS, env={})
    try:
        cancel.trigger()
        with pytest.raises(cancel.Interrupted):
            c.create_repo(
                "mirrors", "nginx", summary="s", detail="d", binding=Binding("octo", "relay")
            )
        assert transport.requests == []
    finally:
        cancel.reset()
        deadline.reset_abort()
    throttled = ServerException("Throttling.User", "flow control", 400)
    transport = sdk_answers([throttled, {"data": {}}])
    slow = settings(retry=RetrySettings(attempts=3, backoff=3600.0, max_backoff=3600.0))
    c = PersonalClient(slow, CREDS, env={})
    import threading

    threading.Timer(0.2, cancel.trigger).start()
    try:
        with pytest.raises(cancel.Interrupted):
            c.create_namespace("mirrors")  # would wait an hour with time.sleep
        assert len(transport.requests) == 1
    finally:
        cancel.reset()
        deadline.reset_abort()


def test_personal_builds_are_read_over_every_page_newest_first(sdk_answers) -> None:  # noqa: ANN001
    """GetRepoBuildList's order and paging are UNCONFIRMED: a listing served oldest first, 30
    a page, still yields the newest build first, and one on page 2 is found."""

    def build(i: int) -> dict:
        return {
            "buildId": str(i),
            "buildStatus": "SUCCESS",
            "startTime": 1000 + i,
            "image": {"tag": "t"},
        }

    page1 = {"data": {"builds": [build(i) for i in range(30)], "total": 35}}
    page2 = {"data": {"builds": [build(i) for i in range(30, 35)], "total": 35}}
    transport = sdk_answers([page1, page2])
    c = PersonalClient(settings(), CREDS, env={})
    builds = c.list_builds(RepoInfo("mirrors", "nginx"))
    assert [b.build_id for b in builds][:3] == ["34", "33", "32"] and len(builds) == 35
    assert [r["query"]["Page"] for r in transport.requests] == ["1", "2"]


def test_personal_binding_flags_given_as_strings_read_as_booleans(sdk_answers) -> None:  # noqa: ANN001
    """A "false" string is false (wire.truthy), else every run would rebind."""
    source = {"sourceRepoNamespace": "octo", "sourceRepoName": "relay"}
    config = {"isOversea": "true", "isDisableCache": "true", "isAutoBuild": "false"}
    sdk_answers([{"data": {"repoSource": {"source": source, "buildConfig": config}}}])
    c = PersonalClient(settings(), CREDS, env={})
    got = c.get_binding(RepoInfo("mirrors", "nginx"))
    assert got == Binding("octo", "relay", overseas=True, no_cache=True, auto_build=False)
