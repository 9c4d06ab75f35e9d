"""An STS token (ALIBABA_CLOUD_SECURITY_TOKEN) from the environment signs every ACR call."""

from __future__ import annotations

import pytest

from relay.errors import InputError
from relay.stages.acr.connect import connect
from relay.stages.acr.settings import AcrSettings, Credentials, credentials
from tests.fixtures.acr import AcrEmulator, acr_emulator  # noqa: F401 - the fixture

TOKEN = "CAIS-sts-DISTINCTIVE-token-0123456789"


def test_the_token_comes_with_its_pair() -> None:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "STS.id",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
        "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
    }
    creds = credentials(env)
    assert creds.temporary and creds.security_token == TOKEN
    assert TOKEN not in repr(creds) and "secret" not in repr(creds) and "sts" in repr(creds)
    # A long-lived AccessKey has no token; an empty token variable is no token.
    plain = credentials(env | {"ALIBABA_CLOUD_SECURITY_TOKEN": ""})
    assert not plain.temporary
    # The older pair has its own token variable; the new pair's token does not leak onto it.
    old = {"ALIYUN_ACCESS_KEY_ID": "a", "ALIYUN_ACCESS_KEY_SECRET": "b"}
    assert not credentials(old | {"ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN}).temporary
    assert credentials(old | {"ALIYUN_SECURITY_TOKEN": TOKEN}).security_token == TOKEN
    with pytest.raises(InputError, match="ALIBABA_CLOUD_SECURITY_TOKEN for an STS token"):
        credentials({})


@pytest.mark.parametrize("edition", ["personal", "enterprise"])
def test_calls_carry_the_signed_token(
    acr_emulator: AcrEmulator,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    edition: str,
) -> None:
    seen: list[tuple[dict[str, str], str]] = []
    handle = acr_emulator.server.handle

    def spy(method: str, target: str, headers: dict[str, str], body: bytes):  # noqa: ANN202
        seen.append((dict(headers), target))
        return handle(method, target, headers, body)

    monkeypatch.setattr(acr_emulator.server, "handle", spy)
    extra = {"instance_id": acr_emulator.instance_id} if edition == "enterprise" else {}
    settings = AcrSettings(
        edition=edition,  # type: ignore[arg-type]
        region=acr_emulator.region,
        endpoint=acr_emulator.endpoint,
        namespace="relay-sts",
        **extra,  # type: ignore[arg-type]
    )
    creds = Credentials(acr_emulator.access_key_id, acr_emulator.access_key_secret, TOKEN)
    client = connect(settings, creds, env={})
    # The emulator verifies every signature: a call that answers proves the token was signed
    # along (ROA signs every x-acs-* header; RPC every query parameter).
    assert "relay-sts" not in client.list_namespaces()
    assert seen
    for headers, target in seen:
        if edition == "personal":
            assert headers.get("x-acs-security-token") == TOKEN
        else:
            assert "SecurityToken=" + TOKEN in target or TOKEN in str(headers)
