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
    "tests.fakes.hostile",
]


import pytest  # noqa: E402

from relay import safety  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_secrets():
    """relay.safety's secrets are process-wide (one CLI run is one process); each test starts
    with none, so one test's password does not redact another's output."""
    safety.forget_secrets()
    yield
    safety.forget_secrets()
