"""What the recipes declare beyond the import closure: no Rust, and libcrypto.

Whether RDEPENDS cover every module the agent imports is checked in one place,
tests/integrations/test_runtime_closure.py (ci/closure/, through oe-core's
python3-manifest.json). What no import walk can see is here: libcrypto is
opened by soname through ctypes, and the native tools' DEPENDS must not pull a
recipe that compiles Rust either.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from integrations_helpers import LAYER

AGENT_RECIPE = LAYER / "recipes-pyupdate" / "pyupdate-agent" / "pyupdate-agent_0.1.0.bb"
ARTIFACT_RECIPE = LAYER / "recipes-pyupdate" / "pyupdate-artifact" / "pyupdate-artifact_0.1.0.bb"


def rdepends(recipe: Path) -> set[str]:
    m = re.search(r'^RDEPENDS:\$\{PN\} = "(.*?)"', recipe.read_text(), re.M | re.S)
    assert m, recipe
    return set(m.group(1).replace("\\", " ").split())


@pytest.mark.parametrize("recipe", [AGENT_RECIPE, ARTIFACT_RECIPE], ids=lambda p: p.stem)
def test_no_rust_on_the_device_or_in_the_native_tools(recipe: Path):
    """cryptography and jsonschema (rpds-py) build Rust; libcrypto comes from openssl."""
    text = recipe.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for rust in ("python3-cryptography", "python3-jsonschema", "python3-rpds-py", "rust", "cargo"):
        assert rust not in code, f"{recipe.name}: {rust}"
    assert "libcrypto" in rdepends(recipe)
    assert "python3-ctypes" in rdepends(recipe)
