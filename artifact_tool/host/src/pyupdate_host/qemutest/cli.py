"""pyupdate-qemu-test: does OTA still work on what this build made? Boots it in QEMU and checks.

Exit codes: 0 every chosen scenario passed, 1 one failed (or errored),
2 bad input (one line, nothing booted), 3 the time budget ran out.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from . import server as fleet
from .build_output import (
    BuildOutput,
    UsageError,
    check_host,
    check_update,
    from_board,
    from_images,
    from_qemuboot,
    read_header,
)
from .deltas import make_deltas
from .machine import accel
from .media import media_disk
from .report import junit_xml, summary, write
from .runner import prepare_broken, prepare_veto, run_all
from .scenarios import BY_NAME, SCENARIOS, Scenario

EXIT_FAILED, EXIT_USAGE, EXIT_BUDGET = 1, 2, 3
SUITE = "pyupdate-qemu-test"
# the scenarios that install a release that never boots: they need it, and panic=N
ROLLS_BACK = ("rollback", "managed", "delta")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyupdate-qemu-test",
        description="Boot a build's A/B disk in QEMU and check update, commit and rollback.",
        epilog="scenarios: " + "; ".join(f"{s.name}: {s.summary}" for s in SCENARIOS),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--board", help="board config (JSON/TOML) or a shipped board name")
    src.add_argument("--qemuboot", type=Path, help="Yocto's IMAGE-MACHINE.qemuboot.conf")
    src.add_argument("--images", type=Path, help="Buildroot's output/images/ directory")
    p.add_argument("--disk", type=Path, help="the disk image (release 1), if not found")
    p.add_argument("--firmware", type=Path, help="U-Boot binary QEMU boots, if not found")
    p.add_argument("--update", type=Path, help="signed artifact of the next release")
    p.add_argument("--broken", type=Path, help="artifact that must roll back (default: made)")
    p.add_argument("--veto", type=Path,
                   help="artifact whose health check fails after it booted (default: made)")  # fmt: skip
    p.add_argument("--signing-key", type=Path, help="signs the artifacts the tool makes")
    p.add_argument("--verify-key", type=Path, help="the artifacts must verify with this key")
    p.add_argument("--login", default="root", metavar="USER[:PASSWORD]",
                   help="console login if the image asks (default root, no password)")  # fmt: skip
    p.add_argument("--scenario", action="append", default=[], help="run only these (comma list)")
    p.add_argument("--skip", action="append", default=[], help="skip these (comma list)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--junit", type=Path, help="write a JUnit XML report here")
    p.add_argument("--logs", type=Path, default=Path("pyupdate-qemu-test-logs"),
                   help="console log per scenario and summary.txt (default %(default)s)")  # fmt: skip
    p.add_argument("--budget", type=float, default=60.0, help="minutes for the run (default 60)")
    p.add_argument("--accel", choices=["tcg", "kvm"], help="QEMU accelerator (default tcg)")
    p.add_argument("--quiet", action="store_true", help="one line per scenario, even on a tty")
    return p


def _names(values: list[str]) -> list[str]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise UsageError(f"no such scenario: {unknown[0]} (known: {', '.join(BY_NAME)})")
    return names


def chosen(only: list[str], skip: list[str]) -> list[Scenario]:
    want, drop = _names(only), set(_names(skip))
    picked = [s for s in SCENARIOS if (not want or s.name in want) and s.name not in drop]
    if not picked:
        raise UsageError("no scenario left to run (--scenario/--skip)")
    return picked


def resolve(args: argparse.Namespace) -> BuildOutput:
    if args.qemuboot:
        board, disk = from_qemuboot(args.qemuboot, args.disk, args.firmware)
    elif args.images:
        board, disk = from_images(args.images, args.disk, args.firmware)
    elif args.board:
        board, disk = from_board(args.board, args.disk, args.firmware)
    else:
        raise UsageError("say what the build made: --qemuboot, --images or --board")
    if args.update is None:
        raise UsageError("--update: the next release's artifact is needed")
    for flag in ("signing_key", "verify_key"):
        key = getattr(args, flag)
        if key is not None and not key.is_file():
            raise UsageError(f"--{flag.replace('_', '-')}: {key}: no such file")
    update = read_header(args.update, "--update", args.verify_key)
    check_update(board, update)
    broken = read_header(args.broken, "--broken", args.verify_key) if args.broken else None
    veto = read_header(args.veto, "--veto", args.verify_key) if args.veto else None
    user, _, password = args.login.partition(":")
    if not user:
        raise UsageError("--login: USER[:PASSWORD], the user is missing")
    return BuildOutput(
        board, disk, update, broken, args.signing_key, args.verify_key, user, password or None,
        veto,
    )  # fmt: skip


class Say:
    """Progress: every step on a terminal, only starts and results in CI logs."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.started = time.monotonic()

    def __call__(self, scenario: str, text: str) -> None:
        final = text == "start" or text.split()[0] in ("passed", "failed", "error", "skipped")
        if self.verbose or final:
            stamp = time.monotonic() - self.started
            print(f"[{stamp:6.0f} s] {scenario}: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        width = max(len(s.name) for s in SCENARIOS)
        for s in SCENARIOS:
            print(f"{s.name:<{width}} {s.summary}")
        return 0
    try:
        return _run(args)
    except UsageError as err:
        print(f"pyupdate-qemu-test: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("pyupdate-qemu-test: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    scenarios = chosen(args.scenario, args.skip)
    if args.budget <= 0:
        raise UsageError("--budget: minutes must be more than 0")
    output = resolve(args)
    if any(s.needs_server for s in scenarios) and not fleet.available():
        needing = ",".join(s.name for s in scenarios if s.needs_server)
        raise UsageError(f"{needing}: pyupdate-server is not installed (pip install "
                         f"pyupdate-server) or --skip {needing}")  # fmt: skip
    rolls_back = [s.name for s in scenarios if s.name in ROLLS_BACK]
    if rolls_back and "panic=" not in output.board.kernel.bootargs:
        # QEMU has no watchdog here: only the kernel's own reset ends a panicking boot
        raise UsageError(f"{', '.join(rolls_back)}: the board's kernel bootargs have no panic=N, "
                         "a release that panics would hang instead of resetting")  # fmt: skip
    if args.accel:
        os.environ["PYUPDATE_QEMU_ACCEL"] = args.accel
    args.logs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="pyupdate-qemu-test-"))
    try:
        check_host(output.board, output.disk, work)
        needs_broken = any(s.name in ROLLS_BACK for s in scenarios)
        broken = prepare_broken(output, work) if needs_broken else None
        veto = prepare_veto(output, work) if any(s.needs_veto for s in scenarios) else None
        deltas = None
        if broken is not None and any(s.needs_deltas for s in scenarios):
            deltas = make_deltas(output, broken, work)
        files = [output.update.path] + ([broken.path] if broken else [])
        media = media_disk(files + (deltas.files if deltas else []), work / "media.img")
        props = {
            "board": output.board.name,
            "device_type": output.board.device_type,
            "disk": str(output.disk),
            "firmware": str(output.firmware),
            "update": output.update.name,
            "broken": broken.name if broken else "-",
            "veto": veto.name if veto else "-",
            "deltas": ", ".join(f"{d.stat().st_size >> 10} KiB {d.name}" for d in deltas.files[1:])
            if deltas
            else "-",
            "accel": accel(),
        }
        say = Say(verbose=sys.stderr.isatty() and not args.quiet)
        output = replace(output, veto=veto)
        results = run_all(
            scenarios, output, media, broken, work, args.logs, args.budget * 60, say, deltas
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = summary(results, props)
    write(args.logs / "summary.txt", text)
    if args.junit:
        write(args.junit, junit_xml(results, SUITE, props))
    print(text, end="")
    if any(r.status == "skipped" or "budget" in r.message for r in results):
        print(f"pyupdate-qemu-test: the time budget of {args.budget:g} min ran out "
              "(--budget MINUTES)", file=sys.stderr)  # fmt: skip
        return EXIT_BUDGET
    return 0 if all(r.status == "passed" for r in results) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
