"""Whole-disk assembly: MBR with sfdisk on a sparse file, partitions copied in with dd.

Layout (fixed partition numbers, see board.py): 1 boot FAT (bootable, where
distro boot finds boot.scr), 2 rootfs A, 3 rootfs B, 4 data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import tools
from .board import Board
from .errors import FitError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Partition:
    number: int
    name: str
    start_mib: int
    size_mib: int
    type_id: str
    bootable: bool = False


def layout(board: Board) -> list[Partition]:
    p = board.partitions
    align = p.align_mib
    parts = []
    start = align
    for number, name, size, type_id in (
        (1, "boot", p.boot_mib, "c"),
        (2, "rootfs-a", p.rootfs_mib, "83"),
        (3, "rootfs-b", p.rootfs_mib, "83"),
        (4, "data", p.data_mib, "83"),
    ):
        parts.append(Partition(number, name, start, size, type_id, bootable=number == 1))
        start += -(-size // align) * align
    return parts


def disk_size_mib(board: Board) -> int:
    last = layout(board)[-1]
    return last.start_mib + last.size_mib


def sfdisk_script(board: Board) -> str:
    lines = ["label: dos", "unit: sectors"]
    for part in layout(board):
        boot = ", bootable" if part.bootable else ""
        lines.append(
            f"start={part.start_mib * 2048}, size={part.size_mib * 2048}, type={part.type_id}{boot}"
        )
    return "\n".join(lines) + "\n"


def assemble(board: Board, out: Path, images: dict[int, Path]) -> None:
    """Create the sparse disk, partition it, copy each image to its partition."""
    with out.open("wb") as f:
        f.truncate(disk_size_mib(board) * MIB)
    script = sfdisk_script(board).encode()
    tools.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", out], stdin=script)
    by_number = {p.number: p for p in layout(board)}
    for number, image in sorted(images.items()):
        part = by_number[number]
        if image.stat().st_size > part.size_mib * MIB:
            raise FitError(f"{image}: larger than partition {number} ({part.name})")
        tools.run(
            [
                *("dd", f"if={image}", f"of={out}", "bs=1M", f"seek={part.start_mib}"),
                *("conv=notrunc,sparse", "status=none"),
            ]
        )
