"""Build (or reuse) the QEMU test inputs from Debian packages: rootfs tar, kernel, initramfs.

Each input is cached under $PYUPDATE_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/pyupdate)
in a directory named by a hash of everything that went into it, so a second
`make test` reuses it and a changed package list or hook rebuilds it.

    python ci/qemu/inputs.py --arch amd64      # prints the three paths
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUITE = "bookworm"
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
# No python3-cryptography: the agent signs and verifies through libcrypto (ctypes), as
# on a Yocto or Buildroot device, so these boots prove that path.
ROOTFS_PACKAGES = "systemd-sysv,udev,python3,libubootenv-tool,e2fsprogs,util-linux,iproute2,kmod"
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
# Modules the cloud kernel lacks for this machine: virtio disk and net, vfat for
# the env partition. Loaded by the initramfs and kept for the rootfs.
INITRAMFS_MODULES = (
    "virtio_pci",
    "virtio_mmio",
    "virtio_blk",
    "virtio_net",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_iso8859-1",
)
# Where target binaries cannot run on this host (no binfmt_misc for arm64, and
# registering one changes the host kernel), the rootfs is "tiny": Debian's
# packages only unpacked (mmdebstrap's extract variant, no maintainer scripts),
# busybox and a shell script as init instead of systemd (tiny-init.sh).
TINY_ROOTFS_PACKAGES = "busybox-static,python3,libubootenv-tool,util-linux,mount"
TINY_ARCHES = frozenset({"arm64"})
CONSOLE = {"amd64": "ttyS0", "arm64": "ttyAMA0"}
BOARD_ARCH = {"qemu-x86_64": "amd64", "qemu-aarch64": "arm64"}


class InputsError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Inputs:
    rootfs_tar: Path
    kernel: Path
    initramfs: Path


def cache_dir() -> Path:
    if os.environ.get("PYUPDATE_CACHE"):
        return Path(os.environ["PYUPDATE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyupdate"


def _key(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _run(argv: list[str], **kw) -> None:
    done = subprocess.run(argv, capture_output=True, check=False, **kw)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-3:]
        raise InputsError(f"{argv[0]} failed: {' | '.join(tail)}")


def _cached(name: str, key: str, build) -> Path:
    """Return cache/<name>-<key>, building it into a temp dir and renaming on success.
    Two test runs side by side (ci/pytest-split.sh) on an empty cache: the second waits
    on the entry's lock for the first's build instead of building it again."""
    final = cache_dir() / f"{name}-{key}"
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with (final.parent / f".{final.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if final.exists():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
        try:
            build(tmp)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _mmdebstrap(arch: str, variant: str, include: str, out: Path, hooks: list[str]) -> None:
    argv = ["mmdebstrap", f"--variant={variant}", f"--arch={arch}", f"--include={include}"]
    argv += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
    argv += [*hooks, SUITE, str(out), str(SOURCES)]
    _run(argv)


def has_systemd(arch: str) -> bool:
    return arch not in TINY_ARCHES


def rootfs_tar(arch: str) -> Path:
    """minbase + systemd + python3 + libubootenv; serial autologin, no timers (customize-rootfs.sh).

    On TINY_ARCHES: the tiny rootfs instead (tiny_rootfs_tar)."""
    if arch in TINY_ARCHES:
        return tiny_rootfs_tar(arch)
    hook = HERE / "customize-rootfs.sh"
    key = _key(SUITE, arch, ROOTFS_PACKAGES, *DPKG_EXCLUDES, hook.read_bytes())

    def build(tmp: Path) -> None:
        hooks = [f'--customize-hook=sh {hook} "$1" {CONSOLE[arch]}']
        _mmdebstrap(arch, "minbase", ROOTFS_PACKAGES, tmp / "rootfs.tar", hooks)

    return _cached(f"rootfs-{arch}", key, build) / "rootfs.tar"


def tiny_rootfs_tar(arch: str) -> Path:
    """python3, libubootenv, util-linux, busybox: unpacked, never run on the host."""
    hook, init, reboot = (
        HERE / "customize-tiny-rootfs.sh",
        HERE / "tiny-init.sh",
        HERE / "reboot-tiny.sh",
    )
    key = _key(
        SUITE,
        arch,
        TINY_ROOTFS_PACKAGES,
        *DPKG_EXCLUDES,
        hook.read_bytes(),
        init.read_bytes(),
        reboot.read_bytes(),
    )

    def build(tmp: Path) -> None:
        # extract-hook: the extract variant runs no customize hooks.
        hooks = [f'--extract-hook=sh {hook} "$1" {init} {reboot}']
        _mmdebstrap(arch, "extract", TINY_ROOTFS_PACKAGES, tmp / "rootfs.tar", hooks)

    return _cached(f"rootfs-tiny-{arch}", key, build) / "rootfs.tar"


def kernel_tree(arch: str) -> Path:
    """Debian's cloud kernel and busybox-static, unpacked (extract variant: no maintainer scripts)."""
    key = _key(SUITE, arch, "linux-image-cloud", "busybox-static")

    def build(tmp: Path) -> None:
        include = f"linux-image-cloud-{arch},busybox-static"
        _mmdebstrap(arch, "extract", include, tmp / "pkgs.tar", [])
        tree = tmp / "tree"
        tree.mkdir()
        _run(
            [
                "tar",
                "-xf",
                str(tmp / "pkgs.tar"),
                "-C",
                str(tree),
                "./boot",
                "./lib/modules",
                "./bin/busybox",
            ]
        )
        (tmp / "pkgs.tar").unlink()
        version = _kernel_version(tree)
        _run(["depmod", "-b", str(tree), version])

    return _cached(f"kernel-{arch}", key, build) / "tree"


def _kernel_version(tree: Path) -> str:
    versions = sorted(p.name for p in (tree / "lib/modules").iterdir())
    if not versions:
        raise InputsError(f"{tree}: no kernel modules")
    return versions[-1]


def initramfs(arch: str) -> Path:
    tree = kernel_tree(arch)
    init = HERE / "init.sh"
    key = _key(str(tree), init.read_bytes(), *INITRAMFS_MODULES)

    def build(tmp: Path) -> None:
        version = _kernel_version(tree)
        root = tmp / "root"
        for d in ("bin", "etc", f"lib/modules/{version}"):
            (root / d).mkdir(parents=True)
        shutil.copy2(tree / "bin/busybox", root / "bin/busybox")
        shutil.copy2(init, root / "init")
        (root / "init").chmod(0o755)
        mods = _module_files(tree, version)
        for src in mods:
            dst = root / src.relative_to(tree)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        (root / "etc/modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
        _run(["depmod", "-b", str(root), version])
        files = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        with (tmp / "initrd.img").open("wb") as out:
            cpio = subprocess.Popen(
                ["cpio", "-o", "-H", "newc", "--quiet"],
                cwd=root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            gz = subprocess.Popen(["gzip", "-1"], stdin=cpio.stdout, stdout=out)
            cpio.stdin.write(("\n".join(files) + "\n").encode())
            cpio.stdin.close()
            if cpio.wait() != 0 or gz.wait() != 0:
                raise InputsError("cpio | gzip failed")

    return _cached(f"initramfs-{arch}", key, build) / "initrd.img"


def _module_files(tree: Path, version: str) -> list[Path]:
    found: set[Path] = set()
    for name in INITRAMFS_MODULES:
        done = subprocess.run(
            ["modprobe", "-d", str(tree), "-S", version, "--show-depends", name],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in done.stdout.splitlines():
            fields = line.split()
            if fields[:1] == ["insmod"]:
                found.add(Path(fields[1]))
    return sorted(found)


def kernel_image(arch: str) -> Path:
    tree = kernel_tree(arch)
    images = sorted((tree / "boot").glob("vmlinuz-*"))
    if not images:
        raise InputsError(f"{tree}: no vmlinuz")
    return images[-1]


def build_all(arch: str) -> Inputs:
    return Inputs(rootfs_tar=rootfs_tar(arch), kernel=kernel_image(arch), initramfs=initramfs(arch))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="amd64", choices=sorted(CONSOLE))
    args = p.parse_args(argv)
    try:
        inputs = build_all(args.arch)
    except InputsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(inputs.rootfs_tar)
    print(inputs.kernel)
    print(inputs.initramfs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
