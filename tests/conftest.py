# Registry, token-server, image and skopeo fixtures (tests/fixtures/registries.py) and the ACR
# and Harbor control-plane emulators (tests/fixtures/acr.py, tests/fixtures/harbor.py).
pytest_plugins = ["tests.fixtures.registries", "tests.fixtures.acr", "tests.fixtures.harbor"]
