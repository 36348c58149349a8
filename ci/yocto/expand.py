"""Expand meta-pyupdate's tasks with bitbake's tinfoil API and record them for the runner.

    ci/yocto/expand.py SNAPSHOT_DIR [--machine qemux86-64 ...] [--out DIR]

SNAPSHOT_DIR holds bitbake/ and openembedded-core/ (the commits kas.yml pins),
never fetched by this script. For each machine it parses, with their bbappends
applied, the recipes the layer adds or appends (pyupdate-agent,
pyupdate-image-minimal, a throw-away recipe that inherits
pyupdate-state-scripts, oe-core's u-boot and libubootenv), as a build with
`INHERIT += "pyupdate-full"` and systemd would, and writes
<out>/<machine>.json: the bodies of the task parts and functions the layer
defines (expanded as bitbake expands them when it writes a task's run script),
the variables the layer's python functions read, the expanded wks, and a
sha256 over the layer's files. ci/yocto/run_tasks.py runs that record;
tests/integrations/test_yocto_expanded.py fails when the layer changed since.

bitbake refuses root: as root, the parse runs as $BB_USER (default bbuser),
which must be able to read the repo and the snapshots.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import record  # noqa: E402

MACHINES = ("qemux86-64", "qemuarm64")
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
# The three builds the QEMU scenario needs: the image on the disk, a second
# release, a release that never boots. Only the artifact name differs, set in
# local.conf as a user would for a new release.
BUILDS = {
    "release-1": "",
    "release-2": "pyupdate-image-minimal-release-2",
    "broken": "pyupdate-image-minimal-broken",
}
# What the test recipe for pyupdate-state-scripts.bbclass ships.
STATE_SCRIPT = "ArtifactInstall_Leave_50_yocto-test"


def _local_conf(machine: str, artifact_name: str) -> str:
    # ci/check-layers.sh's bb_setup, plus a fixed build date: IMAGE_NAME carries
    # ${DATETIME}, which would change the record on every run.
    lines = [
        f'MACHINE = "{machine}"',
        'BB_NO_NETWORK = "1"',
        'INIT_MANAGER = "systemd"',
        'INHERIT += "pyupdate-full"',
        f'DATETIME = "{record.DATETIME}"',
    ]
    if artifact_name:
        lines.append(f'PYUPDATE_ARTIFACT_NAME = "{artifact_name}"')
    return "\n".join(lines) + "\n"


def _test_layer(top: Path) -> Path:
    """A throw-away layer with a recipe that inherits pyupdate-state-scripts: no
    recipe of meta-pyupdate does, and the class's do_install must still run."""
    layer = top / "meta-pyupdate-test"
    recipe = layer / "recipes-test/pyupdate-state-scripts-test"
    (recipe / "files").mkdir(parents=True)
    (layer / "conf").mkdir()
    (layer / "conf/layer.conf").write_text(
        'BBPATH .= ":${LAYERDIR}"\nBBFILES += "${LAYERDIR}/recipes-*/*/*.bb"\n'
        'BBFILE_COLLECTIONS += "pyupdate-test"\nBBFILE_PATTERN_pyupdate-test = "^${LAYERDIR}/"\n'
        'LAYERSERIES_COMPAT_pyupdate-test = "wrynose"\n'
    )
    (recipe / "files" / STATE_SCRIPT).write_text("#!/bin/sh\necho yocto-test state script\n")
    (recipe / "pyupdate-state-scripts-test_1.0.bb").write_text(
        'SUMMARY = "A state script shipped through pyupdate-state-scripts.bbclass"\n'
        'LICENSE = "MIT"\nLIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;'
        'md5=0835ade698e0bcf8506ecda2f7b4f302"\n'
        "inherit pyupdate-state-scripts\n"
        f'SRC_URI = "file://{STATE_SCRIPT}"\nPYUPDATE_STATE_SCRIPTS = "{STATE_SCRIPT}"\n'
    )
    return layer


def _write_conf(build: Path, snap: Path, test_layer: Path, conf: str) -> None:
    (build / "conf").mkdir(parents=True, exist_ok=True)
    (build / "conf/local.conf").write_text(conf)
    (build / "conf/bblayers.conf").write_text(
        'BBPATH = "${TOPDIR}"\nBBFILES ?= ""\n'
        f'BBLAYERS = "{snap}/openembedded-core/meta {SRC}/meta-pyupdate {test_layer}"\n'
    )


# --- inside bitbake (runs as the unprivileged user) --------------------------


# The checkout being expanded: this one, or a `git archive` of a revision (--rev).
SRC = REPO
TEST_LAYER = REPO


def _in_layer(path: str) -> bool:
    return path.startswith(str(SRC / "meta-pyupdate") + "/") or "/meta-pyupdate-test/" in path


def _active(op: str, overrides: set[str]) -> bool:
    """`:append[class-target]` is active when class-target is an override in force."""
    m = re.search(r"\[([^\]]*)\]", op)
    return m is None or all(o in overrides for o in m.group(1).split(":"))


_LAYER_TEXT: dict[str, str] = {}


def _layer_file_of(text: str) -> str | None:
    """The layer file a function body was written in. bitbake's history names its
    own parser (ast.py) as the origin of function bodies, so match the text."""
    if not _LAYER_TEXT:
        for root in (SRC / "meta-pyupdate", TEST_LAYER):
            for path in root.rglob("*"):
                if path.suffix in (".bb", ".bbappend", ".bbclass", ".inc"):
                    _LAYER_TEXT[str(path)] = path.read_text()
    needle = text.strip()
    return next((f for f, body in _LAYER_TEXT.items() if needle and needle in body), None)


def _layer_parts(d: Any, var: str) -> list[dict[str, str]]:
    """The :append/:prepend parts of `var` that come from the layer, expanded, in order."""
    overrides = set((d.getVar("OVERRIDES") or "").split(":"))
    parts = []
    for entry in d.varhistory.variable(var):
        op = entry.get("op", "")
        if entry.get("flag") or not ("append" in op or "prepend" in op):
            continue
        where = _layer_file_of(str(entry.get("detail", "")))
        if where and _active(op, overrides):
            parts.append({"op": op, "from": where, "body": d.expand(entry["detail"])})
    return parts


def _defined_in_layer(d: Any, name: str) -> str | None:
    where = d.getVarFlag(name, "filename") or ""
    return where if _in_layer(where) else None


_LIB_VARS = re.compile(r"""\b(?:var|getvar|getVar)\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def _python_vars(d: Any, body: str) -> dict[str, str | None]:
    """What a python function of the layer can read: every PYUPDATE_* variable,
    the names its body and the layer's lib/ ask for by name. The runner's
    stand-in datastore refuses any other name, so a new one shows up as a
    stale record, not as a silently empty value."""
    names = {k for k in d.keys() if k.startswith("PYUPDATE_")}  # noqa: SIM118 (a remote datastore)
    names |= set(_LIB_VARS.findall(body))
    for py in (SRC / "meta-pyupdate/lib").rglob("*.py"):
        names |= set(_LIB_VARS.findall(py.read_text()))
    return {n: d.getVar(n) for n in sorted(names)}


def _python_func(d: Any, name: str) -> dict[str, Any]:
    body = d.getVar(name, False) or ""
    return {"name": name, "python": body, "vars": _python_vars(d, body)}


def _shell_or_python(d: Any, name: str) -> dict[str, Any]:
    where = _defined_in_layer(d, name)
    if d.getVarFlag(name, "python"):
        return {**_python_func(d, name), "from": where}
    return {"name": name, "from": where, "shell": d.getVar(name) or ""}


def _task(d: Any, task: str, var: str | None = None) -> dict[str, Any]:
    """A task's layer parts, the layer's prefuncs, and the directory it runs in."""
    var = var or task
    dirs = (d.getVarFlag(task, "dirs", True) or "").split()
    prefuncs = [
        _shell_or_python(d, f)
        for f in (d.getVarFlag(task, "prefuncs", True) or "").split()
        if _defined_in_layer(d, f)
    ]
    return {
        "task": task,
        "cwd": dirs[-1] if dirs else d.getVar("B"),
        "prefuncs": prefuncs,
        "parts": _layer_parts(d, var),
    }


def _recipe_vars(d: Any, names: list[str]) -> dict[str, str | None]:
    return {n: d.getVar(n) for n in names}


_COMMON = ["PN", "WORKDIR", "D", "B", "S", "UNPACKDIR", "TARGET_ARCH", "MACHINE"]


def _expand_recipes(tinfoil: Any, snap: Path, test_layer: Path, full: bool) -> dict[str, Any]:
    meta = snap / "openembedded-core/meta"
    layer = SRC / "meta-pyupdate"
    uboot = sorted((meta / "recipes-bsp/u-boot").glob("u-boot_*.bb"))[-1]
    libubootenv = sorted((meta / "recipes-bsp/u-boot").glob("libubootenv_*.bb"))
    libubootenv += sorted(meta.glob("recipes-*/libubootenv/libubootenv_*.bb"))
    recipes: dict[str, Any] = {}

    def parse(fn: Path, appends: list[Path]) -> Any:
        return tinfoil.parse_recipe_file(str(fn), appendlist=[str(a) for a in appends] or None)

    image = parse(layer / "recipes-core/images/pyupdate-image-minimal.bb", [])
    post = []
    for fn in (image.getVar("ROOTFS_POSTPROCESS_COMMAND") or "").replace(";", " ").split():
        if _defined_in_layer(image, fn):
            post.append(_shell_or_python(image, fn))
    template = image.getVar("_WKS_TEMPLATE") or ""
    # oe-core's do_write_wks_template drops references left unexpanded
    while (stripped := re.sub(r"\${[^{}@\n\t :]+}", "", template)) != template:
        template = stripped
    recipes["pyupdate-image-minimal"] = {
        "file": str(layer / "recipes-core/images/pyupdate-image-minimal.bb"),
        "rootfs_postprocess": post,
        "image_cmd": {t: image.getVar(f"IMAGE_CMD:{t}") for t in ("pyupdate",)},
        "wks": template,
        "vars": _recipe_vars(
            image,
            [
                *_COMMON,
                "IMAGE_ROOTFS",
                "IMGDEPLOYDIR",
                "DEPLOY_DIR_IMAGE",
                "IMAGE_NAME",
                "IMAGE_LINK_NAME",
                "IMAGE_BASENAME",
                "IMAGE_FSTYPES",
                "IMAGE_BOOT_FILES",
                "IMAGE_ROOTFS_SIZE",
                "IMAGE_ROOTFS_EXTRA_SPACE",
                "IMAGE_OVERHEAD_FACTOR",
                "EXTRA_IMAGECMD:ext4",
                "IMAGE_INSTALL",
                "WKS_FILE",
                "WKS_FULL_PATH",
                "WIC_CREATE_EXTRA_ARGS",
                "KERNEL_IMAGETYPE",
                "PYUPDATE_ARTIFACT_NAME",
            ],
        ),
    }
    if not full:
        return recipes

    agent = parse(layer / "recipes-pyupdate/pyupdate-agent/pyupdate-agent_0.1.0.bb", [])
    recipes["pyupdate-agent"] = {
        "file": agent.getVar("FILE"),
        "tasks": [_task(agent, "do_install")],
        "vars": _recipe_vars(
            agent,
            [
                *_COMMON,
                "SRC_URI",
                "SYSTEMD_SERVICE:pyupdate-agent",
                "SYSTEMD_AUTO_ENABLE",
                "SYSTEMD_AUTO_ENABLE:pyupdate-agent",
                "RDEPENDS:pyupdate-agent",
                "FILES:pyupdate-agent",
            ],
        ),
    }
    appends_uboot = sorted((layer / "recipes-bsp/u-boot").glob("*.bbappend"))
    ub = parse(uboot, appends_uboot)
    recipes["u-boot"] = {
        "file": str(uboot),
        "appends": [str(a) for a in appends_uboot],
        "tasks": [_task(ub, "do_compile"), _task(ub, "do_deploy")],
        "vars": _recipe_vars(
            ub, [*_COMMON, "DEPLOYDIR", "UBOOT_MACHINE", "UBOOT_BINARY", "SRC_URI", "UBOOT_ARCH"]
        ),
    }
    appends_env = sorted((layer / "recipes-bsp/libubootenv").glob("*.bbappend"))
    env = parse(libubootenv[-1], appends_env)
    recipes["libubootenv"] = {
        "file": str(libubootenv[-1]),
        "appends": [str(a) for a in appends_env],
        "tasks": [_task(env, "do_install")],
        "vars": _recipe_vars(env, [*_COMMON, "FILES:libubootenv-bin", "UBOOT_ARCH"]),
    }
    scripts_fn = (
        test_layer / "recipes-test/pyupdate-state-scripts-test/pyupdate-state-scripts-test_1.0.bb"
    )
    scripts = parse(scripts_fn, [])
    recipes["pyupdate-state-scripts-test"] = {
        "file": str(scripts_fn),
        "tasks": [_task(scripts, "do_install")],
        "state_scripts": {STATE_SCRIPT: (scripts_fn.parent / "files" / STATE_SCRIPT).read_text()},
        "vars": _recipe_vars(
            scripts, [*_COMMON, "PYUPDATE_STATE_SCRIPTS", "FILES:pyupdate-state-scripts-test"]
        ),
    }
    return recipes


def _inside(snap: Path, machine: str, top: Path, src: Path) -> dict[str, Any]:
    """Run inside an unprivileged process: one config parse per build, recipes parsed."""
    global SRC, TEST_LAYER
    SRC = src
    sys.path.insert(0, str(snap / "bitbake/lib"))
    import bb.tinfoil

    test_layer = TEST_LAYER = _test_layer(top)
    builds: dict[str, Any] = {}
    for build, name in BUILDS.items():
        build_dir = top / f"build-{build}"
        _write_conf(build_dir, snap, test_layer, _local_conf(machine, name))
        os.chdir(build_dir)
        os.environ["BBPATH"] = str(build_dir)
        os.environ["BUILDDIR"] = str(build_dir)
        with bb.tinfoil.Tinfoil(tracking=True, output=sys.stderr) as tinfoil:
            tinfoil.prepare(config_only=True)
            recipes = _expand_recipes(tinfoil, snap, test_layer, full=build == "release-1")
        builds[build] = record.relocate(
            recipes,
            {
                str(SRC): "@@REPO@@",
                str(snap): "@@SNAPSHOT@@",
                str(test_layer): "@@TESTLAYER@@",
                str(build_dir): "@@BUILDDIR@@",
            },
        )
    return {
        "format": record.FORMAT,
        "machine": machine,
        "layer_sha256": record.layer_sha256(SRC / "meta-pyupdate"),
        "local_conf": _local_conf(machine, ""),
        "builds": builds,
    }


# --- outside (as root or the user) -------------------------------------------


def _as_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", os.environ.get("BB_USER", "bbuser"), "--", *argv]


def _checkout(rev: str | None, top: Path) -> Path:
    """The tree to expand: the work tree, or `rev` of it (the layer as committed,
    while someone else's edits to it are still in the work tree)."""
    if rev is None:
        return REPO
    src = top / "src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "meta-pyupdate", "agent", "artifact_tool"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return src


def expand(snap: Path, machine: str, rev: str | None = None) -> dict[str, Any]:
    top = Path(tempfile.mkdtemp(prefix="pyupdate-expand-"))
    try:
        src = _checkout(rev, top)
        if os.geteuid() == 0:
            subprocess.run(
                ["chown", "-R", os.environ.get("BB_USER", "bbuser"), str(top)], check=True
            )
        # The system python3: the user bitbake runs as cannot reach a venv under
        # root's home, and bitbake wants nothing but the standard library.
        env = {**os.environ, "LANG": "en_US.UTF-8", "LC_ALL": "en_US.UTF-8", "PATH": SYSTEM_PATH}
        done = subprocess.run(
            _as_user(
                [
                    "python3",
                    __file__,
                    "--inside",
                    str(top),
                    "--src",
                    str(src),
                    str(snap),
                    "--machine",
                    machine,
                ]
            ),
            env=env,
            cwd=top,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise SystemExit(f"error: bitbake expansion for {machine} failed: {' | '.join(tail)}")
        return json.loads(done.stdout)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("snapshot_dir", type=Path)
    p.add_argument("--machine", action="append", choices=MACHINES)
    p.add_argument("--out", type=Path, default=record.RECORD_DIR)
    p.add_argument("--stdout", action="store_true", help="print the record instead of writing it")
    p.add_argument("--rev", help="expand this git revision of the layer, not the work tree")
    p.add_argument("--inside", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--src", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    snap = args.snapshot_dir.resolve()
    if args.inside:
        json.dump(_inside(snap, args.machine[0], args.inside, args.src), sys.stdout)
        return 0
    for part in ("bitbake/lib/bb/tinfoil.py", "openembedded-core/meta/conf/bitbake.conf"):
        if not (snap / part).is_file():
            print(
                f"error: {snap}: no {part} (SNAPSHOT_DIR holds bitbake/ and openembedded-core/)",
                file=sys.stderr,
            )
            return 2
    for machine in args.machine or ["qemux86-64"]:
        data = expand(snap, machine, args.rev)
        if args.stdout:
            json.dump(data, sys.stdout, indent=1)
            continue
        path = record.write(args.out, data)
        print(f"{path}: {sum(len(b) for b in data['builds'].values())} recipes recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
