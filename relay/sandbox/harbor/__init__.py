"""An emulator of Harbor's core API (v2.0), held to Harbor's contract, that really replicates.

Covered: ping/health/systeminfo/current user, registries (with the ``ali-acr`` health check
against the ACR emulator's OpenAPI and a stand-in registry), projects, replication policies,
executions, tasks and task logs. Every body and query is validated against Harbor's own swagger
(vendored, v2.15.2) made strict; versions gate fields; :class:`Quirks` switches the unconfirmed
behaviours. Executions run the ali-acr adapter's listing through the ACR OpenAPI (signed with the
stored AccessKey) and copy each tag with skopeo into a stand-in for Harbor's registry.

Modules: ``server`` (routes, pipeline, handlers), ``flow`` (executions and tasks), ``adapter``
(what Harbor's ali-acr adapter does), ``spec`` (the swagger and validation), ``quirks``
(versions and switches), ``cron``, ``patterns`` (doublestar, namespace flattening), ``copier``
(skopeo), ``state``, ``errors``. Needs ``jsonschema`` and ``referencing``
(``pip install relay[sandbox]``) and skopeo.
"""

from relay.sandbox.harbor.quirks import DEFAULT_VERSION, Quirks
from relay.sandbox.harbor.server import HarborServer
from relay.sandbox.harbor.state import ALL_ROBOT_PERMISSIONS, Call, Robot, State

__all__ = [
    "ALL_ROBOT_PERMISSIONS",
    "DEFAULT_VERSION",
    "Call",
    "HarborServer",
    "Quirks",
    "Robot",
    "State",
]
