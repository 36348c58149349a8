"""`pyupdate-image`: one subcommand per build step, plus `build` for all of them.

Exit codes: 0 ok, 2 bad input (board config, rootfs, env), 3 a build tool
missing or failing, 130 interrupted, 1 a bug (traceback only with -v).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import board as board_mod
from . import bootscript, build, envimage, slot
from .errors import ImageError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(name: str, help_: str, add_args: Callable[[argparse.ArgumentParser], None]):
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (help_, add_args, fn)
        return fn

    return register


def _board_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", required=True, help="shipped board name or path to a board file")


def _out_dir_args(p: argparse.ArgumentParser) -> None:
    _board_arg(p)
    p.add_argument("--out", required=True, type=Path, help="output directory")


def _build_args(p: argparse.ArgumentParser) -> None:
    _out_dir_args(p)
    p.add_argument("--rootfs", required=True, type=Path, help="directory, tarball or ext4 image")
    p.add_argument("--name", required=True, help="artifact name of this image")
    p.add_argument("--key", type=Path, help="PEM private key to sign the artifacts")
    p.add_argument("--data-dir", type=Path, help="initial content of the data partition")
    p.add_argument("--rootfs-b", type=Path, help="content of slot B (default: same as A)")
    p.add_argument("--no-artifacts", action="store_true", help="skip the .mender files")


def _slot_args(p: argparse.ArgumentParser) -> None:
    _board_arg(p)
    p.add_argument("--rootfs", required=True, type=Path)
    p.add_argument("--name", required=True, help="artifact name written into the slot")
    p.add_argument("--out", required=True, type=Path, help="ext4 image to write")


def _fw_env_args(p: argparse.ArgumentParser) -> None:
    _board_arg(p)
    p.add_argument("config", type=Path, help="fw_env.config to check")


@command("boards", "list the shipped board configs", lambda p: None)
def cmd_boards(args: argparse.Namespace) -> int:
    print("\n".join(board_mod.shipped_boards()))
    return 0


@command("check-board", "validate a board config against the schema", _board_arg)
def cmd_check_board(args: argparse.Namespace) -> int:
    b = board_mod.load_board(args.board)
    print(f"{b.name}: ok ({b.arch}, {b.qemu.machine}, {b.uboot.binary})")
    return 0


@command("boot-script", "write boot.cmd, boot.scr, env.txt and fw_env.config", _out_dir_args)
def cmd_boot_script(args: argparse.Namespace) -> int:
    b = board_mod.load_board(args.board)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "boot.cmd").write_text(bootscript.boot_cmd(b))
    bootscript.compile_script(b, args.out / "boot.cmd", args.out / "boot.scr")
    (args.out / "env.txt").write_text(bootscript.env_defaults(b))
    envimage.write_fw_env_config(b, args.out / "fw_env.config")
    for name in ("boot.cmd", "boot.scr", "env.txt", "fw_env.config"):
        print(args.out / name)
    return 0


@command("env-image", "write both redundant env images (mkenvimage -r)", _out_dir_args)
def cmd_env_image(args: argparse.Namespace) -> int:
    b = board_mod.load_board(args.board)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "env.txt").write_text(bootscript.env_defaults(b))
    for path in envimage.write_env_images(b, args.out / "env.txt", args.out):
        print(path)
    return 0


@command("check-fw-env", "refuse a fw_env.config that disagrees with the board", _fw_env_args)
def cmd_check_fw_env(args: argparse.Namespace) -> int:
    envimage.check_fw_env_config(board_mod.load_board(args.board), args.config)
    print(f"{args.config}: ok")
    return 0


@command("slot", "write one rootfs slot image (ext4, slot-sized)", _slot_args)
def cmd_slot(args: argparse.Namespace) -> int:
    b = board_mod.load_board(args.board)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    try:
        slot.make_slot_image(b, args.rootfs, tmp, args.name, "rootfs")
        tmp.replace(args.out)
    finally:
        tmp.unlink(missing_ok=True)
    print(args.out)
    return 0


@command("build", "everything: slots, boot partition, env, disk, artifacts, manifest", _build_args)
def cmd_build(args: argparse.Namespace) -> int:
    spec = build.BuildSpec(
        board=board_mod.load_board(args.board),
        rootfs=args.rootfs,
        name=args.name,
        out_dir=args.out,
        key=args.key,
        data_dir=args.data_dir,
        rootfs_b=args.rootfs_b,
        artifacts=not args.no_artifacts,
    )
    paths, timings = build.build(spec)
    for t in timings:
        logging.getLogger(__name__).info("%-15s %6.2f s", t.name, t.seconds)
    for path in paths:
        print(path)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyupdate-image", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="log each step and its time")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add_args, fn) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        add_args(sp)
        sp.set_defaults(handler=fn)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="pyupdate-image: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        name = type(exc).__name__
        print(f"error: internal error: {name}: {exc} (rerun with -v)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
