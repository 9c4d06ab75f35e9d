"""The tree shows the layers: each folder imports only from the layers below it.

reference grammar → net → registry → ops → stages → commands → cli, with config beside
registry (the repository's own files). Checked by importing each package in a fresh
interpreter and looking at what came with it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# package → relay packages it must not pull in
RULES = {
    "relay.reference": ["relay.net", "relay.registry", "relay.config", "relay.stages"],
    "relay.net.transport": ["relay.registry", "relay.config", "relay.stages", "relay.commands"],
    "relay.registry.client": ["relay.config", "relay.stages", "relay.commands", "relay.ops"],
    "relay.config.settings": ["relay.stages", "relay.commands", "relay.registry", "relay.net"],
    "relay.config.mirrors": ["relay.stages", "relay.commands", "relay.registry", "relay.net"],
    "relay.ops.copyimage": ["relay.stages", "relay.commands", "relay.config"],
    "relay.stages.generate": ["relay.commands", "relay.net", "relay.registry"],
    "relay.stages.clients": ["relay.commands", "relay.net", "relay.registry", "requests"],
    "relay.cli": [
        "relay.stages",
        "relay.registry",
        "relay.net",
        "requests",
        "yaml",
        "rich",
        "shtab",
    ],
    # Progress bars cost their import only when one is drawn (start-up is benchmarked).
    "relay.commands.validate": ["rich", "shtab"],
    "relay.commands.copyimage": ["rich", "shtab"],
    "relay.output.progress": ["rich"],
}


@pytest.mark.parametrize("module", sorted(RULES))
def test_module_does_not_import_higher_layers(module: str) -> None:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = json.loads(out)
    offending = [
        m for m in loaded for banned in RULES[module] if m == banned or m.startswith(banned + ".")
    ]
    assert offending == [], f"{module} imports {offending}"
