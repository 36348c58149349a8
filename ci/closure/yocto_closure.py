"""The agent's closure against oe-core's python3 packaging and our recipes' RDEPENDS.

oe-core's `python3-manifest.json` lists, per `python3-<key>` package, the
files it ships (`files`) and the packages it needs (`rdepends`). The python3
recipe prepends the manifest's packages, in the file's order, to PACKAGES, and
bitbake gives each file to the first package whose FILES matches it (a
directory entry takes everything under it); what no package matches lands in
python3-misc. A module is owed by the package named after it when there is
one (python3-fcntl for fcntl, though python3-core happens to ship the .so
first), else by the first package that ships its file.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent_closure import REPO, Closure

LAYER = REPO / "meta-pyupdate"
MANIFEST = "meta/recipes-devtools/python/python3/python3-manifest.json"
LIB_PREFIX = "${libdir}/python${PYTHON_MAJMIN}/"
# Recipes whose build compiles Rust (cargo, rust-native) or pulls such a recipe:
# never on the device (issue 13: the device needs no Rust).
RUST_RECIPES = frozenset(
    {
        "python3-cryptography",
        "python3-bcrypt",
        "python3-rpds-py",
        "python3-maturin",
        "python3-jsonschema",
        "python3-pydantic-core",
    }
)


def read_manifest(oe_core: Path) -> dict[str, object]:
    """The facts the checks need from oe-core: package -> file patterns (lib-relative) and rdepends."""
    text = (oe_core / MANIFEST).read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    raw = json.loads(body)
    packages: dict[str, dict[str, list[str]]] = {}
    for key, entry in raw.items():
        files = [
            f[len(LIB_PREFIX) :]
            for f in entry["files"]
            if f.startswith(LIB_PREFIX) and "__pycache__" not in f
        ]
        packages[key] = {"files": files, "rdepends": list(entry["rdepends"])}
    recipe = next((oe_core / "meta/recipes-devtools/python").glob("python3_*.bb"))
    misc = re.search(r'RDEPENDS:\$\{PN\}-misc \+= "(.*?)"', recipe.read_text(), re.S)
    misc_rdepends = re.findall(r"\$\{PN\}-([\w-]+)", misc.group(1)) if misc else []
    return {
        "python3_recipe": recipe.name,
        "packages": packages,
        "misc_rdepends": misc_rdepends,
    }


def _candidate_paths(module: str, kind: str | None) -> list[str]:
    parts = module.split(".")
    base = "/".join(parts)
    by_kind = {
        "py": [f"{base}.py"],
        "pkg": [f"{base}/__init__.py"],
        "ext": [f"lib-dynload/{module}.cpython-3.so"],
    }
    if kind in by_kind:
        return by_kind[kind]
    return [p for k in ("py", "pkg", "ext") for p in by_kind[k]]


def _matches(path: str, pattern: str) -> bool:
    pattern = pattern.rstrip("/")
    return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern + "/")


def package_of(module: str, kind: str | None, facts: dict[str, object]) -> str:
    """The python3-* package a stdlib module needs (see the module docstring)."""
    packages: dict[str, dict[str, list[str]]] = facts["packages"]  # type: ignore[assignment]

    def claimers_of(paths: list[str]) -> list[str]:
        return [
            key
            for key, entry in packages.items()
            if any(_matches(p, f) for p in paths for f in entry["files"])
        ]

    # this interpreter's layout first; then any (string.py here is string/ in 3.14)
    claimers = claimers_of(_candidate_paths(module, kind)) or claimers_of(
        _candidate_paths(module, None)
    )
    top = module.split(".")[0]
    if top in claimers:
        return f"python3-{top}"
    if claimers:
        return f"python3-{claimers[0]}"
    if kind in ("ext", None) and "." not in module:
        return "python3-core"  # built into the interpreter (sys, posix, _io, ...)
    return "python3-misc"


def rdepends_closure(names: Iterable[str], facts: dict[str, object]) -> set[str]:
    """Packages installed with `names`, following the manifest's rdepends."""
    packages: dict[str, dict[str, list[str]]] = facts["packages"]  # type: ignore[assignment]
    edges = {f"python3-{k}": [f"python3-{d}" for d in v["rdepends"]] for k, v in packages.items()}
    edges["python3-misc"] = [f"python3-{d}" for d in facts["misc_rdepends"]]  # type: ignore[union-attr]
    edges.setdefault("python3-modules", []).append("python3-misc")
    done: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        todo.extend(edges.get(name, []))
    return done


# --- our recipes ----------------------------------------------------------------------------


_ASSIGN = re.compile(
    r'^(?P<var>[A-Za-z0-9_${}:.-]+?)\s*(?P<op>\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"',
    re.S,
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """RDEPENDS and DEPENDS of one of our recipes for the target, as a small reader sees them.

    Args:
        path: the .bb file.
        pn: the recipe name (file name before `_`).
        rdepends: RDEPENDS:${PN} after =, +=, :append, :prepend (class-native overrides ignored).
        depends: DEPENDS for the target (`:append:class-native` ignored).
    """

    path: Path
    pn: str
    rdepends: tuple[str, ...]
    depends: tuple[str, ...]


def _logical_lines(text: str) -> list[str]:
    return re.sub(r"\\\n", " ", text).splitlines()


def read_recipe(path: Path) -> Recipe:
    """Read RDEPENDS:${PN} and DEPENDS from a .bb (and what it requires), expanding local variables."""
    pn = path.name.split("_")[0].removesuffix(".bb")
    values: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        m = re.match(r"^(?:require|include)\s+(\S+)", line)
        if m and (path.parent / m.group(1)).is_file():
            lines += _logical_lines((path.parent / m.group(1)).read_text(encoding="utf-8"))
        lines.append(line)
    for line in lines:
        m = _ASSIGN.match(line.strip())
        if not m:
            continue
        var, op, words = m["var"], m["op"], m["value"].split()
        var = var.replace("${PN}", pn)
        if any(o in var for o in (":class-native", ":class-nativesdk")):
            continue
        for suffix, how in ((":append", "+="), (":prepend", "=+"), (":remove", "-")):
            if var.endswith(suffix):
                var, op = var[: -len(suffix)], how
        current = values.get(var, [])
        if op in ("=", ":="):
            values[var] = words
        elif op in ("?=", "??="):
            values.setdefault(var, words)
        elif op in ("+=", ".="):
            values[var] = current + words
        elif op in ("=+", "=."):
            values[var] = words + current
        elif op == "-":
            values[var] = [w for w in current if w not in words]

    def expand(words: list[str], depth: int = 0) -> tuple[str, ...]:
        out: list[str] = []
        for w in words:
            ref = re.fullmatch(r"\$\{(\w+)\}", w)
            if ref and ref.group(1) in values and depth < 5:
                out += expand(values[ref.group(1)], depth + 1)
            else:
                out.append(w.replace("${PYTHON_PN}", "python3"))
        return tuple(out)

    return Recipe(
        path,
        pn,
        expand(values.get(f"RDEPENDS:{pn}", [])),
        expand(values.get("DEPENDS", [])),
    )


def our_recipes(layer: Path = LAYER) -> dict[str, Recipe]:
    recipes = [read_recipe(p) for p in sorted(layer.glob("recipes-pyupdate/*/*.bb"))]
    return {r.pn: r for r in recipes}


def installed_with(pn: str, recipes: dict[str, Recipe], facts: dict[str, object]) -> set[str]:
    """Every package a device gets with `pn`: its RDEPENDS, through our recipes and the manifest."""
    names: set[str] = set()
    todo = [pn]
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.add(name)
        if name in recipes:
            todo.extend(recipes[name].rdepends)
    return rdepends_closure(names, facts)


# --- the check ------------------------------------------------------------------------------

# Our top-level package -> the recipe that installs it.
RECIPE_OF = {"pyupdate_agent": "pyupdate-agent", "pyupdate_artifact": "pyupdate-artifact"}


def _rel(path: Path, repo: Path) -> str:
    try:
        return str(path.relative_to(repo))
    except ValueError:
        return str(path)


def check(
    closure: Closure,
    facts: dict[str, object],
    recipes: dict[str, Recipe],
    repo: Path = REPO,
) -> list[str]:
    """One line per missing package (per recipe), per forbidden RDEPENDS, per third-party import."""
    failures: list[str] = []
    manifest_keys = set(facts["packages"])  # type: ignore[arg-type]
    for top, pn in RECIPE_OF.items():
        recipe = recipes.get(pn)
        if recipe is None:
            failures.append(f"meta-pyupdate: no recipe {pn} for {top}")
            continue
        have = installed_with(pn, recipes, facts)
        missing: dict[str, tuple[str, str, str]] = {}
        for module in sorted(closure.stdlib):
            needers = closure.needers(module, prefix=top)
            if not needers:
                continue
            package = package_of(module, closure.kinds.get(module), facts)
            if package in have:
                continue
            owner, how = needers[0]
            best = missing.get(package)
            if best is None or (how == "imports" and best[2] != "imports"):
                missing[package] = (module, owner, how)
        for package, (module, owner, how) in sorted(missing.items()):
            via = f"imports {module}" if how == "imports" else f"needs {module} through its imports"
            failures.append(
                f"{_rel(recipe.path, repo)}: {owner} {via}, shipped by {package}: add it to RDEPENDS:${{PN}}"
            )
        for dep in recipe.rdepends:
            if dep in RUST_RECIPES:
                failures.append(
                    f"{_rel(recipe.path, repo)}: RDEPENDS:${{PN}} has {dep}, which builds Rust: the device must not need it"
                )
            elif (
                dep.startswith("python3-")
                and dep.removeprefix("python3-") not in manifest_keys
                and dep.removeprefix("python3-").replace("-", "_")
                not in closure.optional_third_party
            ):
                failures.append(
                    f"{_rel(recipe.path, repo)}: RDEPENDS:${{PN}} has {dep}, a third-party package none of the agent's imports needs"
                )
    for imp in closure.mandatory_third_party:
        failures.append(
            f"{imp.where}: imports {imp.name} outside try/except ImportError: the device has the stdlib and libcrypto only"
        )
    for imp in closure.host_only:
        failures.append(f"{imp.where}: imports {imp.name}, which is build-host only")
    for module, text in sorted(closure.errors.items()):
        failures.append(f"{module}: does not import on a stdlib-only Python: {text}")
    return failures
