"""The Harbor emulator holds clients to Harbor's contract, and really replicates.

Plain ``requests`` calls (cookies off unless a test wants them), as a script would make them.
Replication tests run real copies: ACR stand-in registry -> skopeo -> Harbor stand-in registry.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from relay.sandbox.harbor import Quirks
from relay.sandbox.harbor.cron import MINUTES_MESSAGE, SECONDS_MESSAGE
from relay.sandbox.harbor.patterns import match, replace_namespace, specific_component
from tests.fixtures.harbor import robot
from tests.fixtures.registries import http_session

pytestmark = pytest.mark.slow

if TYPE_CHECKING:
    from tests.fixtures.harbor import HarborEmulator, HarborFactory
    from tests.fixtures.skopeo import Skopeo


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def error(resp: requests.Response) -> tuple[str, str]:
    """(code, message) of a Harbor error body, after checking its exact shape."""
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers.get("X-Request-Id")
    body = resp.json()
    assert list(body) == ["errors"] and len(body["errors"]) == 1
    assert set(body["errors"][0]) == {"code", "message"}
    return body["errors"][0]["code"], body["errors"][0]["message"]


def create_acr_registry(h: HarborEmulator, s: requests.Session, **overrides: Any) -> int:
    resp = s.post(h.api + "/registries", json=h.acr_registry_body(**overrides))
    assert resp.status_code == 201, resp.text
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def policy_body(registry_id: int, name: str = "acr-myns", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "src_registry": {"id": registry_id},
        "dest_namespace": "mirror",
        "dest_namespace_replace_count": 1,
        "filters": [{"type": "name", "value": "myns/**"}],
        "trigger": {"type": "manual"},
        "enabled": True,
        "deletion": False,
        "override": True,
    }
    body.update(overrides)
    return body


def create_policy(h: HarborEmulator, s: requests.Session, registry_id: int, **kw: Any) -> int:
    resp = s.post(h.api + "/replication/policies", json=policy_body(registry_id, **kw))
    assert resp.status_code == 201, resp.text
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def run(h: HarborEmulator, s: requests.Session, policy_id: int) -> dict[str, Any]:
    resp = s.post(h.api + "/replication/executions", json={"policy_id": policy_id})
    assert resp.status_code == 201, resp.text
    location = resp.headers["Location"]
    assert location.startswith("/api/v2.0/replication/executions/")
    execution_id = int(location.rsplit("/", 1)[1])
    h.wait_execution(execution_id)
    execution: dict[str, Any] = s.get(h.url + location).json()
    return execution


def tasks_of(h: HarborEmulator, s: requests.Session, execution_id: int) -> list[dict[str, Any]]:
    resp = s.get(h.api + f"/replication/executions/{execution_id}/tasks")
    assert resp.status_code == 200
    tasks: list[dict[str, Any]] = resp.json()
    return tasks


@pytest.fixture
def h(harbor_emulator: HarborEmulator) -> HarborEmulator:
    return harbor_emulator


@pytest.fixture
def s(h: HarborEmulator) -> requests.Session:
    return h.session()


# --------------------------------------------------------------------------------------------
# readiness, systeminfo
# --------------------------------------------------------------------------------------------


def test_ping_health_and_systeminfo_by_audience(h: HarborEmulator) -> None:
    anon = http_session()
    ping = anon.get(h.api + "/ping")
    assert (ping.status_code, ping.text, ping.headers["Content-Type"]) == (
        200,
        "Pong",
        "text/plain",
    )
    health = anon.get(h.api + "/health").json()
    assert health["status"] == "healthy"
    assert {c["name"] for c in health["components"]} >= {"core", "registry", "jobservice"}
    public = anon.get(h.api + "/systeminfo").json()
    assert "harbor_version" not in public and public["auth_mode"] == "db_auth"
    private = h.session().get(h.api + "/systeminfo").json()
    assert private["harbor_version"].startswith("v2.15.2-")
    assert private["read_only"] is False
    assert h.writes() == []  # nothing here is a write


# --------------------------------------------------------------------------------------------
# swagger validation
# --------------------------------------------------------------------------------------------


def test_unknown_field_is_rejected_naming_it(h: HarborEmulator, s: requests.Session) -> None:
    body = h.acr_registry_body()
    body["credentials"] = body.pop("credential")  # a typo real Harbor would drop silently
    resp = s.post(h.api + "/registries", json=body)
    assert resp.status_code == 422
    code, message = error(resp)
    assert code == "UNPROCESSABLE_ENTITY"
    assert (
        message == "validation failure list:\nregistry.credentials in body is a forbidden property"
    )
    assert h.state.registries == {} and h.openapi_calls == {}
    assert [(c.action, c.status, c.is_write) for c in h.calls] == [("createRegistry", 422, True)]


def test_wrong_type_is_rejected_like_a_go_json_error(
    h: HarborEmulator, s: requests.Session
) -> None:
    resp = s.post(h.api + "/registries", json=h.acr_registry_body(insecure="no"))
    assert resp.status_code == 422
    _, message = error(resp)
    assert "cannot unmarshal string into Go struct field Registry.insecure of type bool" in message
    nested = s.post(
        h.api + "/replication/policies", json={"name": "p", "src_registry": {"id": "1"}}
    )
    assert "Go struct field ReplicationPolicy.src_registry.id of type int64" in error(nested)[1]
    too_big = s.post(h.api + "/replication/policies", json={"dest_namespace_replace_count": 300})
    assert (
        "cannot unmarshal number 300" in error(too_big)[1] and "of type int8" in error(too_big)[1]
    )


def test_unknown_fields_are_dropped_with_the_real_servers_quirk(
    harbor_factory: HarborFactory,
) -> None:
    h = harbor_factory(quirks=Quirks(unknown_fields="ignore"))
    s = h.session()
    registry_id = create_acr_registry(h, s, colour="blue")
    policy_id = create_policy(h, s, registry_id, replicate_deletion=True, dest_namespcae="typo")
    policy = s.get(h.api + f"/replication/policies/{policy_id}").json()
    assert "colour" not in s.get(h.api + f"/registries/{registry_id}").json()
    assert "replicate_deletion" not in policy  # false, and false is omitted
    assert policy["name"] == "acr-myns" and "dest_namespcae" not in policy


def test_query_parameters_are_typed_and_bounded(h: HarborEmulator, s: requests.Session) -> None:
    resp = s.get(h.api + "/registries", params={"page": "two"})
    assert resp.status_code == 422
    assert error(resp)[1] == 'validation failure list:\npage in query must be of type int64: "two"'
    resp = s.get(h.api + "/registries", params={"page_size": 101})
    assert error(resp)[1].endswith("page_size in query should be less than or equal to 100")
    resp = s.get(h.api + "/registries", params={"pagesize": 5})
    assert resp.status_code == 422 and "pagesize in query" in error(resp)[1]
    resp = s.get(h.api + "/registries/abc")
    assert resp.status_code == 422 and 'id in path must be of type int64: "abc"' in error(resp)[1]


def test_unsupported_paths_and_methods(h: HarborEmulator, s: requests.Session) -> None:
    resp = s.get(h.api + "/nothing/here")
    assert resp.status_code == 404
    assert error(resp) == ("NOT_FOUND", "path /api/v2.0/nothing/here was not found")
    resp = s.patch(h.api + "/registries/1", json={})
    assert resp.status_code == 405 and error(resp)[0] == "METHOD_NOT_ALLOWED"
    resp = s.post(
        h.api + "/registries", data=b"x" * (2 << 20), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413


# --------------------------------------------------------------------------------------------
# auth and CSRF
# --------------------------------------------------------------------------------------------


def test_unauthenticated_and_wrong_password_get_401(h: HarborEmulator) -> None:
    for auth in (None, ("admin", "wrong")):
        resp = http_session().get(h.api + "/registries", auth=auth)
        assert resp.status_code == 401
        assert error(resp) == ("UNAUTHORIZED", "unauthorized")
    # a failed login is anonymous, not refused: public endpoints still answer
    resp = http_session().get(h.api + "/projects", auth=("admin", "wrong"))
    assert resp.status_code == 200 and [p["name"] for p in resp.json()] == ["library"]


def test_robot_permissions_and_403_shape(harbor_factory: HarborFactory) -> None:
    reader = robot("reader", [("registry", "list")])
    full = robot("relay")
    h = harbor_factory(robots=[reader, full])
    as_reader = h.session(auth=(reader.username, reader.secret))
    assert as_reader.get(h.api + "/registries").status_code == 200
    resp = as_reader.post(h.api + "/registries", json=h.acr_registry_body())
    assert resp.status_code == 403
    assert error(resp) == ("FORBIDDEN", "robot$reader")
    resp = as_reader.get(h.api + "/users/current")
    assert resp.status_code == 412 and error(resp)[0] == "PRECONDITION"
    as_full = h.session(auth=(full.username, full.secret))
    assert create_acr_registry(h, as_full) == 1
    assert h.calls[-1].user == "robot$relay"


def test_a_system_robot_finds_projects_by_listing_not_by_name(
    harbor_factory: HarborFactory,
) -> None:
    # Harbor judges a system robot by its system permissions only; none covers a project's own
    # resource, so reading one project by name is 403 even when it is public, while the list
    # shows every project to a robot allowed project/list (handler/project.go).
    listing = robot("relay", [("project", "list"), ("project", "create")])
    h = harbor_factory(robots=[listing])
    as_robot = h.session(auth=(listing.username, listing.secret))
    assert as_robot.post(h.api + "/projects", json={"project_name": "mirror"}).status_code == 201
    for path in ("/projects/mirror", "/projects/library"):
        resp = as_robot.get(h.api + path)
        assert resp.status_code == 403 and error(resp) == ("FORBIDDEN", "robot$relay")
    resp = as_robot.head(h.api + "/projects", params={"project_name": "mirror"})
    assert resp.status_code == 403
    found = as_robot.get(h.api + "/projects", params={"q": "name=mirror"}).json()
    assert [p["name"] for p in found] == ["mirror"]
    assert h.session().get(h.api + "/projects/mirror").status_code == 200  # the admin may


def test_filters_longer_than_their_column_are_a_500(h: HarborEmulator) -> None:
    # replication_policy.filters is varchar(1024): the driver's error is a plain Go error.
    s = h.session()
    registry_id = create_acr_registry(h, s)

    def body(value: str) -> dict[str, Any]:
        return {
            "name": "p",
            "src_registry": {"id": registry_id},
            "dest_namespace": "mirror",
            "filters": [{"type": "name", "value": value}],
            "trigger": {"type": "manual"},
        }

    fits = "ns/" + "a" * (1024 - len('[{"type":"name","value":"ns/"}]'))
    resp = s.post(h.api + "/replication/policies", json=body(fits))
    assert resp.status_code == 201
    policy_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    resp = s.put(h.api + f"/replication/policies/{policy_id}", json=body(fits + "a"))
    assert resp.status_code == 500
    assert error(resp) == ("UNKNOWN", "internal server error")
    resp = s.post(h.api + "/replication/policies", json={**body(fits + "a"), "name": "q"})
    assert resp.status_code == 500
    stored = s.get(h.api + f"/replication/policies/{policy_id}").json()
    assert stored["filters"][0]["value"] == fits


def test_robots_hold_no_system_permissions_before_2_10(harbor_factory: HarborFactory) -> None:
    full = robot("relay")
    h = harbor_factory(version="v2.9.1", robots=[full])
    resp = h.session(auth=(full.username, full.secret)).get(h.api + "/registries")
    assert resp.status_code == 403 and error(resp) == ("FORBIDDEN", "robot$relay")


def test_csrf_trap_for_clients_that_keep_the_sid_cookie(h: HarborEmulator) -> None:
    keeping = h.session(cookies=True)
    first = keeping.get(h.api + "/systeminfo")
    assert "sid" in first.cookies
    resp = keeping.post(h.api + "/projects", json={"project_name": "mirror"})
    assert resp.status_code == 403
    assert error(resp) == ("FORBIDDEN", "CSRF token invalid")
    assert h.state.project_by_name("mirror") is None
    token = first.headers["X-Harbor-Csrf-Token"]
    resp = keeping.post(
        h.api + "/projects",
        json={"project_name": "mirror"},
        headers={"X-Harbor-CSRF-Token": token},
    )
    assert resp.status_code == 201
    # without cookies there is no CSRF check at all
    resp = h.session().post(h.api + "/projects", json={"project_name": "other"})
    assert resp.status_code == 201


# --------------------------------------------------------------------------------------------
# registries
# --------------------------------------------------------------------------------------------


def test_create_registry_health_checks_with_the_real_signature(
    h: HarborEmulator, s: requests.Session
) -> None:
    body = h.acr_registry_body(url="  https://cr.cn-hangzhou.aliyuncs.com/ ")
    resp = s.post(h.api + "/registries", json=body)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == "/api/v2.0/registries/1"  # relative
    got = s.get(h.api + "/registries/1").json()
    # trimmed, and cr.<region> rewritten to registry.<region> (and stored so)
    assert got["url"] == "https://registry.cn-hangzhou.aliyuncs.com"
    assert got["credential"] == {
        "type": "basic",
        "access_key": h.acr.access_key_id,
        "access_secret": "*****",
    }
    assert got["status"] == "healthy"
    assert "ca_certificate" not in got and "insecure" not in got  # unset pointer; false
    # Harbor asked ACR for a temporary token, signed with the stored AccessKey
    token_calls = [c for c in h.acr.calls if c.action == "GetAuthorizationToken"]
    assert [(c.status, c.code) for c in token_calls] == [(200, None)]
    assert h.openapi_calls == {"GetAuthorizationToken": 1}
    duplicate = s.post(h.api + "/registries", json=h.acr_registry_body())
    assert duplicate.status_code == 409
    assert error(duplicate) == ("CONFLICT", "registry acr-hangzhou already exists")


def test_cr_url_kept_as_sent_with_the_quirk_off(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(quirks=Quirks(persist_rewritten_cr_url=False))
    s = h.session()
    registry_id = create_acr_registry(h, s, url="https://cr.cn-hangzhou.aliyuncs.com")
    assert s.get(h.api + f"/registries/{registry_id}").json()["url"] == (
        "https://cr.cn-hangzhou.aliyuncs.com"
    )


def test_wrong_access_key_secret_is_unhealthy_400(h: HarborEmulator, s: requests.Session) -> None:
    body = h.acr_registry_body()
    body["credential"]["access_secret"] = "not-the-secret"
    resp = s.post(h.api + "/registries", json=body)
    assert resp.status_code == 400
    assert error(resp) == ("BAD_REQUEST", "the registry is unhealthy")
    assert [(c.action, c.code) for c in h.acr.calls] == [
        ("GetAuthorizationToken", "SignatureDoesNotMatch")
    ]
    assert h.state.registries == {}
    assert "not-the-secret" not in "\n".join(h.server.core_log) + repr(h.calls)


def test_unknown_type_unreachable_or_foreign_registry_is_a_generic_500(
    h: HarborEmulator, s: requests.Session
) -> None:
    cases = [
        (h.acr_registry_body(type="ali-acrr"), "adapter factory for ali-acrr not found"),
        (h.acr_registry_body(url="https://127.0.0.1:9"), 'Get "https://127.0.0.1:9/v2/"'),
        # the Harbor stand-in answers with a Basic challenge: not an ACR registry
        (h.acr_registry_body(url=h.registry.url), "bearer auth scheme isn't supported"),
    ]
    for body, cause in cases:
        resp = s.post(h.api + "/registries", json=body)
        assert resp.status_code == 500
        assert error(resp) == ("UNKNOWN", "internal server error")
        assert cause in h.server.core_log[-1]


def test_missing_credential_status_is_a_quirk(harbor_factory: HarborFactory) -> None:
    strict, kind = harbor_factory(), harbor_factory(quirks=Quirks(missing_credential_status=400))
    for h, status in ((strict, 500), (kind, 400)):
        body = h.acr_registry_body()
        del body["credential"]
        assert h.session().post(h.api + "/registries", json=body).status_code == status


def test_registry_put_is_flat_and_partial(h: HarborEmulator, s: requests.Session) -> None:
    registry_id = create_acr_registry(h, s)
    resp = s.put(h.api + f"/registries/{registry_id}", json={"description": "renamed"})
    assert resp.status_code == 200
    got = s.get(h.api + f"/registries/{registry_id}").json()
    assert (got["description"], got["name"]) == ("renamed", "acr-hangzhou")
    nested = s.put(h.api + f"/registries/{registry_id}", json={"credential": {"access_key": "x"}})
    assert nested.status_code == 422  # RegistryUpdate is flat
    wrong = s.put(h.api + f"/registries/{registry_id}", json={"access_secret": "wrong"})
    assert wrong.status_code == 400 and error(wrong)[1] == "the registry is unhealthy"


def test_url_change_without_secret_clears_it_from_2_16(harbor_factory: HarborFactory) -> None:
    for version, expected in (("v2.15.2", 200), ("v2.16.0", 400)):
        h = harbor_factory(version=version)
        s = h.session()
        registry_id = create_acr_registry(h, s)
        # the same registry under its VPC name (both map to the stand-in)
        resp = s.put(
            h.api + f"/registries/{registry_id}",
            json={"url": "https://registry-vpc.cn-hangzhou.aliyuncs.com"},
        )
        assert resp.status_code == expected, (version, resp.text)


def test_registry_delete_refused_while_a_policy_uses_it(
    h: HarborEmulator, s: requests.Session
) -> None:
    registry_id = create_acr_registry(h, s)
    policy_id = create_policy(h, s, registry_id)
    resp = s.delete(h.api + f"/registries/{registry_id}")
    assert resp.status_code == 412
    assert error(resp) == (
        "PRECONDITION",
        f"the registry {registry_id} is referenced by replication policies, cannot delete it",
    )
    assert s.delete(h.api + f"/replication/policies/{policy_id}").status_code == 200
    assert s.delete(h.api + f"/registries/{registry_id}").status_code == 200
    assert s.get(h.api + f"/registries/{registry_id}").status_code == 404


def test_registry_ping_info_and_adapters(h: HarborEmulator, s: requests.Session) -> None:
    body = {
        "type": "ali-acr",
        "url": h.acr_url,
        "credential_type": "basic",
        "access_key": h.acr.access_key_id,
        "access_secret": h.acr.access_key_secret,
    }
    assert s.post(h.api + "/registries/ping", json=body).status_code == 200
    resp = s.post(h.api + "/registries/ping", json={"type": "ali-acr"})
    assert error(resp) == ("BAD_REQUEST", "type or url cannot be empty")
    registry_id = create_acr_registry(h, s)
    info = s.get(h.api + f"/registries/{registry_id}/info").json()
    assert info["supported_triggers"] == ["manual", "scheduled"]
    assert {f["type"] for f in info["supported_resource_filters"]} == {"name", "tag", "resource"}
    assert "ali-acr" in s.get(h.api + "/replication/adapters").json()
    infos = s.get(h.api + "/replication/adapterinfos").json()
    endpoints = {e["key"]: e["value"] for e in infos["ali-acr"]["endpoint_pattern"]["endpoints"]}
    assert (
        endpoints["cn-hangzhou-ee"] == "https://instanceName-registry.cn-hangzhou.cr.aliyuncs.com"
    )


def test_empty_adapter_whitelist_lists_nothing_from_2_14(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(adapter_whitelist=None)
    assert h.session().get(h.api + "/replication/adapters").json() == []
    old = harbor_factory(version="v2.13.0", adapter_whitelist=None)
    assert "ali-acr" in old.session().get(old.api + "/replication/adapters").json()


# --------------------------------------------------------------------------------------------
# paging
# --------------------------------------------------------------------------------------------


def test_list_paging_headers_and_q(h: HarborEmulator, s: requests.Session) -> None:
    registry_id = create_acr_registry(h, s)
    for name in ("alpha", "beta", "alphabet"):
        create_policy(h, s, registry_id, name=name)
    resp = s.get(h.api + "/replication/policies", params={"page": 2, "page_size": 1})
    assert resp.status_code == 200 and resp.headers["X-Total-Count"] == "3"
    assert resp.headers["Link"] == (
        '</api/v2.0/replication/policies?page=1&page_size=1>; rel="prev" , '
        '</api/v2.0/replication/policies?page=3&page_size=1>; rel="next"'
    )
    assert resp.links["next"]["url"].endswith("page=3&page_size=1")
    # default sort is creation_time desc
    assert [p["name"] for p in s.get(h.api + "/replication/policies").json()] == [
        "alphabet",
        "beta",
        "alpha",
    ]
    exact = s.get(h.api + "/replication/policies", params={"q": "name=alpha"}).json()
    fuzzy = s.get(h.api + "/replication/policies", params={"q": "name=~alpha"}).json()
    assert [p["name"] for p in exact] == ["alpha"]
    assert sorted(p["name"] for p in fuzzy) == ["alpha", "alphabet"]
    assert "Link" not in s.get(h.api + "/replication/policies").headers
    bad = s.get(h.api + "/registries", params={"q": "name"})
    assert error(bad) == (
        "BAD_REQUEST",
        'the query string must contain "=" and the key/value cannot be empty',
    )


def test_page_size_over_100_is_clamped_with_the_quirk(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(quirks=Quirks(page_size_over_max="clamp"))
    assert h.session().get(h.api + "/registries", params={"page_size": 500}).status_code == 200


# --------------------------------------------------------------------------------------------
# policies
# --------------------------------------------------------------------------------------------


def test_policy_put_replaces_everything(h: HarborEmulator, s: requests.Session) -> None:
    registry_id = create_acr_registry(h, s)
    policy_id = create_policy(h, s, registry_id, speed=-5)
    got = s.get(h.api + f"/replication/policies/{policy_id}").json()
    assert (got["enabled"], got["dest_namespace_replace_count"], got["speed"]) == (True, 1, 0)
    assert got["copy_by_chunk"] is False  # pointers stay even when false
    assert got["dest_registry"]["name"] == "Local" and got["src_registry"]["id"] == registry_id
    assert got["src_registry"]["credential"]["access_secret"] == "*****"
    resp = s.put(
        h.api + f"/replication/policies/{policy_id}",
        json={"name": "acr-myns", "src_registry": {"id": registry_id}},
    )
    assert resp.status_code == 200
    got = s.get(h.api + f"/replication/policies/{policy_id}").json()
    # go-swagger's omitempty: false and "" are not sent at all
    for gone in ("enabled", "filters", "trigger", "dest_namespace", "override", "deletion"):
        assert gone not in got, gone
    assert got["dest_namespace_replace_count"] == -1


def test_deletion_is_read_replicate_deletion_is_not(h: HarborEmulator, s: requests.Session) -> None:
    registry_id = create_acr_registry(h, s)
    ignored = create_policy(h, s, registry_id, name="a", deletion=False, replicate_deletion=True)
    honoured = create_policy(h, s, registry_id, name="b", deletion=True, replicate_deletion=False)
    a = s.get(h.api + f"/replication/policies/{ignored}").json()
    b = s.get(h.api + f"/replication/policies/{honoured}").json()
    assert "deletion" not in a and "replicate_deletion" not in a  # false: omitted
    assert (b["deletion"], b["replicate_deletion"]) == (True, True)


CRON_CASES: list[tuple[str, str | None]] = [
    ("0 0 2 * * *", None),
    ("0 */15 * * * 1-5", None),
    ("0 0 2 * * SUN", None),
    ("0  5 * * * *", None),  # Harbor splits on single spaces: passes its own checks
    ("* 0 2 * * *", SECONDS_MESSAGE),
    ("30 0 2 * * *", SECONDS_MESSAGE),
    ("0 * 2 * * *", MINUTES_MESSAGE),
    ("0 0 2 * *", "invalid cron string for scheduled trigger: 0 0 2 * *"),
    ("@daily", "invalid cron string for scheduled trigger: @daily"),
    ("0 0 25 * * *", "invalid cron string for scheduled trigger: 0 0 25 * * *"),
    ("0 0 2 ? * L", "invalid cron string for scheduled trigger: 0 0 2 ? * L"),
    ("", "the cron string cannot be empty when the trigger type is scheduled"),
    # strconv.Atoi knows ASCII digits only; a step needs a number
    ("0 \u00b2 2 * * *", "invalid cron string for scheduled trigger: 0 \u00b2 2 * * *"),
    ("0 0 \u0663 * * *", "invalid cron string for scheduled trigger: 0 0 \u0663 * * *"),
    ("0 5/ 2 * * *", "invalid cron string for scheduled trigger: 0 5/ 2 * * *"),
]


def test_cron_rules_and_messages(h: HarborEmulator, s: requests.Session) -> None:
    h.state.registries[1] = _fake_registry()
    for i, (cron, message) in enumerate(CRON_CASES):
        trigger = {"type": "scheduled", "trigger_settings": {"cron": cron}}
        body = policy_body(1, name=f"p{i}", trigger=trigger)
        resp = s.post(h.api + "/replication/policies", json=body)
        if message is None:
            assert resp.status_code == 201, (cron, resp.text)
            policy_id = int(resp.headers["Location"].rsplit("/", 1)[1])
            assert h.state.schedules[policy_id] == cron
        else:
            assert resp.status_code == 400, cron
            assert error(resp) == ("BAD_REQUEST", message)


def test_cron_checks_arrived_in_2_9(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(version="v2.8.4")
    h.state.registries[1] = _fake_registry()
    trigger = {"type": "scheduled", "trigger_settings": {"cron": "* * * * * *"}}
    resp = h.session().post(h.api + "/replication/policies", json=policy_body(1, trigger=trigger))
    assert resp.status_code == 201


def test_policy_validation_messages(h: HarborEmulator, s: requests.Session) -> None:
    registry_id = create_acr_registry(h, s)
    cases = [
        ({"name": ""}, "empty name"),
        (
            {"dest_registry": {"id": registry_id}},
            "either src_registry or dest_registry should be empty and the other one shouldn't "
            "be empty",
        ),
        (
            {"filters": [{"type": "name", "value": "x/**", "decoration": "excludes"}]},
            "only tag and label filter support decoration",
        ),
        ({"filters": [{"type": "tag", "value": 1}]}, "the type of filter value isn't string"),
        ({"filters": [{"type": "repo", "value": "x"}]}, "invalid filter type"),
        ({"dest_namespace": "Mirror"}, "invalid destination namespace: Mirror"),
        ({"trigger": {"type": "hourly"}}, "invalid trigger type"),
    ]
    for overrides, message in cases:
        resp = s.post(h.api + "/replication/policies", json=policy_body(registry_id, **overrides))
        assert resp.status_code == 400, overrides
        assert error(resp) == ("BAD_REQUEST", message)
    missing = s.post(h.api + "/replication/policies", json=policy_body(99))
    assert missing.status_code == 404 and error(missing)[1] == "registry 99 not found"
    create_policy(h, s, registry_id)
    dup = s.post(h.api + "/replication/policies", json=policy_body(registry_id))
    assert error(dup) == ("CONFLICT", "replication policy acr-myns already exists")


@pytest.mark.parametrize(
    ("version", "field", "value"),
    [
        ("v2.2.0", "dest_namespace_replace_count", 1),
        ("v2.2.0", "replicate_deletion", False),
        ("v2.3.0", "speed", 100),
        ("v2.6.0", "copy_by_chunk", True),
        ("v2.13.0", "single_active_replication", True),
    ],
)
def test_fields_newer_than_the_version_are_rejected(
    harbor_factory: HarborFactory, version: str, field: str, value: Any
) -> None:
    h = harbor_factory(version=version)
    h.state.registries[1] = _fake_registry()
    body = policy_body(1, **{field: value})
    if field != "dest_namespace_replace_count":
        body.pop("dest_namespace_replace_count")
    resp = h.session().post(h.api + "/replication/policies", json=body)
    assert resp.status_code == 422
    assert (
        error(resp)[1]
        == f"validation failure list:\npolicy.{field} in body is a forbidden property"
    )
    body.pop(field)
    assert h.session().post(h.api + "/replication/policies", json=body).status_code == 201


def test_ca_certificate_needs_2_15(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(version="v2.14.1")
    resp = h.session().post(h.api + "/registries", json=h.acr_registry_body(ca_certificate=None))
    assert resp.status_code == 422 and "registry.ca_certificate" in error(resp)[1]


def test_event_based_single_active_is_a_500(h: HarborEmulator, s: requests.Session) -> None:
    h.state.registries[1] = _fake_registry()
    body = policy_body(1, trigger={"type": "event_based"}, single_active_replication=True)
    resp = s.post(h.api + "/replication/policies", json=body)
    assert resp.status_code == 500 and error(resp) == ("UNKNOWN", "internal server error")


# --------------------------------------------------------------------------------------------
# executions: real replication
# --------------------------------------------------------------------------------------------


def test_execution_copies_the_image_into_harbor(
    h: HarborEmulator, s: requests.Session, skopeo: Skopeo
) -> None:
    digests = h.seed_acr_repo("myns", "app", ["v1", "v2"])
    policy_id = create_policy(h, s, create_acr_registry(h, s))
    h.reset_calls()
    execution = run(h, s, policy_id)
    assert execution["status"] == "Succeed", execution
    assert (execution["total"], execution["succeed"], execution["failed"]) == (1, 1, 0)
    assert execution["trigger"] == "manual" and execution["status_text"] == ""
    for tag, digest in digests.items():
        assert skopeo.digest(f"mirror/app:{tag}", h.registry) == digest
        assert skopeo.digest(f"myns/app:{tag}", h.acr.registry) == digest
    [task] = tasks_of(h, s, execution["id"])
    assert task["src_resource"] == "myns/app [2 item(s) in total]"
    assert task["dst_resource"] == "mirror/app [2 item(s) in total]"
    assert (task["status"], task["operation"], task["resource_type"]) == (
        "Succeed",
        "copy",
        "image",
    )
    # the name filter's namespace is literal: no GetNamespaceList
    assert h.openapi_calls == {
        "GetRepoListByNamespace": 1,
        "GetRepoTags": 1,
        "GetAuthorizationToken": 1,
    }
    assert [c.action for c in h.writes()] == ["startReplication"]


def test_task_log_holds_the_copy_output_and_no_secret(
    h: HarborEmulator, s: requests.Session
) -> None:
    h.seed_acr_repo("myns", "app", ["v1"])
    registry_id = create_acr_registry(h, s)
    execution = run(h, s, create_policy(h, s, registry_id))
    [task] = tasks_of(h, s, execution["id"])
    resp = s.get(h.api + f"/replication/executions/{execution['id']}/tasks/{task['id']}/log")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/plain"
    log = resp.text
    assert "copying myns/app:[v1](source registry) to mirror/app:[v1](destination registry)" in log
    assert "Writing manifest to image destination" in log
    for secret in (h.acr.access_key_secret, h.acr.registry.password, h.registry.password):
        assert secret and secret not in log
    other = run(h, s, create_policy(h, s, registry_id, name="second"))
    resp = s.get(h.api + f"/replication/executions/{other['id']}/tasks/{task['id']}/log")
    assert resp.status_code == 404
    assert error(resp)[1] == f"execution {other['id']} contains no task with ID {task['id']}"


def test_brace_filter_lists_only_those_repositories(h: HarborEmulator, s: requests.Session) -> None:
    for name in ("a", "b", "c"):
        h.seed_acr_repo("ns", name, ["v1"], seed="shared")
    h.seed_acr_repo("other", "a", ["v1"], seed="shared")
    registry_id = create_acr_registry(h, s)
    literal = create_policy(h, s, registry_id, filters=[{"type": "name", "value": "ns/{a,b}"}])
    h.reset_calls()
    execution = run(h, s, literal)
    assert sorted(t["src_resource"] for t in tasks_of(h, s, execution["id"])) == [
        "ns/a [1 item(s) in total]",
        "ns/b [1 item(s) in total]",
    ]
    assert "GetNamespaceList" not in h.openapi_calls
    assert h.openapi_calls["GetRepoTags"] == 2
    everything = create_policy(
        h, s, registry_id, name="all", filters=[{"type": "name", "value": "**/a"}]
    )
    h.reset_calls()
    execution = run(h, s, everything)
    assert h.openapi_calls["GetNamespaceList"] == 1
    assert sorted(t["src_resource"] for t in tasks_of(h, s, execution["id"])) == [
        "ns/a [1 item(s) in total]",
        "other/a [1 item(s) in total]",
    ]


def test_enterprise_edition_is_told_by_the_service_and_listed_with_rpc(
    harbor_factory: HarborFactory, skopeo: Skopeo
) -> None:
    h = harbor_factory(acr_enterprise=True)
    s = h.session()
    digests = h.seed_acr_repo("eens", "app", ["v1"], edition="enterprise")
    registry_id = create_acr_registry(h, s, url=h.acr_ee_url)
    policy_id = create_policy(h, s, registry_id, filters=[{"type": "name", "value": "**"}])
    h.reset_calls()
    execution = run(h, s, policy_id)
    assert execution["status"] == "Succeed", execution
    assert skopeo.digest("mirror/app:v1", h.registry) == digests["v1"]
    # cri- in the challenge's service: the 2018-12-01 RPC API, with the instance id
    assert set(h.openapi_calls) == {
        "ListNamespace",
        "ListRepository",
        "ListRepoTag",
        "GetAuthorizationToken",
    }
    assert {c.query.get("InstanceId") for c in h.acr.calls} == {h.acr.instance_id}


def test_enterprise_urls_need_2_12(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(version="v2.11.2", acr_enterprise=True)
    resp = h.session().post(h.api + "/registries", json=h.acr_registry_body(url=h.acr_ee_url))
    assert resp.status_code == 500
    assert h.server.core_log[-1].endswith("Invalid Rgistry|CR service url")
    ok = h.session().post(h.api + "/registries", json=h.acr_registry_body())
    assert ok.status_code == 201  # registry.<region>.aliyuncs.com still fine


def test_registry_name_rules(h: HarborEmulator, s: requests.Session) -> None:
    resp = s.post(h.api + "/registries", json=h.acr_registry_body(name="x" * 65))
    assert error(resp) == ("BAD_REQUEST", "the max length of name is 64")
    resp = s.post(h.api + "/registries", json=h.acr_registry_body(name=""))
    assert error(resp) == ("BAD_REQUEST", "name cannot be empty")
    assert h.openapi_calls == {}  # both refused before the health check


@pytest.mark.parametrize(
    ("count", "expected"),
    [(-1, "mirror/app"), (0, "mirror/myns/app"), (1, "mirror/app")],
)
def test_namespace_flattening(
    h: HarborEmulator, s: requests.Session, count: int, expected: str
) -> None:
    digests = h.seed_acr_repo("myns", "app", ["v1"])
    registry_id = create_acr_registry(h, s)
    execution = run(h, s, create_policy(h, s, registry_id, dest_namespace_replace_count=count))
    [task] = tasks_of(h, s, execution["id"])
    assert task["dst_resource"] == f"{expected} [1 item(s) in total]"
    assert h.harbor_digest(expected, "v1") == digests["v1"]


def test_flattening_deeper_than_the_path_fails_the_execution(
    h: HarborEmulator, s: requests.Session
) -> None:
    h.seed_acr_repo("myns", "app", ["v1"])
    registry_id = create_acr_registry(h, s)
    execution = run(h, s, create_policy(h, s, registry_id, dest_namespace_replace_count=2))
    assert (execution["status"], execution["total"]) == ("Failed", 0)
    assert execution["status_text"] == (
        'the source repository "myns/app" contains only 1 path components [myns] excepting '
        "the last one, but the destination namespace flattening level is 2"
    )


def test_tag_filter_excludes_and_project_is_created_private(
    h: HarborEmulator, s: requests.Session
) -> None:
    h.seed_acr_repo("myns", "app", ["v1", "v2", "latest"])
    registry_id = create_acr_registry(h, s)
    filters = [
        {"type": "name", "value": "myns/app"},
        {"type": "tag", "value": "v*", "decoration": "excludes"},
    ]
    execution = run(h, s, create_policy(h, s, registry_id, filters=filters))
    [task] = tasks_of(h, s, execution["id"])
    assert task["src_resource"] == "myns/app [1 item(s) in total]"
    assert h.harbor_digest("mirror/app", "latest") is not None
    assert h.harbor_digest("mirror/app", "v1") is None
    project = s.get(h.api + "/projects/mirror").json()
    assert project["metadata"]["public"] == "false" and project["owner_name"] == "admin"
    assert s.head(h.api + "/projects", params={"project_name": "mirror"}).status_code == 200
    assert s.head(h.api + "/projects", params={"project_name": "nope"}).status_code == 404
    assert s.head(h.api + "/projects").status_code == 422  # project_name is required


def test_no_matching_resources_succeeds_with_a_note(h: HarborEmulator, s: requests.Session) -> None:
    h.seed_acr_repo("myns", "app", ["v1"])
    registry_id = create_acr_registry(h, s)
    filters = [{"type": "name", "value": "myns/nothing-*"}]
    execution = run(h, s, create_policy(h, s, registry_id, filters=filters))
    assert (execution["status"], execution["total"]) == ("Succeed", 0)
    assert execution["status_text"] == "no resources need to be replicated"


def test_failure_before_tasks_is_only_in_status_text(
    h: HarborEmulator, s: requests.Session
) -> None:
    h.seed_acr_repo("myns", "app", ["v1"])
    registry_id = create_acr_registry(h, s)
    policy_id = create_policy(h, s, registry_id)
    # the AccessKey is revoked after the registry was saved
    h.acr.server._access_keys.clear()
    execution = run(h, s, policy_id)
    assert (execution["status"], execution["total"], execution["failed"]) == ("Failed", 0, 0)
    assert execution["status_text"].startswith("failed to fetch artifacts: SDK.ServerError")
    assert "InvalidAccessKeyId.NotFound" in execution["status_text"]
    assert tasks_of(h, s, execution["id"]) == []
    failed = s.get(h.api + "/replication/executions", params={"status": "Failed"}).json()
    assert [e["id"] for e in failed] == [execution["id"]]


def test_uncreatable_project_fails_the_prepare_step(h: HarborEmulator, s: requests.Session) -> None:
    h.seed_acr_repo("my--ns", "app", ["v1"])  # a valid ACR namespace, not a Harbor project name
    registry_id = create_acr_registry(h, s)
    filters = [{"type": "name", "value": "my--ns/**"}]
    execution = run(h, s, create_policy(h, s, registry_id, dest_namespace="", filters=filters))
    assert execution["status"] == "Failed"
    assert execution["status_text"].startswith(
        "failed to do the prepare work for pushing/uploading resources: http error: code 400"
    )
    assert "project name is not in lower case" in execution["status_text"]


def test_start_errors_disabled_and_unknown_policy(h: HarborEmulator, s: requests.Session) -> None:
    registry_id = create_acr_registry(h, s)
    policy_id = create_policy(h, s, registry_id, enabled=False)
    resp = s.post(h.api + "/replication/executions", json={"policy_id": policy_id})
    assert resp.status_code == 412
    assert error(resp) == ("PRECONDITION", f"the policy {policy_id} is disabled")
    resp = s.post(h.api + "/replication/executions", json={"policy_id": 42})
    assert error(resp) == ("NOT_FOUND", "replication policy 42 not found")
    resp = s.get(h.api + "/replication/executions/7")
    assert error(resp) == ("NOT_FOUND", "replication execution 7 not found")


def test_running_execution_blocks_policy_delete_and_can_be_stopped(
    h: HarborEmulator, s: requests.Session
) -> None:
    h.seed_acr_repo("myns", "app", ["v1"])
    policy_id = create_policy(h, s, create_acr_registry(h, s), single_active_replication=True)
    h.acr.inject("latency", count=1, action="GetRepoListByNamespace", seconds=1.0)
    first = s.post(h.api + "/replication/executions", json={"policy_id": policy_id})
    first_id = int(first.headers["Location"].rsplit("/", 1)[1])
    second = s.post(h.api + "/replication/executions", json={"policy_id": policy_id})
    assert second.status_code == 201  # single_active_replication: created, then skipped
    skipped = s.get(h.url + second.headers["Location"]).json()
    assert skipped["status"] == "Failed"
    assert skipped["status_text"] == "Execution skipped: active replication still in progress."
    resp = s.delete(h.api + f"/replication/policies/{policy_id}")
    assert resp.status_code == 412
    assert error(resp)[1] == (
        "contains executions that aren't in final status, stop the execution first"
    )
    assert s.put(h.api + f"/replication/executions/{first_id}").status_code == 200
    assert s.get(h.api + f"/replication/executions/{first_id}").json()["status"] == "Stopped"
    h.wait_execution(first_id)
    assert tasks_of(h, s, first_id) == []
    assert s.delete(h.api + f"/replication/policies/{policy_id}").status_code == 200


def test_status_lags_the_task_counts_with_a_refresh_interval(
    harbor_factory: HarborFactory,
) -> None:
    h = harbor_factory(quirks=Quirks(status_refresh_interval=1.0))
    s = h.session()
    h.seed_acr_repo("myns", "app", ["v1"])
    execution = run(h, s, create_policy(h, s, create_acr_registry(h, s)))
    # the task is done, the counters say so, the status has not caught up yet
    assert (execution["status"], execution["succeed"], execution["in_progress"]) == (
        "InProgress",
        1,
        0,
    )
    time.sleep(1.1)
    assert s.get(h.api + f"/replication/executions/{execution['id']}").json()["status"] == "Succeed"


def test_a_task_shows_failed_before_its_retry_succeeds(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(quirks=Quirks(transient_task_failures=1, retry_delay=0.5))
    s = h.session()
    h.seed_acr_repo("myns", "app", ["v1"])
    policy_id = create_policy(h, s, create_acr_registry(h, s))
    resp = s.post(h.api + "/replication/executions", json={"policy_id": policy_id})
    execution_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    seen: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        tasks = tasks_of(h, s, execution_id)
        if tasks:
            seen.append(tasks[0]["status"])
            if tasks[0]["status"] == "Succeed":
                break
        time.sleep(0.05)
    assert "Failed" in seen and seen[-1] == "Succeed"
    execution = s.get(h.api + f"/replication/executions/{execution_id}").json()
    assert execution["status"] == "Succeed"


def test_scheduled_trigger_is_registered_and_can_be_fired(
    h: HarborEmulator, s: requests.Session
) -> None:
    h.seed_acr_repo("myns", "app", ["v1"])
    registry_id = create_acr_registry(h, s)
    trigger = {"type": "scheduled", "trigger_settings": {"cron": "0 0 2 * * *"}}
    policy_id = create_policy(h, s, registry_id, trigger=trigger)
    assert h.state.schedules == {policy_id: "0 0 2 * * *"}
    execution_id = h.server.fire_schedule(policy_id)
    h.wait_execution(execution_id)
    listed = s.get(h.api + "/replication/executions", params={"trigger": "scheduled"}).json()
    assert [(e["id"], e["status"]) for e in listed] == [(execution_id, "Succeed")]
    # a disabled policy has no schedule (IsScheduledTrigger)
    body = policy_body(registry_id, trigger=trigger, enabled=False)
    s.put(h.api + f"/replication/policies/{policy_id}", json=body)
    assert h.state.schedules == {}


# --------------------------------------------------------------------------------------------
# faults, modes, transport
# --------------------------------------------------------------------------------------------


def test_faults_per_route(h: HarborEmulator, s: requests.Session) -> None:
    h.inject("throttling", action="listRegistries", retry_after=2)
    resp = s.get(h.api + "/registries")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "2"
    assert error(resp)[0] == "TOO_MANY_REQUEST"
    assert s.get(h.api + "/registries").status_code == 200  # consumed
    h.inject("5xx-after", action="createRegistry")
    resp = s.post(h.api + "/registries", json=h.acr_registry_body())
    assert resp.status_code == 500 and error(resp) == ("UNKNOWN", "internal server error")
    assert [r.name for r in h.state.registries.values()] == ["acr-hangzhou"]  # it happened
    h.inject("5xx", status=503)
    assert s.get(h.api + "/registries").status_code == 503
    h.inject("reset", action="getRegistry")
    with pytest.raises(requests.ConnectionError):
        s.get(h.api + "/registries/1")
    h.inject("latency", seconds=0.3)
    started = time.monotonic()
    assert s.get(h.api + "/registries/1").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_read_only_mode_denies_writes(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(read_only=True)
    resp = h.session().post(h.api + "/projects", json={"project_name": "mirror"})
    assert resp.status_code == 403
    assert error(resp) == (
        "DENIED",
        "The system is in read only mode. Any modification is prohibited.",
    )
    assert h.session().get(h.api + "/systeminfo").json()["read_only"] is True


def test_tls_front_with_the_test_ca(harbor_factory: HarborFactory) -> None:
    h = harbor_factory(tls=True)
    assert h.url.startswith("https://") and h.ca_file
    resp = requests.get(h.api + "/systeminfo", auth=h.admin, verify=h.ca_file)
    assert resp.json()["external_url"] == h.url
    with pytest.raises(requests.exceptions.SSLError):
        http_session().get(h.api + "/ping", verify=True)


def test_projects_create_list_and_conflict(h: HarborEmulator, s: requests.Session) -> None:
    resp = s.post(
        h.api + "/projects", json={"project_name": "mirror", "metadata": {"public": "true"}}
    )
    assert resp.status_code == 201 and resp.headers["Location"] == "/api/v2.0/projects/2"
    dup = s.post(h.api + "/projects", json={"project_name": "mirror"})
    assert error(dup) == ("CONFLICT", "The project named mirror already exists")
    bad = s.post(h.api + "/projects", json={"project_name": "x", "metadata": {"public": "yes"}})
    assert error(bad)[1] == "metadata.public should only be 'true' or 'false', but got: 'yes'"
    typed = s.post(h.api + "/projects", json={"project_name": "y", "metadata": {"public": True}})
    assert typed.status_code == 422  # a string in Harbor's model
    names = [p["name"] for p in s.get(h.api + "/projects").json()]
    assert names == ["library", "mirror"]
    by_name = s.get(h.api + "/projects/mirror").json()
    assert by_name["project_id"] == 2 and by_name["metadata"]["public"] == "true"


def test_recorded_calls_keep_no_secret(h: HarborEmulator, s: requests.Session) -> None:
    create_acr_registry(h, s)
    dump = json.dumps([c.body for c in h.calls]) + repr(h.calls) + repr(h)
    assert h.acr.access_key_secret not in dump and h.admin_password not in dump


# --------------------------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("", "a/b", True),
        ("myns/**", "myns/app", True),
        ("myns/*", "myns/app", True),
        ("*", "myns/app", False),
        ("**", "myns/app", True),
        ("**/app", "a/b/app", True),
        ("myns/{a,b}", "myns/b", True),
        ("myns/{a,b}", "myns/c", False),
        ("myns/ap?", "myns/app", True),
        ("myns/[a-c]pp", "myns/bpp", True),
        ("{x,my}ns/app", "myns/app", True),
        ("v*", "v1.2", True),
        ("v*", "latest", False),
    ],
)
def test_doublestar_match(pattern: str, name: str, expected: bool) -> None:
    assert match(pattern, name) is expected


def test_specific_component_and_replace_namespace() -> None:
    assert specific_component("myns") == ["myns"]
    assert specific_component("{a,b}") == ["a", "b"]
    assert specific_component("pre{a,b}") == ["prea", "preb"]
    assert specific_component("my*") is None and specific_component("**") is None
    assert replace_namespace("a/b/app", "dst", -1) == "dst/app"
    assert replace_namespace("a/b/app", "dst", 0) == "dst/a/b/app"
    assert replace_namespace("a/b/app", "dst", 1) == "dst/b/app"
    assert replace_namespace("a/b/app", "", 1) == "a/b/app"  # ignored without a namespace


def _fake_registry() -> Any:
    """A registry row without a health check, for policy tests that never run."""
    from relay.sandbox.harbor.state import Credential, Registry

    return Registry(1, "acr", "ali-acr", "https://registry.cn-hangzhou.aliyuncs.com", Credential())
