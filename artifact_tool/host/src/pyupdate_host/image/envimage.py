"""Initial env images (mkenvimage -r) and the fw_env.config that must match them."""

from __future__ import annotations

from pathlib import Path

from . import tools
from .board import Board
from .bootscript import fw_env_config
from .errors import EnvConfigError, InputError


def write_env_images(board: Board, env_txt: Path, out_dir: Path) -> list[Path]:
    """Both redundant copies, same content and flags byte (a tie: copy 0 is current)."""
    outputs = []
    for name in board.env.files:
        out = out_dir / name
        tools.run(["mkenvimage", "-r", "-s", hex(board.env.size), "-o", out, env_txt])
        outputs.append(out)
    return outputs


def write_fw_env_config(board: Board, out: Path) -> Path:
    out.write_text(fw_env_config(board))
    check_fw_env_config(board, out)
    return out


def check_fw_env_config(board: Board, path: Path) -> None:
    """Refuse a fw_env.config whose sizes or files disagree with the board.

    A size mismatch is the classic silent failure: libubootenv computes the CRC
    over a different length than U-Boot, both sides see a bad CRC and fall back
    to defaults without saying why.
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 3:
            raise EnvConfigError(f"{path}:{number}: expected '<device> <offset> <size>'")
        try:
            size = int(fields[2], 0)
        except ValueError:
            raise EnvConfigError(f"{path}:{number}: size {fields[2]!r} is not a number") from None
        if size != board.env.size:
            raise EnvConfigError(
                f"{path}:{number}: env size {fields[2]} does not match board env.size "
                f"{board.env.size:#x} ({board.source})"
            )
        entries.append(fields[0])
    if len(entries) != 2:
        raise EnvConfigError(
            f"{path}: {len(entries)} env copies, the board's redundant env (env.files) needs 2"
        )
    for entry, name in zip(entries, board.env.files, strict=True):
        if Path(entry).name != name:
            raise EnvConfigError(f"{path}: copy {entry} is not env.files entry {name}")


def check_env_image(board: Board, path: Path) -> None:
    size = path.stat().st_size
    if size != board.env.size:
        raise EnvConfigError(
            f"{path}: env image is {size:#x} bytes, board env.size is {board.env.size:#x}"
        )
