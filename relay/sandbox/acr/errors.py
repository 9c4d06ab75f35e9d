"""Error shapes of the ACR control plane, as the emulator returns them.

There are three distinct shapes, and a client has to cope with all of them (aliyun/aliyun-cli
#397 and #400; terraform-provider-alibabacloudstack):

* **Gateway (POP) errors**, for both editions: capitalised
  ``{"RequestId","HostId","Code","Message","Recommend"}`` with a 4xx/5xx status. Signature,
  access-key, throttling and unknown-API errors come from here. The Python SDK parses these.
* **Personal-edition (2016-06-07) service errors**: lower-case ``{"code","message"}``. The SDK
  does not parse them: they surface as ``SDK.UnknownServerError`` with the raw body in the
  message, which is exactly what relay's client has to deal with.
* **Enterprise (2018-12-01) service errors**: capitalised ``{"Code","Message","RequestId",
  "IsSuccess":false}``; some of them with HTTP 200 (so only ``IsSuccess`` tells).

Every code the vendor's material does not show is marked UNCONFIRMED where it is defined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GatewayError(Exception):
    """An error raised by the API gateway, before (or instead of) the ACR service."""

    code: str
    message: str
    status: int = 400
    # Extra response headers (none today; kept so throttling could add Retry-After later).
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, request_id: str, host_id: str) -> dict[str, Any]:
        return {
            "RequestId": request_id,
            "HostId": host_id,
            "Code": self.code,
            "Message": self.message,
            # The real gateway points at its error centre; the shape is what matters here.
            "Recommend": (
                f"https://api.aliyun.com/troubleshoot?q={self.code}&product=cr&source=PopGw"
            ),
        }


@dataclass
class ServiceError(Exception):
    """A personal-edition (ROA) service error: lower-case ``{"code","message"}``."""

    code: str
    message: str
    status: int = 400

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


@dataclass
class EnterpriseError(Exception):
    """An enterprise-edition (RPC) service error: capitalised, with ``IsSuccess: false``.

    ``status`` 200 reproduces the "HTTP 200 but IsSuccess false" answers
    (terraform-provider-alibabacloudstack, service_apsarastack_cr.go).
    """

    code: str
    message: str
    status: int = 200

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "RequestId": request_id,
            "Code": self.code,
            "Message": self.message,
            "IsSuccess": False,
        }


# --- Gateway errors ---------------------------------------------------------------------------
# Codes and messages seen in vendor material (aliyun/aliyun-cli#400) or standard POP codes.


def signature_does_not_match(string_to_sign: str) -> GatewayError:
    # The message ends with the server's string-to-sign after a colon: the SDK compares it with
    # its own and, when they are equal, reports InvalidAccessKeySecret instead (client.py,
    # _get_server_exception). Reproducing it keeps that SDK behaviour observable.
    return GatewayError(
        "SignatureDoesNotMatch",
        "Specified signature is not matched with our calculation. server string to sign is:"
        + string_to_sign,
        400,
    )


def access_key_not_found() -> GatewayError:
    return GatewayError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)


def incomplete_signature(detail: str) -> GatewayError:
    # UNCONFIRMED for cr: a missing/malformed ROA Authorization header. IncompleteSignature is
    # the POP code for a signature that does not follow the scheme.
    return GatewayError(
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}",
        400,
    )


def missing_parameter(name: str) -> GatewayError:
    # POP reports a missing mandatory parameter as Missing<Name>.
    return GatewayError(f"Missing{name}", f"{name} is mandatory for this action.", 400)


def invalid_parameter(name: str, detail: str = "") -> GatewayError:
    msg = f"Specified parameter {name} is not valid."
    return GatewayError(f"InvalidParameter.{name}", f"{msg} {detail}".strip(), 400)


def timestamp_expired() -> GatewayError:
    return GatewayError(
        "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400
    )


def timestamp_format() -> GatewayError:
    return GatewayError(
        "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.", 400
    )


def nonce_used() -> GatewayError:
    return GatewayError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)


def content_md5_mismatch() -> GatewayError:
    # UNCONFIRMED code: the body does not match the (signed) Content-MD5 header.
    return GatewayError(
        "ContentMD5NotMatched", "Specified content md5 is not matched with your request body.", 400
    )


def api_not_found() -> GatewayError:
    return GatewayError(
        "InvalidAction.NotFound",
        "Specified api is not found, please check your url and method.",
        404,
    )


def invalid_version(version: str | None) -> GatewayError:
    # UNCONFIRMED code for a wrong/missing API version.
    return GatewayError(
        "InvalidVersion", f"Specified parameter Version is not valid: {version}.", 400
    )


# Throttling: the exact cr body is UNCONFIRMED (aliyun/aliyun-cli#400). The emulator uses the
# gateway shape with Throttling.User and HTTP 400, which is what POP has long answered for user flow
# control ("HTTP Status: 400 Error:Throttling.User ..."); newer gateways may answer 429, so
# AcrEmulator.inject("throttling", status=429) switches the status for a test.
THROTTLING_STATUS = 400


def throttling(status: int = THROTTLING_STATUS) -> GatewayError:
    return GatewayError("Throttling.User", "Request was denied due to user flow control.", status)


def service_unavailable() -> GatewayError:
    return GatewayError(
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
        503,
    )


# --- Personal-edition service errors ----------------------------------------------------------

BODY_FORMAT_INVALID = ServiceError(
    "REQUEST_BODY_FORMAT_INVALID", "Request body format is not correct", 400
)  # confirmed: aliyun/aliyun-cli#397


def body_format_invalid() -> ServiceError:
    # A fresh instance each time: exceptions carry tracebacks and must not be shared.
    return ServiceError(BODY_FORMAT_INVALID.code, BODY_FORMAT_INVALID.message, 400)


# Confirmed codes (terraform-provider-alicloud errors.go). HTTP 404 is UNCONFIRMED (USER_NOT_EXIST
# was seen with 404, acr-login#19, so the "not exist" family is given 404 too).
NAMESPACE_NOT_EXIST = "NAMESPACE_NOT_EXIST"
REPO_NOT_EXIST = "REPO_NOT_EXIST"
INSTANCE_NOT_EXIST = "INSTANCE_NOT_EXIST"  # enterprise

# UNCONFIRMED codes: chosen to be plausible and greppable; the vendor's spelling is unknown.
# "Already exists" and limit codes are spelled by Quirks.already_exists / limit_exceeded.
BUILD_RULE_NOT_EXIST = "BUILD_RULE_NOT_EXIST"
BUILD_NOT_EXIST = "BUILD_NOT_EXIST"
TAG_NOT_EXIST = "TAG_NOT_EXIST"
# No bound source: a build started on such a repo, or GetRepoSourceRepo (Quirks.unbound_source).
REPO_SOURCE_NOT_EXIST = "REPO_SOURCE_NOT_EXIST"
PARAM_INVALID = "PARAM_INVALID"  # a field has the right shape but a bad value (name rules)


def not_exist(code: str, what: str) -> ServiceError:
    return ServiceError(code, f"{what} does not exist", 404)


def service(code: str, message: str, status: int = 400) -> ServiceError:
    return ServiceError(code, message, status)
