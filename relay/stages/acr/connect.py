"""`connect()`: the client for the configured edition."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from relay.net import cancel
from relay.stages.acr.api import AcrClient, CallStats
from relay.stages.acr.enterprise import EnterpriseClient
from relay.stages.acr.personal import PersonalClient
from relay.stages.acr.settings import AcrSettings, Credentials


def connect(
    settings: AcrSettings,
    creds: Credentials,
    *,
    env: Mapping[str, str],
    stats: CallStats | None = None,
    sleep: Callable[[float], None] = cancel.pause,
    rand: Callable[[], float] = random.random,
) -> AcrClient:
    cls = EnterpriseClient if settings.edition == "enterprise" else PersonalClient
    client: AcrClient = cls(settings, creds, env=env, stats=stats, sleep=sleep, rand=rand)
    return client
