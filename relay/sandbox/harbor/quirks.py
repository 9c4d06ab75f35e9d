"""Harbor versions and quirks: what changed when, and one switch per unconfirmed behaviour.

Versions gate fields and checks by the release that introduced them (goharbor/harbor tags and
commits named below). The strict emulator *rejects* a field the configured version does not
know, as an unknown field, so a client that sends ``speed`` to a 2.3 Harbor learns it here.

Each :class:`Quirks` switch stands for a behaviour the upstream source suggests but nobody has
observed on a live Harbor; the default is the reading that is hardest on a client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DEFAULT_VERSION = "v2.15.2"

Version = tuple[int, int, int]

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version:
    found = _VERSION_RE.match(text.strip())
    if found is None:
        raise ValueError(f"not a Harbor version: {text!r} (expected like 'v2.15.2')")
    return int(found.group(1)), int(found.group(2)), int(found.group(3) or 0)


# Field -> first version whose API accepts it (swagger at each tag; commit ids from upstream).
FIELD_SINCE: dict[tuple[str, str], Version] = {
    # v2.3.0 moved replication to go-swagger and added both (commit 710c80078b, PR #15084).
    ("ReplicationPolicy", "dest_namespace_replace_count"): (2, 3, 0),
    ("ReplicationPolicy", "replicate_deletion"): (2, 3, 0),
    ("ReplicationPolicy", "speed"): (2, 4, 0),
    ("ReplicationPolicy", "copy_by_chunk"): (2, 7, 0),
    ("ReplicationPolicy", "single_active_replication"): (2, 14, 0),  # commit de657686b3
    # ca_certificate on registries: commit 7f5ac5b57b (#22535), first in v2.15.0.
    ("Registry", "ca_certificate"): (2, 15, 0),
    ("RegistryUpdate", "ca_certificate"): (2, 15, 0),
    ("RegistryPing", "ca_certificate"): (2, 15, 0),
}

ASYNC_STATUS_SINCE: Version = (2, 8, 0)  # commit 62bb56daf6 (#18434)
ACR_VPC_URLS_SINCE: Version = (2, 8, 0)  # commit fe236ecd2e (#17489)
CRON_CHECKS_SINCE: Version = (2, 9, 0)  # commit 9091661539 (#18923)
ROBOT_SYSTEM_PERMISSIONS_SINCE: Version = (2, 10, 0)  # commit 5c02fd807e (#19543)
ACR_EE_SINCE: Version = (2, 12, 0)  # commit 69bea4daa3, PR #19658
ADAPTER_WHITELIST_SINCE: Version = (2, 14, 0)  # commit de657686b3 (#22198)
# On main after v2.15.2 (commit 7709557123, #23671): a URL change without access_secret clears
# the stored secret. Taken to ship in v2.16.0.
CLEAR_SECRET_ON_URL_CHANGE_SINCE: Version = (2, 16, 0)

# make/photon/prepare/templates/core/env.jinja: the installer's REPLICATION_ADAPTER_WHITELIST.
DEFAULT_ADAPTER_WHITELIST = (
    "ali-acr",
    "aws-ecr",
    "azure-acr",
    "docker-hub",
    "docker-registry",
    "github-ghcr",
    "google-gcr",
    "harbor",
    "huawei-SWR",
    "jfrog-artifactory",
    "tencent-tcr",
    "volcengine-cr",
)


@dataclass
class Quirks:
    """One switch per behaviour the upstream source suggests but nobody confirmed live."""

    # Whether responses set a ``sid`` session cookie. src/core/main.go turns beego sessions on
    # for every route (SessionOn = true) and the CSRF middleware only checks requests that carry
    # it (src/server/middleware/csrf/csrf.go csrfSkipper); goharbor/harbor#13570, #15994 show
    # cookie-keeping clients getting "CSRF token invalid". "always": every response sets it;
    # "authenticated": only answers to authenticated requests; "never".
    sid_cookie: Literal["always", "authenticated", "never"] = "always"

    # An ali-acr registry created without a ``credential`` object: newAdapter dereferences
    # registry.Credential.AccessKey without a nil check (src/pkg/reg/adapter/aliacr/adapter.go),
    # a panic the API answers with 500. 400 is the kinder alternative.
    missing_credential_status: Literal[500, 400] = 500

    # Whether a https://cr.<region>.aliyuncs.com URL is stored in its rewritten
    # https://registry.<region>.aliyuncs.com form: getRegistryURL mutates the registry struct
    # that the controller then inserts (aliacr/adapter.go newAdapter).
    persist_rewritten_cr_url: bool = True

    # page_size above the swagger maximum (100): go-swagger's validation answers 422; "clamp"
    # serves 100 items instead.
    page_size_over_max: Literal["reject", "clamp"] = "reject"

    # JSON fields the schema does not define (or this version does not know). Real Harbor
    # (go-swagger models without additionalProperties: false) silently drops them, which hides
    # typos such as replicate_deletion; "reject" answers 422 naming the field.
    unknown_fields: Literal["reject", "ignore"] = "reject"

    # Whether read-only mode (``HarborServer.read_only``) refuses writes to the registry and
    # replication endpoints too (src/server/middleware/readonly/readonly.go lists what it lets
    # through; unconfirmed for these paths).
    read_only_blocks_replication: bool = True

    # Execution status refresh interval in seconds. Since v2.8 the status is refreshed
    # asynchronously every EXECUTION_STATUS_REFRESH_INTERVAL_SECONDS (default 30) and can lag
    # the task counts (src/pkg/task/hook.go; goharbor/harbor#18944). 0: always current.
    status_refresh_interval: float = 0.0

    # Failed attempts each copy task makes before it succeeds: the task shows Failed between
    # attempts (jobservice retries replication jobs, MaxFails 3; goharbor/harbor#14986).
    # Values of 3 or more make the task fail for good.
    transient_task_failures: int = 0
    retry_delay: float = 0.2  # seconds a task shows Failed before its retry

    # Whether robots could hold system permissions (registry, replication) before v2.10. The
    # system permission map arrived with v2.10.0; earlier robots are refused (403).
    robot_system_permissions_before_v2_10: bool = False

    # v2.16 behaviour (URL change without access_secret clears the secret) on any version.
    # None: decided by the configured version.
    clear_secret_on_url_change: bool | None = None
