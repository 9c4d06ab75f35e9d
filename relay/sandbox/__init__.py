"""Emulators of the vendor control planes relay talks to, held to the vendors' contracts.

Each emulator answers like the real service does -- its routes, body shapes, error bodies,
signatures and quirks, as read from the vendor's documentation and source -- and refuses what
the real service would refuse, often more strictly, so that a client bug shows up here and not
in production. They really do the work behind the API where that matters (ACR builds images,
Harbor replicates them), against local docker-registry processes.

They ship inside the package, not only in the tests, so that a local sandbox (``relay sandbox
up``, to come) and the test suite run the same emulators:

``relay.sandbox.acr``     Alibaba Cloud Container Registry (personal 2016-06-07 ROA and
                          enterprise 2018-12-01 RPC OpenAPI), builds included
``relay.sandbox.harbor``  Harbor's core API v2.0 (registries, projects, replication policies,
                          executions and tasks), replicating from ACR for real
``relay.sandbox.common``  what they share: the HTTP front, call recording, fault injection, a
                          fault front for real registries, a small registry reader
``relay.sandbox.chaos``   the whole pipeline under random faults and SIGKILLs, then an exact
                          account of what the emulators hold (tests/test_chaos.py,
                          benchmarks/chaos.py)

Vendor error bodies stay in each emulator. Harbor's needs ``jsonschema`` and ``referencing``
(``pip install relay[sandbox]``); both need the registries and tools their tests name.
"""
