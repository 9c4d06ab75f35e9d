"""An emulator of Alibaba Cloud Container Registry's control plane, for tests.

It speaks both API editions on one port, held to the vendor's contract as researched in
Alibaba's API reference and the aliyun-python-sdk-cr request classes: personal edition
2016-06-07 (ROA: PascalCase bodies in wrappers, camelCase ``data`` responses, lower-case
service errors) and enterprise edition 2018-12-01 (RPC:
query parameters, PascalCase flat responses, ``IsSuccess``). Signatures are verified as the
gateway does; builds really run (git clone, buildah bud, buildah push to a local registry).

Use it through the pytest fixture ``acr_emulator`` (tests/fixtures/acr.py). Modules:

``server``    HTTP front, gateway checks, recording          ``signing``  ROA/RPC signatures
``personal``  2016-06-07 routes and bodies                     ``enterprise`` 2018-12-01 actions
``state``     records, limits, name rules                      ``builds``   git + buildah runner
``backend``   shared quotas/builds/tags                        ``faults``   fault injection
``errors``    the three error shapes and all codes             ``registry_view`` tag reading
``quirks``    one switch per UNCONFIRMED behaviour (docs/vendors/acr.md)
"""

from relay.sandbox.acr.builds import BuildSettings
from relay.sandbox.acr.quirks import Quirks
from relay.sandbox.acr.server import AcrServer
from relay.sandbox.acr.state import Call, Limits, State

__all__ = ["AcrServer", "BuildSettings", "Call", "Limits", "Quirks", "State"]
