"""Alibaba Cloud POP signatures: ROA (personal edition 2016-06-07) and RPC (enterprise 2018-12-01).

Server side: :func:`verify_roa` and :func:`verify_rpc` re-derive the string-to-sign from what
arrived on the wire, exactly as Alibaba doc 72382 describes (and as aliyunsdkcore 2.16.1 composes
it), and raise the gateway's errors. Client side: :func:`sign_roa` and :func:`sign_rpc` produce
the same signatures independently of the SDK, so tests can hand-craft (and tamper with) requests.

Secrets never leave this module in any message or log line.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from relay.sandbox.acr import errors

ROA_VERSION = "2016-06-07"
RPC_VERSION = "2018-12-01"
SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
# POP accepts a Timestamp/Date within 15 minutes of its own clock.
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)

SecretLookup = Callable[[str], "str | None"]


def hmac_sha1_b64(key: str, message: str) -> str:
    digest = hmac.new(key.encode(), message.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def content_md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()


class NonceCache:
    """Remembers SignatureNonce values for the skew window, to reject replays."""

    def __init__(self, ttl: float = MAX_CLOCK_SKEW.total_seconds() * 2) -> None:
        self._ttl = ttl
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check_and_add(self, access_key_id: str, nonce: str) -> bool:
        """True the first time (ak, nonce) is seen inside the window, False on a replay."""
        now = time.monotonic()
        key = f"{access_key_id}\0{nonce}"
        with self._lock:
            if len(self._seen) > 10000:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self._ttl}
            seen_at = self._seen.get(key)
            if seen_at is not None and now - seen_at < self._ttl:
                return False
            self._seen[key] = now
            return True


# --------------------------------------------------------------------------------------------
# ROA
# --------------------------------------------------------------------------------------------


def roa_string_to_sign(method: str, headers: Mapping[str, str], target: str) -> str:
    """StringToSign for a ROA request. ``headers`` keys must be lower-case.

    ``target`` is the request target as sent (``/path?query``): the path is signed
    percent-decoded and the query as sorted raw ``k=v`` pairs (the SDK signs values unencoded
    but sends them ``urlencode``d, so decode first; ``+`` means space).
    """
    parts = [
        method,
        headers.get("accept", ""),
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date", ""),
    ]
    sts = "\n".join(parts) + "\n"
    for name in sorted(k for k in headers if k.startswith("x-acs-")):
        sts += f"{name}:{headers[name]}\n"
    url = urlsplit(target)
    sts += unquote(url.path)
    query = parse_qsl(url.query, keep_blank_values=True)
    if query:
        sts += "?" + "&".join(f"{k}={v}" for k, v in sorted(query, key=lambda kv: kv[0]))
    return sts


def _check_date(value: str | None, now: dt.datetime) -> None:
    if not value:
        raise errors.timestamp_format()
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise errors.timestamp_format() from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    if abs(now - when) > MAX_CLOCK_SKEW:
        raise errors.timestamp_expired()


def verify_roa(
    method: str,
    headers: Mapping[str, str],
    target: str,
    body: bytes,
    secret_for: SecretLookup,
    nonces: NonceCache,
    now: dt.datetime | None = None,
) -> str:
    """Check a ROA request; return its AccessKeyId or raise :class:`errors.GatewayError`.

    ``headers`` keys must be lower-case.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    auth = headers.get("authorization")
    if not auth:
        raise errors.incomplete_signature("Authorization header is missing.")
    scheme, _, credential = auth.partition(" ")
    access_key_id, sep, signature = credential.partition(":")
    if scheme != "acs" or not sep or not access_key_id or not signature:
        raise errors.incomplete_signature("Authorization must be 'acs AccessKeyId:Signature'.")
    if headers.get("x-acs-signature-method", SIGNATURE_METHOD) != SIGNATURE_METHOD:
        raise errors.incomplete_signature("Only HMAC-SHA1 is supported.")
    secret = secret_for(access_key_id)
    if secret is None:
        raise errors.access_key_not_found()
    sts = roa_string_to_sign(method, headers, target)
    if not hmac.compare_digest(hmac_sha1_b64(secret, sts), signature):
        raise errors.signature_does_not_match(sts)
    # The body is protected only through the signed Content-MD5: check it matches.
    md5 = headers.get("content-md5")
    if body and md5 is not None and md5 != content_md5(body):
        raise errors.content_md5_mismatch()
    _check_date(headers.get("date"), now)
    # The SDK sends no nonce for ROA; when a client does, replays are refused like for RPC.
    nonce = headers.get("x-acs-signature-nonce")
    if nonce and not nonces.check_and_add(access_key_id, nonce):
        raise errors.nonce_used()
    return access_key_id


def sign_roa(
    method: str,
    path: str,
    query: Mapping[str, str],
    *,
    access_key_id: str,
    secret: str,
    action: str | None,
    region: str,
    body: bytes | None = None,
    content_type: str | None = "application/json",
    version: str = ROA_VERSION,
) -> tuple[str, dict[str, str]]:
    """Build ``(target, headers)`` for a ROA request the way aliyunsdkcore does."""
    q = dict(query)
    q.setdefault("RegionId", region)
    headers = {
        "Accept": "application/json",
        "Date": email.utils.formatdate(usegmt=True),
        "x-acs-signature-method": SIGNATURE_METHOD,
        "x-acs-signature-version": SIGNATURE_VERSION,
        "x-acs-version": version,
        "x-acs-region-id": region,
    }
    if action is not None:
        headers["x-acs-action"] = action
    if body:
        headers["Content-MD5"] = content_md5(body)
        if content_type is not None:
            headers["Content-Type"] = content_type
    target = path + ("?" + urlencode(q) if q else "")
    lower = {k.lower(): v for k, v in headers.items()}
    sts = roa_string_to_sign(method, lower, target)
    headers["Authorization"] = f"acs {access_key_id}:{hmac_sha1_b64(secret, sts)}"
    return target, headers


# --------------------------------------------------------------------------------------------
# RPC
# --------------------------------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as POP wants it: everything but A-Z a-z 0-9 - _ . ~ is escaped."""
    return quote(value, safe="~")


def rpc_string_to_sign(method: str, params: Iterable[tuple[str, str]]) -> str:
    pairs = sorted(((k, v) for k, v in params if k != "Signature"), key=lambda kv: kv[0])
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)
    return f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"


def _check_timestamp(value: str | None, now: dt.datetime) -> None:
    if not value:
        raise errors.missing_parameter("Timestamp")
    try:
        when = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise errors.timestamp_format() from None
    if abs(now - when) > MAX_CLOCK_SKEW:
        raise errors.timestamp_expired()


def verify_rpc(
    method: str,
    params: list[tuple[str, str]],
    secret_for: SecretLookup,
    nonces: NonceCache,
    now: dt.datetime | None = None,
) -> str:
    """Check an RPC request (query + form params); return its AccessKeyId or raise."""
    now = now or dt.datetime.now(dt.timezone.utc)
    p = dict(params)
    for name in ("AccessKeyId", "Signature", "SignatureMethod", "SignatureNonce"):
        if not p.get(name):
            raise errors.missing_parameter(name)
    if p["SignatureMethod"] != SIGNATURE_METHOD:
        raise errors.invalid_parameter("SignatureMethod", "Only HMAC-SHA1 is supported.")
    if p.get("SignatureVersion", SIGNATURE_VERSION) != SIGNATURE_VERSION:
        raise errors.invalid_parameter("SignatureVersion")
    secret = secret_for(p["AccessKeyId"])
    if secret is None:
        raise errors.access_key_not_found()
    sts = rpc_string_to_sign(method, params)
    if not hmac.compare_digest(hmac_sha1_b64(secret + "&", sts), p["Signature"]):
        raise errors.signature_does_not_match(sts)
    _check_timestamp(p.get("Timestamp"), now)
    if not nonces.check_and_add(p["AccessKeyId"], p["SignatureNonce"]):
        raise errors.nonce_used()
    return p["AccessKeyId"]


def sign_rpc(
    action: str,
    params: Mapping[str, str],
    *,
    access_key_id: str,
    secret: str,
    region: str,
    method: str = "POST",
    version: str = RPC_VERSION,
    nonce: str | None = None,
    timestamp: str | None = None,
) -> str:
    """The query string (without ``?``) of a signed RPC request, as aliyunsdkcore builds it."""
    p = dict(params)
    p.update(
        {
            "Action": action,
            "Version": version,
            "Format": "JSON",
            "RegionId": p.get("RegionId", region),
            "AccessKeyId": access_key_id,
            "SignatureMethod": SIGNATURE_METHOD,
            "SignatureType": "",
            "SignatureVersion": SIGNATURE_VERSION,
            "SignatureNonce": nonce or str(uuid.uuid4()),
            "Timestamp": timestamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    sts = rpc_string_to_sign(method, p.items())
    p["Signature"] = hmac_sha1_b64(secret + "&", sts)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in p.items())
