# Registry, token-server, image and skopeo fixtures (tests/fixtures/registries.py), the ACR and
# Harbor control-plane emulators (tests/fixtures/acr.py, tests/fixtures/harbor.py), the ACR
# stage's relay repository (tests/fixtures/acr_world.py: `world`), the in-process fake registry
# (tests/fakes/registry.py: `fake`, `tls_fake`) and the GitHub REST stand-in
# (tests/fakes/github.py: `fake_github`).
pytest_plugins = [
    "tests.fixtures.registries",
    "tests.fixtures.acr",
    "tests.fixtures.acr_world",
    "tests.fixtures.harbor",
    "tests.fakes.registry",
    "tests.fakes.github",
]
