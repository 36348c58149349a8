"""The agent's run-time import closure against what the Yocto recipes and Buildroot's python3 provide.

The closure is computed live (ci/closure/agent_closure.py); oe-core's python3
manifest and Buildroot's resolved .config come from PYUPDATE_SNAPSHOTS when
set, else from tests/integrations/data/closure/ (docs/layer-checks.md).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import agent_closure
import buildroot_closure
import closure_facts
import pytest
import yocto_closure
from closure_fixtures import br_facts, oe_facts

__all__ = ["br_facts", "oe_facts"]


def _fake_tree(tmp: Path, agent_code: str, artifact_code: str = "") -> dict[str, Path]:
    """A stand-in agent (pyupdate_agent.unit) and artifact library under tmp/src."""
    src = tmp / "src"
    for package, code in (("pyupdate_agent", agent_code), ("pyupdate_artifact", artifact_code)):
        (src / package).mkdir(parents=True)
        (src / package / "__init__.py").write_text("")
        (src / package / "unit.py").write_text(code)
    return {"pyupdate_agent": src, "pyupdate_artifact": src}


def _fake_recipes(
    tmp: Path, agent: str, artifact: str = "python3-core"
) -> dict[str, yocto_closure.Recipe]:
    layer = tmp / "meta-pyupdate"
    for pn, rdepends in (
        ("pyupdate-agent", f"{agent} pyupdate-artifact"),
        ("pyupdate-artifact", artifact),
    ):
        path = layer / "recipes-pyupdate" / pn / f"{pn}_0.1.0.bb"
        path.parent.mkdir(parents=True)
        path.write_text(f'LICENSE = "Apache-2.0"\nRDEPENDS:${{PN}} = " \\\n    {rdepends} \\\n"\n')
    return yocto_closure.our_recipes(layer)


def _fake_closure(tmp: Path, roots: dict[str, Path]) -> agent_closure.Closure:
    starts = [m for p in roots for m in agent_closure.own_modules(p, roots)]
    return agent_closure.compute(starts, roots, repo=tmp)


# --- the real tree ------------------------------------------------------------------------------


def test_agent_imports_are_in_the_recipes_rdepends(oe_facts: dict[str, object]) -> None:
    failures = yocto_closure.check(
        agent_closure.agent_closure(), oe_facts, yocto_closure.our_recipes()
    )
    assert not failures, "\n".join(failures)


def test_agent_needs_only_the_stdlib_on_the_device() -> None:
    closure = agent_closure.agent_closure()
    assert closure.own_modules, "no agent module found"
    assert "pyupdate_artifact.reader" in closure.own_modules
    assert not any(m.startswith("pyupdate_host") for m in closure.own_modules)
    lines = [
        f"{i.where}: imports {i.name} outside try/except ImportError"
        for i in closure.mandatory_third_party
    ] + [f"{m}: {e}" for m, e in closure.errors.items()]
    assert not lines, "\n".join(lines)


def test_record_is_current(br_facts: dict[str, object]) -> None:
    if closure_facts.snapshots():
        pytest.skip("live facts from PYUPDATE_SNAPSHOTS: no record to compare")
    line = closure_facts.drift(br_facts)
    assert line is None, line


@pytest.mark.parametrize(
    "defconfig", sorted(p.name for p in (buildroot_closure.BR_EXT / "configs").glob("*_defconfig"))
)
def test_buildroot_python_has_what_the_agent_imports(
    br_facts: dict[str, object], defconfig: str
) -> None:
    facts = br_facts["defconfigs"][defconfig]  # type: ignore[index]
    failures = buildroot_closure.check_python(
        agent_closure.agent_closure(),
        facts,
        br_facts["python_modules"],  # type: ignore[arg-type]
    )
    assert not failures, "\n".join(failures)


# --- the checks fail on bad input ---------------------------------------------------------------


def test_a_lazy_fcntl_import_needs_python3_fcntl(
    tmp_path: Path, oe_facts: dict[str, object]
) -> None:
    roots = _fake_tree(
        tmp_path, "def lock(fd: int) -> None:\n    import fcntl\n\n    fcntl.flock(fd, 2)\n"
    )
    closure = _fake_closure(tmp_path, roots)
    failures = yocto_closure.check(
        closure, oe_facts, _fake_recipes(tmp_path, "python3-core"), tmp_path
    )
    assert failures == [
        "meta-pyupdate/recipes-pyupdate/pyupdate-agent/pyupdate-agent_0.1.0.bb: pyupdate_agent.unit imports fcntl, shipped by python3-fcntl: add it to RDEPENDS:${PN}"
    ]
    fixed = _fake_recipes(tmp_path / "fixed", "python3-core python3-fcntl")
    assert yocto_closure.check(closure, oe_facts, fixed, tmp_path / "fixed") == []


def test_a_recipe_without_python3_ctypes(tmp_path: Path, oe_facts: dict[str, object]) -> None:
    layer = tmp_path / "meta-pyupdate"
    shutil.copytree(yocto_closure.LAYER / "recipes-pyupdate", layer / "recipes-pyupdate")
    for bb in layer.rglob("*.bb"):
        bb.write_text(bb.read_text().replace("python3-ctypes", ""))
    closure = agent_closure.agent_closure()
    if "ctypes" not in closure.stdlib:
        pytest.skip("the agent does not import ctypes (yet)")
    failures = yocto_closure.check(closure, oe_facts, yocto_closure.our_recipes(layer), tmp_path)
    ctypes_lines = [f for f in failures if "python3-ctypes" in f]
    assert ctypes_lines and all(
        "ctypes" in f and "add it to RDEPENDS" in f for f in ctypes_lines
    ), failures


def test_a_mandatory_third_party_import_fails_a_guarded_one_does_not(tmp_path: Path) -> None:
    roots = _fake_tree(
        tmp_path,
        "import cryptography\n",
        "try:\n    import zstandard\nexcept ImportError:\n    zstandard = None\n",
    )
    closure = _fake_closure(tmp_path, roots)
    assert [(i.name, i.where) for i in closure.mandatory_third_party] == [
        ("cryptography", "src/pyupdate_agent/unit.py:1")
    ]
    assert closure.optional_third_party == {"zstandard"}
    assert "pyupdate_agent.unit" in closure.errors  # does not import without site-packages


def test_a_module_reached_only_through_a_guarded_import_is_optional(tmp_path: Path) -> None:
    roots = _fake_tree(
        tmp_path,
        "def backend():\n    try:\n        from . import pyca\n    except ImportError:\n        return None\n",
    )
    (roots["pyupdate_agent"] / "pyupdate_agent" / "pyca.py").write_text("import cryptography\n")
    closure = agent_closure.compute(["pyupdate_agent.unit"], roots, repo=tmp_path)
    assert closure.optional_modules == ["pyupdate_agent.pyca"]
    assert closure.mandatory_third_party == []
    assert closure.optional_third_party == {"cryptography"}


def test_rdepends_on_python3_cryptography_is_refused(
    tmp_path: Path, oe_facts: dict[str, object]
) -> None:
    roots = _fake_tree(tmp_path, "import json\n")
    closure = _fake_closure(tmp_path, roots)
    recipes = _fake_recipes(
        tmp_path, "python3-core python3-json", "python3-core python3-cryptography"
    )
    assert yocto_closure.check(closure, oe_facts, recipes, tmp_path) == [
        "meta-pyupdate/recipes-pyupdate/pyupdate-artifact/pyupdate-artifact_0.1.0.bb: RDEPENDS:${PN} has python3-cryptography, which builds Rust: the device must not need it"
    ]


def test_a_defconfig_without_python3_ssl(br_facts: dict[str, object]) -> None:
    name = sorted(br_facts["defconfigs"])[0]  # type: ignore[arg-type]
    facts = copy.deepcopy(br_facts["defconfigs"][name])  # type: ignore[index]
    facts["config"].pop("BR2_PACKAGE_PYTHON3_SSL", None)
    closure = agent_closure.Closure(
        stdlib={
            "ssl": {"pyupdate_agent.daemon.client": "imports"},
            "_ssl": {"pyupdate_agent.daemon.client": "through its imports"},
        }
    )
    assert buildroot_closure.check_python(closure, facts, br_facts["python_modules"]) == [  # type: ignore[arg-type]
        f"buildroot-ext/configs/{name}: BR2_PACKAGE_PYTHON3_SSL is not set in the resolved .config (_ssl for pyupdate_agent.daemon.client): select it in buildroot-ext/package/python-pyupdate-agent/Config.in"
    ]


def test_python3_mk_maps_the_modules_the_agent_needs(br_facts: dict[str, object]) -> None:
    target = br_facts["python_modules"]["target"]  # type: ignore[index]
    assert target["_ssl"] == "BR2_PACKAGE_PYTHON3_SSL"
    assert target["_lzma"] == "BR2_PACKAGE_PYTHON3_XZ"
    assert target["zlib"] == "BR2_PACKAGE_PYTHON3_ZLIB"
    assert target["_sqlite3"] == "BR2_PACKAGE_PYTHON3_SQLITE"
    assert "_ctypes" not in target  # python3 always selects libffi
    assert br_facts["python_modules"]["host"]["_lzma"] == "BR2_PACKAGE_HOST_PYTHON3_XZ"  # type: ignore[index]


def test_the_manifest_maps_modules_as_oe_core_packages_them(oe_facts: dict[str, object]) -> None:
    of = yocto_closure.package_of
    assert (
        of("fcntl", "ext", oe_facts) == "python3-fcntl"
    )  # named after it, though core ships the .so
    assert of("ctypes", "pkg", oe_facts) == "python3-ctypes"
    assert of("shlex", "py", oe_facts) == "python3-shell"
    assert of("_ssl", "ext", oe_facts) == "python3-io"
    assert of("sqlite3", "pkg", oe_facts) == "python3-sqlite3"
    assert of("string", "py", oe_facts) == "python3-stringold"  # a package in 3.14
    assert of("sys", "ext", oe_facts) == "python3-core"
    assert "python3-math" in yocto_closure.rdepends_closure(["python3-ctypes"], oe_facts)
