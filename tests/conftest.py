# Registry, token-server, image and skopeo fixtures (see tests/fixtures/registries.py).
pytest_plugins = ["tests.fixtures.registries"]
