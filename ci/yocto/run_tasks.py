"""Run meta-pyupdate's recorded tasks with host tools, and assemble the disk from its wks.

    ci/yocto/run_tasks.py WORK [--machine qemux86-64] [--wic PATH]

Reads tests/integrations/data/yocto-expanded/<machine>.json (ci/yocto/expand.py)
and runs, in the order bitbake would, every task part and function the layer
defines: u-boot's do_compile/do_deploy appends (board config, boot.scr, the
two env images), libubootenv's do_install append (fw_env.config), the agent's
do_install append (unit, config, state dir), pyupdate-state-scripts' do_install
append, the image's rootfs postprocess commands and IMAGE_CMD:pyupdate (the
artifact). Host tools stand in for the native ones: pyupdate-image and
pyupdate-artifact from this repo's venv, Debian's mkimage, mkenvimage, mkfs.

What the layer does not make comes from stand-ins, each named in STAND_INS:
the rootfs contents (the Debian tree the QEMU scenarios use), the kernel and
its initramfs, U-Boot itself (Debian's u-boot-qemu), the agent's Python
package, and oe-core's ext4 image command. The disk is assembled from the
recorded wks by oe-core's wic when --wic is given, else by wks.py.

A task that fails is a layer defect: LayerDefect carries one line naming the
recipe, the task part and the layer file it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "qemu"))

import images  # noqa: E402
import record  # noqa: E402
import wks  # noqa: E402

# What the runner supplies because the layer does not make it (docs/yocto.md,
# "How the layer is tested"). Everything else in the image comes from the layer.
STAND_INS = {
    "rootfs": "Debian bookworm tree of the QEMU scenarios (ci/qemu/inputs.py), not oe-core packages",
    "kernel": "Debian's cloud kernel as /boot/${KERNEL_IMAGETYPE}, with the scenarios' initramfs",
    "initrd": "the board config the layer writes gets kernel.initrd: Debian's kernel has virtio as modules",
    "u-boot": "Debian's u-boot-qemu binary deployed as ${UBOOT_BINARY} (U-Boot is not compiled)",
    "agent": "the agent and artifact wheels installed into D (python_pep517's do_install)",
    "ext4": "oe-core's IMAGE_CMD:ext4: mkfs.ext4 -d IMAGE_ROOTFS at IMAGE_ROOTFS_SIZE",
    "packages": "each recipe's D copied into IMAGE_ROOTFS (do_package/do_rootfs), systemd units enabled",
}
UBOOT_BINARIES = {
    "qemux86-64": "/usr/lib/u-boot/qemu-x86/u-boot.rom",
    "qemuarm64": "/usr/lib/u-boot/qemu_arm64/u-boot.bin",
}
DEBIAN_ARCH = {"qemux86-64": "amd64", "qemuarm64": "arm64"}
# bitbake's logging functions, as a task's run script has them (logging.bbclass).
_PREAMBLE = """\
bbnote() { echo "NOTE: $*"; }
bbwarn() { echo "WARNING: $*" >&2; }
bbdebug() { :; }
bberror() { echo "ERROR: $*" >&2; }
bbfatal() { echo "ERROR: $*" >&2; exit 1; }
bbfatal_log() { bbfatal "$@"; }
"""


class LayerDefect(Exception):
    """A layer task failed or produced what the device cannot use: one line."""


@dataclass(frozen=True, slots=True)
class Outputs:
    """Args: disk (wic or wks.py), artifacts (build -> .mender), rootfs (IMAGE_ROOTFS of
    release-1), deploy (DEPLOY_DIR_IMAGE), wks (the expanded wks file), defects (one line each)."""

    disk: Path
    artifacts: dict[str, Path]
    rootfs: Path
    deploy: Path
    wks: Path
    defects: tuple[str, ...]


class StandInData:
    """The datastore a layer python function sees: the recorded values, nothing else."""

    def __init__(self, values: dict[str, str | None], where: str) -> None:
        self.values, self.where = values, where

    def getVar(self, name: str, expand: bool = True) -> str | None:
        if name not in self.values:
            raise LayerDefect(f"{self.where}: reads {name}, which the record lacks: {record.STALE}")
        return self.values[name]

    def expand(self, text: str) -> str:
        return text


class Runner:
    def __init__(self, work: Path, data: dict[str, Any]) -> None:
        self.work = work.resolve()
        self.build_dir = self.work / "build"
        self.data = data
        self.machine = data["machine"]
        self.defects: list[str] = []
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:/usr/local/sbin:/usr/sbin:/sbin:{os.environ['PATH']}",
        }

    def local(self, value: Any) -> Any:
        return record.relocate(
            value,
            {
                "@@BUILDDIR@@": str(self.build_dir),
                "@@REPO@@": str(REPO),
                "@@TESTLAYER@@": str(self.work / "testlayer"),
            },
        )

    # --- one function ---------------------------------------------------------

    def shell(self, where: str, body: str, cwd: str) -> None:
        Path(cwd).mkdir(parents=True, exist_ok=True)
        script = _PREAMBLE + "set -e\n" + self.local(body)
        done = subprocess.run(
            ["sh", "-c", script], cwd=cwd, env=self.env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
            raise LayerDefect(f"{where}: {lines[-1].strip()}")

    def python(self, where: str, func: dict[str, Any]) -> None:
        lib = str(REPO / "meta-pyupdate/lib")
        if lib not in sys.path:
            sys.path.insert(0, lib)  # addpylib
        d = StandInData(self.local(func["vars"]), where)
        scope: dict[str, Any] = {"os": os}
        exec(compile(f"def {func['name']}(d):\n{func['python']}", where, "exec"), scope)
        try:
            scope[func["name"]](d)
        except LayerDefect:
            raise
        except Exception as exc:  # the layer's python, as bitbake would report it
            raise LayerDefect(f"{where}: {type(exc).__name__}: {exc}") from None

    def task(self, pn: str, task: dict[str, Any], before_parts: Any = None) -> None:
        # bitbake creates a task's [dirs] (B under WORKDIR) before its prefuncs run
        Path(self.local(task["cwd"])).mkdir(parents=True, exist_ok=True)
        for func in task["prefuncs"]:
            where = f"{pn}:{task['task']}[prefuncs] {func['name']}"
            if "python" in func:
                self.python(where, func)
            else:
                self.shell(where, func["shell"], self.local(task["cwd"]))
        if before_parts:
            before_parts()
        for part in task["parts"]:
            src = part["from"].replace("@@REPO@@/", "").replace("@@TESTLAYER@@/", "test layer: ")
            self.shell(
                f"{pn}:{task['task']}{part['op']} ({src})", part["body"], self.local(task["cwd"])
            )

    def try_task(self, pn: str, task: dict[str, Any], before_parts: Any = None) -> bool:
        """Run a task; a failure is recorded as a defect and the build goes on without it."""
        try:
            self.task(pn, task, before_parts)
        except LayerDefect as exc:
            self.defects.append(str(exc))
            return False
        return True


def _stand_in_initrd(board_file: Path) -> None:
    """STAND_INS["initrd"]: the one edit of a layer output; nothing else in the board changes."""
    board = json.loads(board_file.read_text())
    board["kernel"]["initrd"] = "/boot/initrd.img"
    board_file.write_text(json.dumps(board, indent=2) + "\n")


def _copy_tree(src: Path, dst: Path) -> None:
    if src.is_dir():
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--no-target-directory", str(src), str(dst)], check=True)


def _wheels(work: Path) -> list[Path]:
    out = work / "wheels"
    return sorted(out.glob("*.whl")) if out.is_dir() else images.agent_wheels(out)


def _install_python_package(d: Path, wheels: list[Path]) -> None:
    """STAND_INS["agent"]: what python_pep517_do_install leaves in D, for Debian's python3."""
    site = d / "usr/lib/python3/dist-packages"
    images.pip_target(site, wheels)
    shutil.rmtree(site / "bin", ignore_errors=True)
    (d / "usr/bin").mkdir(parents=True, exist_ok=True)
    for name, module in (("pyupdate", "pyupdate_agent.cli"),):
        script = d / "usr/bin" / name
        script.write_text(
            f"#!/usr/bin/python3\nimport sys\nfrom {module} import main\nsys.exit(main())\n"
        )
        script.chmod(0o755)


def _enable_units(rootfs: Path, d: Path, services: str, auto: str | None) -> None:
    """systemd.bbclass's postinst: `systemctl enable` each SYSTEMD_SERVICE when auto-enabled."""
    if auto != "enable":
        return
    for service in services.split():
        unit = d / "usr/lib/systemd/system" / service
        wanted = [
            line.split("=", 1)[1].strip()
            for line in unit.read_text().splitlines()
            if line.startswith("WantedBy=")
        ]
        for target in wanted:
            wants = rootfs / "etc/systemd/system" / f"{target}.wants"
            wants.mkdir(parents=True, exist_ok=True)
            (wants / service).unlink(missing_ok=True)
            (wants / service).symlink_to(f"/usr/lib/systemd/system/{service}")


def _check_device_side(rootfs: Path, defects: list[str]) -> None:
    """What the agent needs from the image at run time, read with the agent's own rules."""
    conf = rootfs / "etc/pyupdate/pyupdate.conf"
    enabled = rootfs / "etc/systemd/system/multi-user.target.wants/pyupdate.service"
    if (
        enabled.is_symlink()
        and conf.is_file()
        and not json.loads(conf.read_text()).get("ServerURL")
    ):
        defects.append(
            "pyupdate-agent: pyupdate.service is enabled but pyupdate.conf has no ServerURL: the daemon exits and restarts every 10 s"
        )
    scripts = rootfs / "etc/pyupdate/scripts"
    if scripts.is_dir() and any(scripts.iterdir()) and not (scripts / "version").is_file():
        defects.append(
            "pyupdate-state-scripts: /etc/pyupdate/scripts has scripts but no `version` file: the agent refuses them"
        )
    fstab = (rootfs / "etc/fstab").read_text() if (rootfs / "etc/fstab").is_file() else ""
    for mount in ("/boot/uboot", "/data"):
        if not any(
            line.split()[1:2] == [mount] for line in fstab.splitlines() if not line.startswith("#")
        ):
            defects.append(
                f"pyupdate-image-minimal: the rootfs /etc/fstab (the artifact's) has no {mount} line: an updated slot cannot reach it"
            )


def build(
    work: Path, data: dict[str, Any], stand_in: dict[str, Path], wic: Path | None = None
) -> Outputs:
    """Run every recorded layer task; stand_in: rootfs_tar, kernel, initrd (Debian)."""
    r = Runner(work, data)
    builds = data["builds"]
    recipes = r.local(builds["release-1"])
    deploy = Path(recipes["pyupdate-image-minimal"]["vars"]["DEPLOY_DIR_IMAGE"])
    deploy.mkdir(parents=True, exist_ok=True)

    # u-boot: Debian's binary where u-boot's own do_deploy would put it, then the layer's parts.
    ub = recipes["u-boot"]
    shutil.copy2(UBOOT_BINARIES[r.machine], deploy / ub["vars"]["UBOOT_BINARY"])
    board_file = Path(ub["vars"]["WORKDIR"]) / "pyupdate-board.json"
    compile_task, deploy_task = ub["tasks"]
    if r.try_task("u-boot", compile_task, before_parts=lambda: _stand_in_initrd(board_file)):
        deploydir = Path(ub["vars"]["DEPLOYDIR"])
        deploydir.mkdir(parents=True, exist_ok=True)
        if r.try_task("u-boot", deploy_task):
            _copy_tree(deploydir, deploy)  # sstate's do_deploy: DEPLOYDIR -> DEPLOY_DIR_IMAGE

    # the packages whose D the layer fills
    env = recipes["libubootenv"]
    r.try_task("libubootenv", env["tasks"][0])
    agent = recipes["pyupdate-agent"]
    agent_d = Path(agent["vars"]["D"])
    shutil.rmtree(agent_d, ignore_errors=True)
    _copy_tree(
        REPO / "agent", Path(agent["vars"]["UNPACKDIR"]) / "agent"
    )  # do_unpack of file://agent
    _install_python_package(agent_d, _wheels(r.work))
    r.try_task("pyupdate-agent", agent["tasks"][0])
    scripts = recipes["pyupdate-state-scripts-test"]
    unpack = Path(scripts["vars"]["UNPACKDIR"])
    unpack.mkdir(parents=True, exist_ok=True)
    for name, text in scripts["state_scripts"].items():
        (unpack / name).write_text(text)
    r.try_task("pyupdate-state-scripts-test", scripts["tasks"][0])

    artifacts: dict[str, Path] = {}
    rootfs1 = None
    # release-1 last: the builds share IMAGE_ROOTFS, and the disk is made from release-1's
    for name in sorted(builds, key=lambda n: n == "release-1"):
        image = r.local(builds[name])["pyupdate-image-minimal"]
        rootfs = Path(image["vars"]["IMAGE_ROOTFS"])
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.mkdir(parents=True)
        subprocess.run(
            ["tar", "-x", "--numeric-owner", "-f", str(stand_in["rootfs_tar"]), "-C", str(rootfs)],
            check=True,
        )
        shutil.copy2(stand_in["kernel"], rootfs / "boot" / image["vars"]["KERNEL_IMAGETYPE"])
        shutil.copy2(stand_in["initrd"], rootfs / "boot/initrd.img")
        for pn in ("libubootenv", "pyupdate-agent", "pyupdate-state-scripts-test"):
            _copy_tree(Path(recipes[pn]["vars"]["D"]), rootfs)
        _enable_units(
            rootfs,
            agent_d,
            agent["vars"]["SYSTEMD_SERVICE:pyupdate-agent"] or "",
            # systemd.bbclass: the per-package value wins over the recipe-wide one
            agent["vars"].get("SYSTEMD_AUTO_ENABLE:pyupdate-agent")
            or agent["vars"]["SYSTEMD_AUTO_ENABLE"],
        )
        for func in image["rootfs_postprocess"]:
            where = f"pyupdate-image-minimal:ROOTFS_POSTPROCESS_COMMAND {func['name']}"
            try:
                r.python(where, func) if "python" in func else r.shell(
                    where, func["shell"], str(rootfs)
                )
            except LayerDefect as exc:
                r.defects.append(str(exc))
        if name == "broken":
            # The initramfs finds no init, exits, the kernel panics: a release that never boots.
            for path in ("sbin/init", "lib/systemd/systemd"):
                (rootfs / path).unlink(missing_ok=True)
        else:
            _check_device_side(rootfs, r.defects if name == "release-1" else [])
        # Each build overwrites the last one's deploy files, as three builds in one
        # build dir would: keep each artifact under its build's name.
        artifacts[name] = r.work / "artifacts" / f"{name}.mender"
        artifacts[name].parent.mkdir(exist_ok=True)
        shutil.copy2(_image_cmds(r, image), artifacts[name])
        if name == "release-1":
            rootfs1 = rootfs

    assert rootfs1 is not None
    image = recipes["pyupdate-image-minimal"]
    wks_file = Path(image["vars"]["WORKDIR"]) / Path(image["vars"]["WKS_FULL_PATH"]).name
    wks_file.write_text(image["wks"])
    disk = work / "disk.img"
    extra = (image["vars"].get("WIC_CREATE_EXTRA_ARGS") or "").split()
    if wic is not None:
        wks.assemble_with_wic(wic, wks_file, image["vars"], rootfs1, deploy, disk, r.env, extra)
    else:
        layout = wks.parse(image["wks"])
        boot_files = image["vars"]["IMAGE_BOOT_FILES"]
        wks.assemble(layout, rootfs1, deploy, boot_files, disk, "--no-fstab-update" not in extra)
    return Outputs(disk, artifacts, rootfs1, deploy, wks_file, tuple(dict.fromkeys(r.defects)))


def _image_cmds(r: Runner, image: dict[str, Any]) -> Path:
    """STAND_INS["ext4"], then the layer's IMAGE_CMD:pyupdate; returns the artifact."""
    v = image["vars"]
    imgdeploy = Path(v["IMGDEPLOYDIR"])
    imgdeploy.mkdir(parents=True, exist_ok=True)
    ext4 = imgdeploy / f"{v['IMAGE_NAME']}.ext4"
    ext4.unlink(missing_ok=True)
    extra = (v.get("EXTRA_IMAGECMD:ext4") or "").split()
    subprocess.run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            *extra,
            "-d",
            v["IMAGE_ROOTFS"],
            str(ext4),
            f"{v['IMAGE_ROOTFS_SIZE']}k",
        ],
        check=True,
        env=r.env,
        capture_output=True,
    )
    r.shell(
        "pyupdate-image-minimal:IMAGE_CMD:pyupdate (meta-pyupdate/classes/pyupdate-artifact.bbclass)",
        image["image_cmd"]["pyupdate"],
        str(imgdeploy),
    )
    return imgdeploy / f"{v['IMAGE_NAME']}.mender"


def wic_script(snap: Path) -> Path | None:
    """oe-core's wic: in-tree before wrynose moved it out (scripts/wic), else the last
    in-tree copy unpacked beside the snapshots as wic/scripts/wic (docs/yocto.md)."""
    for path in (snap / "openembedded-core/scripts/wic", snap / "wic/scripts/wic"):
        if path.is_file():
            return path
    return None


def stand_in_inputs(machine: str) -> dict[str, Path]:
    import inputs

    arch = DEBIAN_ARCH[machine]
    return {
        "rootfs_tar": inputs.rootfs_tar(arch),
        "kernel": inputs.kernel_image(arch),
        "initrd": inputs.initramfs(arch),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path)
    p.add_argument("--machine", default="qemux86-64", choices=sorted(DEBIAN_ARCH))
    p.add_argument("--wic", type=Path, help="oe-core's scripts/wic; default: ci/yocto/wks.py")
    args = p.parse_args(argv)
    data = record.load(args.machine)
    if record.stale(data):
        print(f"error: {record.STALE}", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        out = build(args.work, data, stand_in_inputs(args.machine), args.wic)
    except LayerDefect as exc:
        print(f"layer defect: {exc}", file=sys.stderr)
        return 1
    for line in out.defects:
        print(f"layer defect: {line}")
    print(out.disk)
    for name, path in out.artifacts.items():
        print(f"{name}: {path}")
    return 1 if out.defects else 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        sys.exit(main())
