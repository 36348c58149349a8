"""The agent's import closure, computed live: what a device's Python must provide.

Each module of the agent (and each module of pyupdate_artifact the agent
reaches) is imported in a fresh interpreter started with `-I -S`, as the
device starts it, with only the two source trees, the stdlib and (for
third-party detection) the venv's site-packages on sys.path. The modules it
loads beyond a bare interpreter's are collected, and so are the imports the
AST shows anywhere in the module (inside functions too, so a lazy import in a
rarely-run branch counts). `if TYPE_CHECKING:` imports are not run-time
imports; an import inside `try: ... except ImportError` is optional.

Facts only: which stdlib modules are needed, by whom, and which third-party
imports are mandatory. The checks against recipes and .config are in
yocto_closure.py and buildroot_closure.py.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = {
    "pyupdate_agent": REPO / "agent" / "src",
    "pyupdate_artifact": REPO / "artifact_tool" / "reader" / "src",
    "pyupdate_host": REPO / "artifact_tool" / "host" / "src",
}
OWN = frozenset(SOURCES)
# Build-host only (STYLE.md): the agent must never reach it.
HOST_ONLY = ("pyupdate_host",)
# Newer stdlib names than this interpreter knows (sys.stdlib_module_names of
# 3.11): the devices run 3.14.
EXTRA_STDLIB = frozenset({"compression", "annotationlib", "_colorize", "_pyrepl", "_zstd"})

_CHILD = r"""
import sys
base = set(sys.modules)
# no imports of its own (json, importlib): they would count as the module's
front, wanted = sys.argv[1].split("\n"), sys.argv[2].split("\n")
sys.path[:0] = [p for p in front if p]
out = []
for line in wanted:
    if not line:
        continue
    name, must = line.split("\t")
    try:
        __import__(name)
    except BaseException as e:  # noqa: BLE001 - any failure is a fact to report
        if must == "1":
            out.append("E\t" + name + "\t" + (type(e).__name__ + ": " + str(e)).replace("\n", " "))
for n, m in list(sys.modules.items()):
    # os.path is posixpath under another name, typing.io a class: real modules only
    if n in base or not isinstance(m, type(sys)) or getattr(m, "__name__", n) != n:
        continue
    f = getattr(m, "__file__", None) or ""
    kind = "pkg" if hasattr(m, "__path__") else "py" if f.endswith((".py", ".pyc")) else "ext"
    out.append("L\t" + n + "\t" + kind)
out += ["B\t" + n for n in base]
print("\n".join(out))
"""


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement of our code.

    Args:
        name: the absolute module name imported (for `from a import b`, both
            `a` and, when it is a module, `a.b` are recorded).
        where: `path:line` in the repo.
        optional: inside a try whose handler catches ImportError.
        maybe_attr: `a.b` of `from a import b`: b may be an attribute.
    """

    name: str
    where: str
    optional: bool
    maybe_attr: bool = False


@dataclass(slots=True)
class Closure:
    """What the device needs, module by module.

    Args:
        stdlib: stdlib module -> (our module that needs it, how: 'imports' or 'through X')
            for each of our modules; the first direct importer wins.
        kinds: stdlib module -> 'py', 'pkg' or 'ext' as this interpreter has it
            (None: not importable here, e.g. new in 3.14).
        mandatory_third_party: third-party imports outside try/except ImportError.
        optional_third_party: top-level names imported optionally (accelerators).
        own_modules: our modules in the closure (imported on every device).
        optional_modules: ours, reached only through guarded imports.
        errors: our module -> import error text (a broken module is a finding).
        host_only: imports of build-host-only modules from the closure.
    """

    stdlib: dict[str, dict[str, str]] = field(default_factory=dict)
    kinds: dict[str, str | None] = field(default_factory=dict)
    mandatory_third_party: list[Import] = field(default_factory=list)
    optional_third_party: set[str] = field(default_factory=set)
    own_modules: list[str] = field(default_factory=list)
    optional_modules: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    host_only: list[Import] = field(default_factory=list)

    def needers(self, module: str, prefix: str = "") -> list[tuple[str, str]]:
        """(our module, how) pairs for a stdlib module, direct importers first."""
        pairs = [(m, how) for m, how in self.stdlib.get(module, {}).items() if m.startswith(prefix)]
        return sorted(pairs, key=lambda p: (p[1] != "imports", p[0]))


def is_stdlib(name: str) -> bool:
    top = name.split(".")[0]
    return top in sys.stdlib_module_names or top in EXTRA_STDLIB


def module_file(name: str, roots: dict[str, Path] | None = None) -> Path | None:
    """The source file of one of our modules (package __init__ or module.py)."""
    roots = roots or SOURCES
    top = name.split(".")[0]
    if top not in roots:
        return None
    base = roots[top].joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def own_modules(package: str, roots: dict[str, Path] | None = None) -> list[str]:
    """Every module of one of our packages, by walking its source tree."""
    roots = roots or SOURCES
    root = roots[package]
    names = []
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] == "__main__":
            continue
        names.append(".".join(parts))
    return names


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names: list[ast.expr] = []
    if handler.type is None:
        return False
    names = list(handler.type.elts) if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        isinstance(n, ast.Name | ast.Attribute)
        and (n.id if isinstance(n, ast.Name) else n.attr) in ("ImportError", "ModuleNotFoundError")
        for n in names
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def scan_imports(module: str, path: Path, repo: Path = REPO) -> list[Import]:
    """Every run-time import statement of a module, lazy ones included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    try:
        rel = path.relative_to(repo)
    except ValueError:
        rel = path
    found: list[Import] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child, optional)
            return
        if isinstance(node, ast.Try | ast.TryStar):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, guarded)
            for part in (node.handlers, node.orelse, node.finalbody):
                for child in part:
                    visit(child, optional)
            return
        where = f"{rel}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, where, optional) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append(Import(target, where, optional))
            found.extend(
                Import(f"{target}.{a.name}", where, optional, maybe_attr=True)
                for a in node.names
                if a.name != "*"
            )
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            found.append(Import(node.args[0].value, where, optional))
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def import_in_child(
    imports: Iterable[tuple[str, bool]], roots: dict[str, Path] | None = None
) -> dict[str, object]:
    """Import names in a fresh `-I -S` interpreter that sees our sources and the stdlib only.

    No site-packages, as on a device without third-party packages: an
    optional accelerator's import fails and its fallback runs, and a
    mandatory third-party import is an error in the result.
    """
    roots = roots or SOURCES
    front = "\n".join(sorted({str(p) for p in roots.values()}))
    wanted = "\n".join(f"{name}\t{int(must)}" for name, must in imports)
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _CHILD, front, wanted],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        return {"loaded": {}, "errors": {"<interpreter>": proc.stderr.strip()[-400:]}, "base": []}
    loaded: dict[str, str] = {}
    errors: dict[str, str] = {}
    base: list[str] = []
    for line in proc.stdout.splitlines():
        tag, _, rest = line.partition("\t")
        if tag == "L":
            name, _, kind = rest.partition("\t")
            loaded[name] = kind
        elif tag == "E":
            name, _, text = rest.partition("\t")
            errors[name] = text
        elif tag == "B":
            base.append(rest)
    return {"loaded": loaded, "errors": errors, "base": base}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def own_graph(
    start: Iterable[str], roots: dict[str, Path], repo: Path
) -> tuple[dict[str, list[Import]], list[str], list[str]]:
    """Our modules reachable from `start`: (imports per module, mandatory, optional-only).

    A module reached only through imports inside try/except ImportError (an
    accelerator's adapter, e.g. the `cryptography` backend) is optional: the
    device runs without it.
    """
    scans: dict[str, list[Import]] = {}
    found: dict[bool, list[str]] = {True: [], False: []}
    for mandatory_only in (True, False):
        queue = list(dict.fromkeys(start))
        seen = set(queue)
        while queue:
            module = queue.pop(0)
            path = module_file(module, roots)
            if path is None:
                continue
            found[mandatory_only].append(module)
            if module not in scans:
                scans[module] = scan_imports(module, path, repo)
            targets = [(p, False) for p in _parents(module)]
            targets += [(i.name, i.optional) for i in scans[module]]
            for name, optional in targets:
                if name.split(".")[0] not in roots or (mandatory_only and optional):
                    continue
                if name not in seen and module_file(name, roots) is not None:
                    seen.add(name)
                    queue.append(name)
    mandatory = found[True]
    optional_only = [m for m in found[False] if m not in set(mandatory)]
    return scans, mandatory, optional_only


def compute(
    start: Iterable[str],
    roots: dict[str, Path] | None = None,
    host_only: tuple[str, ...] = HOST_ONLY,
    repo: Path = REPO,
) -> Closure:
    """The closure of `start` (our module names): each mandatory module imported in its own child."""
    roots = roots or SOURCES
    closure = Closure()
    scans, mandatory, optional_only = own_graph(start, roots, repo)
    closure.own_modules = mandatory
    closure.optional_modules = optional_only
    for module in mandatory + optional_only:
        for imp in scans[module]:
            if host_only and imp.name.startswith(host_only) and not module.startswith(host_only):
                closure.host_only.append(imp)
            top = imp.name.split(".")[0]
            if top in roots or is_stdlib(imp.name) or imp.maybe_attr:
                continue
            if imp.optional or module in optional_only:
                closure.optional_third_party.add(top)
            else:
                closure.mandatory_third_party.append(imp)
    for module in mandatory:
        imports = scans[module]
        wanted = [(module, True)]
        # lazy stdlib imports; `from x import y` with y an attribute may fail quietly
        wanted += [(i.name, False) for i in imports if is_stdlib(i.name)]
        result = import_in_child(wanted, roots)
        errors: dict[str, str] = result["errors"]  # type: ignore[assignment]
        closure.errors.update(errors)
        loaded: dict[str, str] = result["loaded"]  # type: ignore[assignment]
        direct = {i.name for i in imports if is_stdlib(i.name)}
        for name, kind in loaded.items():
            if not is_stdlib(name):
                continue
            closure.kinds[name] = kind
            how = "imports" if name in direct else "through its imports"
            if closure.stdlib.setdefault(name, {}).get(module) != "imports":
                closure.stdlib[name][module] = how
        # stdlib names this interpreter cannot import (new in 3.14): mapped by name
        startup = set(result["base"])  # type: ignore[arg-type]
        for imp in imports:
            if imp.name in startup:
                continue  # loaded by a bare interpreter: python3-core
            if is_stdlib(imp.name) and not imp.maybe_attr and imp.name not in loaded:
                closure.kinds.setdefault(imp.name, None)
                closure.stdlib.setdefault(imp.name, {})[module] = "imports"
    return closure


@cache
def agent_closure() -> Closure:
    """Every module of the agent, and the parts of pyupdate_artifact it reaches."""
    return compute(own_modules("pyupdate_agent"))


@cache
def host_tool_closure() -> Closure:
    """pyupdate-artifact and pyupdate-image as the build host runs them (pyupdate_host,
    and the reader it reaches)."""
    return compute(own_modules("pyupdate_host"), host_only=())
