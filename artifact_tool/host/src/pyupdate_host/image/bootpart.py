"""The boot partition: FAT with boot.scr and both env copies (mkfs.vfat + mtools, no mount)."""

from __future__ import annotations

from pathlib import Path

from . import tools
from .board import Board
from .errors import FitError, ToolError

MIB = 1024 * 1024


def make_boot_partition(board: Board, out: Path, files: list[Path]) -> None:
    """FAT16 (U-Boot's fatwrite rewrites the env files in place), label BOOT."""
    out.unlink(missing_ok=True)
    kib = board.partitions.boot_mib * 1024
    tools.run(["mkfs.vfat", "-C", "-F", "16", "-n", "BOOT", out, str(kib)])
    tools.run(["mcopy", "-o", "-i", out, *files, "::"])


def make_data_partition(board: Board, out: Path, content: Path | None) -> None:
    """ext4, labelled so fstab finds it whatever its device name."""
    argv = ["mkfs.ext4", "-q", "-F", "-L", board.data_label, "-b", "4096"]
    argv += ["-d", content] if content is not None else []
    try:
        tools.run([*argv, out, f"{board.partitions.data_mib * 1024}k"])
    except ToolError as exc:
        if content is not None and ("allocate" in str(exc) or "No space" in str(exc)):
            raise FitError(
                f"{content}: data does not fit the data partition "
                f"(partitions.data_mib = {board.partitions.data_mib} in {board.source})"
            ) from exc
        raise
