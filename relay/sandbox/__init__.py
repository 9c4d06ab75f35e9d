"""Emulators of the vendor control planes relay talks to, held to the vendors' contracts.

Each emulator answers like the real service does -- its routes, body shapes, error bodies,
signatures and quirks, as read from the vendor's documentation and source -- and refuses what
the real service would refuse, often more strictly, so that a client bug shows up here and not
in production. They really do the work behind the API where that matters (ACR builds images,
Harbor replicates them), against local docker-registry processes.

They ship inside the package, not only in the tests, so that a local sandbox (``relay sandbox
up``, to come) and the test suite run the same emulators:

``relay.sandbox.acr``     Alibaba Cloud Container Registry (personal 2016-06-07 ROA and
                          enterprise 2018-12-01 RPC OpenAPI)
"""
