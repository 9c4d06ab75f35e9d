# Registry, token-server, image and skopeo fixtures (tests/fixtures/registries.py), the ACR
# control-plane emulator (tests/fixtures/acr.py) and the in-process fake registry
# (tests/fakes/registry.py: `fake`, `tls_fake`).
pytest_plugins = ["tests.fixtures.registries", "tests.fixtures.acr", "tests.fakes.registry"]
