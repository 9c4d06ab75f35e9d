# Registry, token-server, image and skopeo fixtures (tests/fixtures/registries.py) and the ACR
# control-plane emulator (tests/fixtures/acr.py).
pytest_plugins = ["tests.fixtures.registries", "tests.fixtures.acr"]
