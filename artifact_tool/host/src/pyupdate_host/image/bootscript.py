"""Render the U-Boot boot script, initial env and fw_env.config from one template set.

All three come from templates/uboot/ with the same context, so the env the
script reads, the env the host writes and the file libubootenv is told about
cannot drift apart. Addresses are computed here because the x86 U-Boot has no
setexpr.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from . import tools
from .board import BOOT_PART, SLOT_A_PART, SLOT_B_PART, Board

TEMPLATE_DIR = "templates/uboot"
# Variables U-Boot writes back after a trial boot. `env export` with a list drops
# everything else, so a variable Linux sets must be listed (board env.persist).
MENDER_VARS = (
    "mender_boot_part",
    "mender_boot_part_hex",
    "upgrade_available",
    "bootcount",
    "bootlimit",
    "mender_check_saveenv_canary",
    "mender_saveenv_canary",
)


@dataclass(frozen=True, slots=True)
class EnvCopy:
    file: str
    offset: int
    raw: str
    data: str
    flags: str


def context(board: Board) -> dict[str, Any]:
    size = board.env.size
    stride = (size + 0xFFF) & ~0xFFF
    base = int(board.uboot.scratch_addr, 16)
    raw0, raw1, imp, out = (base + i * stride for i in range(4))
    copies = [
        EnvCopy(file=f, offset=o, raw=_hex(r), data=_hex(r + 5), flags=_hex(r + 4))
        for f, o, r in zip(board.env.files, board.env.offsets, (raw0, raw1), strict=True)
    ]
    return {
        "board": board,
        "boot_part": BOOT_PART,
        "part_a": SLOT_A_PART,
        "part_b": SLOT_B_PART,
        "part_a_hex": f"{SLOT_A_PART:x}",
        "part_b_hex": f"{SLOT_B_PART:x}",
        "linux_root_prefix": f"{board.linux_device}{board.partition_separator}",
        "env_size": _hex(size),
        "crc_size": _hex(size - 1),
        "data_size": _hex(size - 5),
        "copies": copies,
        "imp": _hex(imp),
        "imp_data": _hex(imp + 4),
        "out": _hex(out),
        "out_flags": _hex(out + 4),
        "out_data": _hex(out + 5),
        # bootlimit may be raised in the env at run time (schema max 8): count to 9.
        "bootcount_max": 9,
        "persist": [*MENDER_VARS, *(v for v in board.env.persist if v not in MENDER_VARS)],
    }


def render(board: Board, template: str) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pyupdate_host.image", TEMPLATE_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(**context(board))


def boot_cmd(board: Board) -> str:
    return render(board, "boot.cmd.j2")


def env_defaults(board: Board) -> str:
    return render(board, "env.txt.j2")


def fw_env_config(board: Board) -> str:
    return render(board, "fw_env.config.j2")


def compile_script(board: Board, cmd: Path, scr: Path) -> None:
    """`mkimage -T script`: the legacy image U-Boot's `source` and distro boot accept."""
    tools.run(
        [
            *("mkimage", "-q", "-A", board.uboot.mkimage_arch, "-O", "linux", "-T", "script"),
            *("-C", "none", "-n", f"pyupdate {board.name}", "-d", cmd, scr),
        ]
    )


def template_names() -> list[str]:
    folder = resources.files(__package__).joinpath(TEMPLATE_DIR)
    return sorted(p.name for p in folder.iterdir())


def _hex(value: int) -> str:
    return f"0x{value:x}"
