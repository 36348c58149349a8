"""A wks file to a disk image: with oe-core's wic, or without it for CI.

CI has no oe-core, so `assemble` does what wic does for the subset of the
kickstart language our wks uses, with Debian's tools and no loop devices:
partitions laid out as wic lays them (first sector after the MBR, each start
rounded up to --align, msdos only), FAT made by mkfs.vfat and filled with
IMAGE_BOOT_FILES (bootimg_partition), ext4 made by mkfs.ext4 -d from the
rootfs (rootfs source) or empty, and the fstab lines wic adds to each rootfs
partition's copy of /etc/fstab. Anything else in the wks stops it with one
line: a wks that needs more must be assembled by wic (PYUPDATE_SNAPSHOTS).
tests/integrations/test_yocto_expanded.py compares both disks where oe-core is.
"""

from __future__ import annotations

import glob
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SECTOR = 512
MBR_OVERHEAD = 1  # sectors before the first partition (wic's direct.py)
# msdos partition ids as wic's parted calls leave them
MSDOS_ID = {"vfat": "c", "msdos": "c", "ext2": "83", "ext3": "83", "ext4": "83", "swap": "82"}


class WksError(Exception):
    pass


@dataclass
class Part:
    mountpoint: str = ""
    source: str = ""
    ondisk: str = ""
    fstype: str = ""
    label: str = ""
    active: bool = False
    align_kib: int = 0
    size_kib: int = 0
    fsoptions: str = "defaults"
    no_fstab_update: bool = False
    use_label: bool = False
    start: int = 0  # sectors, set by layout()

    @property
    def sectors(self) -> int:
        return self.size_kib * 1024 // SECTOR


@dataclass
class Layout:
    parts: list[Part] = field(default_factory=list)
    ptable: str = "msdos"


def _kib(size: str) -> int:
    units = {"K": 1, "M": 1024, "G": 1024 * 1024}
    if size[-1:].upper() in units:
        return int(size[:-1]) * units[size[-1].upper()]
    return int(size) * 1024  # wic's default unit is MiB


_VALUED = {
    "--source",
    "--ondisk",
    "--ondrive",
    "--fstype",
    "--label",
    "--align",
    "--fixed-size",
    "--size",
    "--fsoptions",
}


def parse(text: str) -> Layout:
    layout = Layout()
    for raw in text.splitlines():
        words = shlex.split(raw, comments=True)
        if not words:
            continue
        if words[0] == "bootloader":
            for word in words[1:]:
                if word.startswith("--ptable"):
                    layout.ptable = (
                        word.split("=", 1)[1] if "=" in word else words[words.index(word) + 1]
                    )
            if layout.ptable != "msdos":
                raise WksError(
                    f"wks: --ptable {layout.ptable}: only msdos is assembled without wic"
                )
            continue
        if words[0] != "part":
            raise WksError(f"wks: {words[0]}: not assembled without wic")
        part, rest = Part(), words[1:]
        if rest and not rest[0].startswith("--"):
            part.mountpoint = rest.pop(0)
        while rest:
            opt = rest.pop(0)
            name, _, value = opt.partition("=")
            if name in _VALUED and not value:
                value = rest.pop(0)
            match name:
                case "--source":
                    part.source = value
                case "--ondisk" | "--ondrive":
                    part.ondisk = value
                case "--fstype":
                    part.fstype = value
                case "--label":
                    part.label = value
                case "--active":
                    part.active = True
                case "--align":
                    part.align_kib = int(value)
                case "--fixed-size" | "--size":
                    part.size_kib = _kib(value)
                case "--fsoptions":
                    part.fsoptions = value
                case "--no-fstab-update":
                    part.no_fstab_update = True
                case "--use-label":
                    part.use_label = True
                case _:
                    raise WksError(
                        f"wks: part {part.mountpoint or part.label}: {name} is not assembled without wic"
                    )
        if part.source not in ("", "rootfs", "bootimg_partition"):
            raise WksError(f"wks: --source {part.source} is not assembled without wic")
        if not part.size_kib:
            raise WksError(
                f"wks: part {part.mountpoint or part.label}: needs --fixed-size without wic"
            )
        layout.parts.append(part)
    if len(layout.parts) > 4:
        raise WksError("wks: more than 4 partitions (logical ones) are not assembled without wic")
    offset = MBR_OVERHEAD
    for part in layout.parts:
        if part.align_kib:
            align = part.align_kib * 1024 // SECTOR
            offset += -offset % align
        part.start = offset
        offset += part.sectors
    return layout


def fstab_lines(layout: Layout) -> list[str]:
    """The lines wic's update_fstab appends to each rootfs partition's /etc/fstab."""
    lines = []
    for number, part in enumerate(layout.parts, 1):
        if not part.mountpoint.startswith("/") or part.mountpoint == "/":
            continue
        if part.use_label:
            device = f"LABEL={part.label}"
        else:
            device = f"/dev/{part.ondisk}{'p' if part.ondisk.startswith('mmcblk') else ''}{number}"
        lines.append(
            "\t".join([device, part.mountpoint, part.fstype, part.fsoptions, "0", "0"]) + "\n"
        )
    return lines


def _boot_files(spec: str, deploy: Path) -> list[tuple[Path, str]]:
    """IMAGE_BOOT_FILES: `file`, `file;name`, `glob`, as bootimg_partition reads it."""
    files = []
    for entry in spec.split():
        src, _, dst = entry.partition(";")
        for match in sorted(glob.glob(str(deploy / src))) or [str(deploy / src)]:
            files.append((Path(match), dst or Path(match).name))
    return files


def _make_fs(
    part: Part,
    image: Path,
    rootfs: Path,
    deploy: Path,
    boot_files: str,
    fstab: list[str],
    tmp: Path,
) -> None:
    if part.fstype == "vfat":
        subprocess.run(
            ["mkfs.vfat", "-n", part.label, "-C", str(image), str(part.size_kib)],
            check=True,
            capture_output=True,
        )
        if part.source == "bootimg_partition":
            for src, dst in _boot_files(boot_files, deploy):
                subprocess.run(
                    ["mcopy", "-i", str(image), "-s", str(src), f"::{dst}"],
                    check=True,
                    capture_output=True,
                )
        return
    if not part.fstype.startswith("ext"):
        raise WksError(f"wks: --fstype {part.fstype} is not assembled without wic")
    argv = ["mkfs." + part.fstype, "-q", "-F", "-i", "8192", "-L", part.label]
    if part.source == "rootfs":
        argv += ["-d", str(rootfs)]
    subprocess.run([*argv, str(image), f"{part.size_kib}k"], check=True, capture_output=True)
    if (
        part.source == "rootfs"
        and fstab
        and not part.no_fstab_update
        and (rootfs / "etc/fstab").is_file()
    ):
        updated = tmp / "fstab"
        updated.write_text((rootfs / "etc/fstab").read_text() + "".join(fstab))
        script = tmp / "debugfs"
        script.write_text(f"cd etc\nrm fstab\nwrite {updated} fstab\n")
        subprocess.run(
            ["debugfs", "-w", "-f", str(script), str(image)], check=True, capture_output=True
        )


def assemble(
    layout: Layout,
    rootfs: Path,
    deploy: Path,
    boot_files: str,
    disk: Path,
    fstab_update: bool = True,
) -> Path:
    """The disk image, written to a temp file and renamed: never half a disk.
    fstab_update=False is wic's --no-fstab-update (WIC_CREATE_EXTRA_ARGS)."""
    end = layout.parts[-1].start + layout.parts[-1].sectors
    fstab = fstab_lines(layout) if fstab_update else []
    with tempfile.TemporaryDirectory(dir=disk.parent) as tmp_dir:
        tmp = Path(tmp_dir)
        out = tmp / "disk.img"
        with out.open("wb") as f:
            f.truncate(end * SECTOR)
        table = ["label: dos", "unit: sectors"]
        for part in layout.parts:
            table.append(
                f"start={part.start}, size={part.sectors}, type={MSDOS_ID[part.fstype]}"
                + (", bootable" if part.active else "")
            )
        subprocess.run(
            ["sfdisk", "-q", str(out)],
            input="\n".join(table) + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        for number, part in enumerate(layout.parts, 1):
            image = tmp / f"part{number}.img"
            _make_fs(part, image, rootfs, deploy, boot_files, fstab, tmp)
            subprocess.run(
                [
                    "dd",
                    f"if={image}",
                    f"of={out}",
                    "bs=512",
                    f"seek={part.start}",
                    "conv=notrunc,sparse",
                    "status=none",
                ],
                check=True,
            )
            image.unlink()
        out.replace(disk)
    return disk


def assemble_with_wic(
    wic: Path,
    wks_file: Path,
    variables: dict[str, str],
    rootfs: Path,
    deploy: Path,
    disk: Path,
    env: dict[str, str],
    extra: list[str] | None = None,
) -> Path:
    """oe-core's wic on the same wks: host tools as the native sysroot, variables from a .env file."""
    with tempfile.TemporaryDirectory(dir=disk.parent) as tmp_dir:
        tmp = Path(tmp_dir)
        name = variables["IMAGE_BASENAME"]
        values = {
            "IMAGE_BOOT_FILES": variables["IMAGE_BOOT_FILES"],
            "DEPLOY_DIR_IMAGE": str(deploy),
            "IMAGE_ROOTFS": str(rootfs),
            "IMAGE_LINK_NAME": variables["IMAGE_LINK_NAME"],
            "MACHINE": variables["MACHINE"],
            "HOSTTOOLS_DIR": "/usr/bin",
            "TARGET_SYS": "",
        }
        (tmp / "vars").mkdir()
        (tmp / "vars" / f"{name}.env").write_text(
            "".join(f'{k}="{v}"\n' for k, v in values.items())
        )
        argv = [
            "python3",
            str(wic),
            "create",
            str(wks_file),
            "-e",
            name,
            "--vars",
            str(tmp / "vars"),
            "-r",
            str(rootfs),
            "-b",
            str(deploy),
            "-k",
            str(deploy),
            "-n",
            "/",
            "-o",
            str(tmp / "out"),
            *(extra or []),
        ]
        # wic insists on a build dir, even with every directory given, and finds
        # bitbake's lib (oe.path imports bb) through `bitbake` on PATH
        bitbake = wic.resolve().parents[2] / "bitbake/bin"
        wic_env = {**env, "BUILDDIR": str(tmp), "PATH": f"{env['PATH']}:{bitbake}"}
        done = subprocess.run(argv, env=wic_env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise WksError(f"wic: {' | '.join(tail)}")
        made = sorted((tmp / "out").glob("*.direct"))
        if not made:
            raise WksError(f"wic wrote no disk: {done.stdout.strip()[-300:]}")
        made[0].replace(disk)
    return disk


@dataclass(frozen=True, slots=True)
class Slot:
    start: int
    sectors: int
    type: str
    bootable: bool
    label: str


def describe(disk: Path) -> list[Slot]:
    """Partition table and filesystem labels, for comparing two disks."""
    import json

    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(disk)], capture_output=True, text=True, check=True
        ).stdout
    )
    slots = []
    for p in table["partitiontable"]["partitions"]:
        label = subprocess.run(
            [
                "blkid",
                "-p",
                "-O",
                str(p["start"] * SECTOR),
                "-s",
                "LABEL",
                "-o",
                "value",
                str(disk),
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        slots.append(Slot(p["start"], p["size"], p["type"], bool(p.get("bootable")), label))
    return slots


def read_file(disk: Path, part: Slot, path: str) -> str:
    """A file from an ext partition of the disk, with debugfs on a copy of that partition."""
    with tempfile.NamedTemporaryFile(dir=disk.parent) as img:
        subprocess.run(
            [
                "dd",
                f"if={disk}",
                f"of={img.name}",
                "bs=512",
                f"skip={part.start}",
                f"count={part.sectors}",
                "status=none",
            ],
            check=True,
        )
        return subprocess.run(
            ["debugfs", "-R", f"cat {path}", img.name], capture_output=True, text=True, check=True
        ).stdout
