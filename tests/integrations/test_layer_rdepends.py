"""The recipes' RDEPENDS against what the agent imports on the device.

Walks the imports of every agent module (and the artifact modules it reaches)
with `ast`, maps each standard library module to its oe-core package through
python3-manifest.json (data/python3-manifest-modules.json, derived from
oe-core wrynose), and checks the package is named in the recipe's RDEPENDS
itself, not reached by accident through another package's dependencies.
A module in two packages (fcntl: python3-core and python3-fcntl) needs the
non-core one named, so a manifest move cannot drop it.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from integrations_helpers import DATA, LAYER, REPO

SOURCES = {
    "pyupdate_agent": REPO / "agent" / "src" / "pyupdate_agent",
    "pyupdate_artifact": REPO / "artifact_tool" / "src" / "pyupdate_artifact",
}
AGENT_RECIPE = LAYER / "recipes-pyupdate" / "pyupdate-agent" / "pyupdate-agent_0.1.0.bb"
ARTIFACT_RECIPE = LAYER / "recipes-pyupdate" / "pyupdate-artifact" / "pyupdate-artifact_0.1.0.bb"
# Optional accelerators and the build-host crypto backend: imported only when
# installed, never required on the device.
OPTIONAL = {"cryptography", "isal", "deflate", "zlib_ng", "zstandard"}
MANIFEST = json.loads((DATA / "python3-manifest-modules.json").read_text())


def _module_file(name: str) -> Path | None:
    top, *rest = name.split(".")
    base = SOURCES[top].joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(roots: list[str]) -> tuple[set[str], set[str]]:
    """(stdlib modules, third-party top-level names) reached from `roots`."""
    seen: set[str] = set()
    stdlib: set[str] = set()
    third: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        path = _module_file(name) if name.split(".")[0] in SOURCES else None
        if name in seen or path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    base += f".{node.module}" if node.module else ""
                else:
                    base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            for full in names:
                top = full.split(".")[0]
                if top in SOURCES:
                    todo.append(full)
                elif top == "__future__":
                    continue
                elif top in sys.stdlib_module_names:
                    stdlib.add(full)
                else:
                    third.add(top)
    return stdlib, third


def agent_roots() -> list[str]:
    base = SOURCES["pyupdate_agent"]
    return [
        ".".join(("pyupdate_agent", *p.relative_to(base).with_suffix("").parts)).removesuffix(
            ".__init__"
        )
        for p in base.rglob("*.py")
    ]


def packages_of(module: str) -> list[str]:
    """python3-* packages of `module` or of its closest parent in the manifest."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if name in MANIFEST["modules"]:
            return [f"python3-{p}" for p in MANIFEST["modules"][name]]
    return []


def rdepends(recipe: Path) -> set[str]:
    m = re.search(r'^RDEPENDS:\$\{PN\} = "(.*?)"', recipe.read_text(), re.M | re.S)
    assert m, recipe
    return set(m.group(1).replace("\\", " ").split())


def missing(stdlib: set[str], declared: set[str]) -> list[str]:
    problems = []
    for module in sorted(stdlib):
        top = module.split(".")[0]
        packages = packages_of(module)
        if not packages:
            if top in sys.builtin_module_names or top in ("sys", "errno"):
                continue
            problems.append(f"{module}: not in python3-manifest.json")
            continue
        needed = [p for p in packages if p != "python3-core"] or packages
        if not any(p in declared for p in needed):
            problems.append(f"{module}: needs {' or '.join(needed)}")
    return problems


def test_agent_rdepends_cover_its_imports():
    stdlib, third = imports_of(agent_roots())
    assert third <= OPTIONAL, sorted(third - OPTIONAL)
    declared = rdepends(AGENT_RECIPE)
    assert "pyupdate-artifact" in declared
    assert not missing(stdlib, declared), missing(stdlib, declared)


def test_artifact_rdepends_cover_the_reader():
    """What the agent reaches in pyupdate_artifact, declared by pyupdate-artifact itself."""
    roots = [
        "pyupdate_artifact.reader",
        "pyupdate_artifact.sign",
        "pyupdate_artifact.provides",
        "pyupdate_artifact.heap",
        "pyupdate_artifact.compress",
    ]
    stdlib, third = imports_of(roots)
    assert third <= OPTIONAL, sorted(third - OPTIONAL)
    assert not missing(stdlib, rdepends(ARTIFACT_RECIPE)), missing(
        stdlib, rdepends(ARTIFACT_RECIPE)
    )


@pytest.mark.parametrize("recipe", [AGENT_RECIPE, ARTIFACT_RECIPE], ids=lambda p: p.stem)
def test_no_rust_on_the_device_or_in_the_native_tools(recipe: Path):
    """cryptography and jsonschema (rpds-py) build Rust; libcrypto comes from openssl."""
    text = recipe.read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for rust in ("python3-cryptography", "python3-jsonschema", "python3-rpds-py", "rust", "cargo"):
        assert rust not in code, f"{recipe.name}: {rust}"
    assert "libcrypto" in rdepends(recipe)
    assert "python3-ctypes" in rdepends(recipe)


def test_missing_module_is_found():
    """The check can fail: shlex without python3-shell."""
    assert missing({"shlex", "os"}, {"python3-core"}) == ["shlex: needs python3-shell"]
    assert missing({"fcntl"}, {"python3-core"}) == ["fcntl: needs python3-fcntl"]
