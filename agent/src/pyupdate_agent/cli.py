"""`pyupdate`: the agent's command line; the only place errors become exit codes,
by the table in exitcodes.py (docs/agent.md, "Exit codes"): one line on stderr,
the code of the error's kind for the command.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.printable import printable

from . import __version__
from .config import DEFAULT_CONFIG, DEFAULT_DATA, load_config
from .core.names import State
from .errors import AgentError, UpdateError
from .exitcodes import Exit, exit_code
from .log import setup_logging
from .provides import current_provides, format_provides
from .store import Store

if TYPE_CHECKING:
    from .device import Device

log = logging.getLogger(__name__)

# what a standalone update in these states waits for (show-update)
WAITS_FOR = {
    State.DOWNLOADED: "pyupdate install --resume",
    State.INSTALLED: "pyupdate commit",
}

# Each verb imports what it needs when it runs: `show-artifact` (inventory and state
# scripts call it) then starts without the artifact reader, TLS and the installers,
# which costs a device with a slow CPU a second or more per call.


def _device(args: argparse.Namespace) -> Device:
    from .device import Device

    return Device(load_config(args.config), args.data)


def _open_store(device: Device):
    store = device.store(create=True)
    assert store is not None
    return store


def cmd_install(args: argparse.Namespace) -> int:
    from pyupdate_artifact.heap import keep_freed_buffers

    from .standalone import install, recover, resume_install, waiting

    # a one-shot process: keeping freed buffers saves ~1 s of page faults per GiB
    # (the daemon does not, so its memory goes back to the system after an update)
    keep_freed_buffers()
    device = _device(args)
    store = _open_store(device)
    try:
        done = recover(device, store)
        if done:
            log.warning(done)
        if args.resume:
            result = resume_install(device, store)
        else:
            refusal = waiting(store.load())
            if refusal is not None:
                raise UpdateError(refusal)
            result = install(device, store, args.artifact, download_only=args.download_only)
    finally:
        store.close()
    if result.downloaded:
        print(
            f"downloaded {printable(result.artifact_name)}: run 'pyupdate install --resume'"
            " to install it or 'pyupdate rollback' to drop it"
        )
        return Exit.OK
    if result.committed:
        print(f"installed and committed {printable(result.artifact_name)}")
    else:
        print(
            f"installed {printable(result.artifact_name)}: "
            + ("reboot, then " if result.needs_reboot != "No" else "")
            + "run 'pyupdate commit' to keep it or 'pyupdate rollback' to drop it"
        )
    if args.reboot_exit_code and result.needs_reboot != "No":
        return Exit.REBOOT_NEEDED
    return Exit.OK


def cmd_commit(args: argparse.Namespace) -> int:
    from .standalone import commit

    device = _device(args)
    store = _open_store(device)
    try:
        name = commit(device, store)
    finally:
        store.close()
    print(f"committed {printable(name)}")
    return Exit.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    from .standalone import rollback

    device = _device(args)
    store = _open_store(device)
    try:
        record = store.load()
        downloaded = record is not None and record.state is State.DOWNLOADED
        name = rollback(device, store)
    finally:
        store.close()
    print(f"{'dropped the download of' if downloaded else 'rolled back'} {printable(name)}")
    return Exit.OK


def _provides(args: argparse.Namespace) -> dict[str, str]:
    config = load_config(args.config)
    store = Store.open(args.data, create=False)
    try:
        return current_provides(store, config)
    finally:
        if store is not None:
            store.close()


def cmd_show_artifact(args: argparse.Namespace) -> int:
    print(printable(_provides(args)["artifact_name"]))
    return Exit.OK


def cmd_show_provides(args: argparse.Namespace) -> int:
    sys.stdout.write(format_provides(_provides(args)))
    return Exit.OK


def cmd_show_update(args: argparse.Namespace) -> int:
    """The update in flight as key=value lines (nothing when there is none)."""
    store = Store.open(args.data, create=False)
    try:
        record = store.load() if store is not None else None
    finally:
        if store is not None:
            store.close()
    if record is None or (record.update is None and record.deployment is None):
        return Exit.OK
    lines = {"state": str(record.state)}
    if record.update is not None:
        lines["artifact_name"] = record.update.artifact_name
        lines["payload_type"] = record.update.payload_type
        lines["phase"] = str(record.update.phase)
    waits = WAITS_FOR.get(record.state) if record.deployment is None else None
    if record.deployment is not None:
        lines["deployment"] = record.deployment.id
        lines.setdefault("artifact_name", record.deployment.artifact_name)
        window = record.deployment.install_window or load_config(args.config).install_window
        if record.state is State.DOWNLOADED and window:
            waits = f"the install window {window}"
    if waits:
        lines["waits_for"] = waits
    sys.stdout.write("".join(f"{k}={printable(v)}\n" for k, v in lines.items()))
    return Exit.OK


def cmd_daemon(args: argparse.Namespace) -> int:
    import os

    from .config import load_config as check_config

    check_config(args.config)  # a bad config fails here, with the usual one line
    # exec the lean entry: the idle daemon must not carry this module's imports
    argv = ["--data", str(args.data), "--log-level", args.log_level]
    if args.config is not None:
        argv += ["--config", str(args.config)]
    if args.log_json:
        argv.append("--log-json")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "pyupdate_agent.daemon", *argv])
    return Exit.FAILED  # not reached


def cmd_signal_daemon(args: argparse.Namespace) -> int:
    from .daemon.control import signal_daemon

    signal_daemon(load_config(args.config), args.data, args.verb)
    return Exit.OK


@dataclass(frozen=True)
class Verb:
    """Args: check: the usage error of arguments that do not go together, or None."""

    help: str
    run: Callable[[argparse.Namespace], int]
    add_args: Callable[[argparse.ArgumentParser], None] = lambda p: None
    check: Callable[[argparse.Namespace], str | None] = lambda a: None


def _install_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", nargs="?", help="artifact file or http(s) URL")
    parser.add_argument(
        "--download-only",
        action="store_true",
        help="verify and write the update, then stop before installing it",
    )
    parser.add_argument(
        "--resume", action="store_true", help="install the update --download-only left waiting"
    )
    parser.add_argument(
        "--reboot-exit-code",
        action="store_true",
        help=f"exit with {Exit.REBOOT_NEEDED:d} when the update needs a reboot",
    )


def _install_check(args: argparse.Namespace) -> str | None:
    if args.resume == (args.artifact is not None) or (args.resume and args.download_only):
        return "give ARTIFACT|URL (with or without --download-only), or --resume alone"
    return None


VERBS: dict[str, Verb] = {
    "install": Verb(
        "install an artifact (file or URL)", cmd_install, _install_args, _install_check
    ),
    "commit": Verb("make the installed update permanent", cmd_commit),
    "rollback": Verb(
        "drop the installed (or downloaded) update, go back to the previous one", cmd_rollback
    ),
    "show-artifact": Verb("print the current artifact name", cmd_show_artifact),
    "show-provides": Verb("print the current provides as key=value lines", cmd_show_provides),
    "show-update": Verb("print the update in flight as key=value lines", cmd_show_update),
    "daemon": Verb("managed mode: poll the server, update, report (docs/agent.md)", cmd_daemon),
    "check-update": Verb("make the running daemon check for an update now", cmd_signal_daemon),
    "send-inventory": Verb("make the running daemon send its inventory now", cmd_signal_daemon),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyupdate", description="pyupdate device agent")
    parser.add_argument("--version", action="version", version=f"pyupdate {__version__}")
    parser.add_argument(
        "-c", "--config", type=Path, default=None, help=f"config file (default {DEFAULT_CONFIG})"
    )
    parser.add_argument(
        "-d", "--data", type=Path, default=DEFAULT_DATA, help=f"data dir (default {DEFAULT_DATA})"
    )
    parser.add_argument(
        "-l",
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level",
    )
    parser.add_argument("--log-json", action="store_true", help="log JSON lines on stderr")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for name, verb in VERBS.items():
        verb.add_args(sub.add_parser(name, help=verb.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    usage = VERBS[args.verb].check(args)
    if usage is not None:
        parser.error(f"{args.verb}: {usage}")  # exits 2, as any usage error
    setup_logging(args.log_level, args.log_json)
    try:
        return VERBS[args.verb].run(args)
    except (AgentError, ArtifactError) as err:
        _report(args, err)
        return exit_code(args.verb, err)
    except KeyboardInterrupt as err:
        print("error: interrupted", file=sys.stderr)
        return exit_code(args.verb, err)
    except Exception as err:  # a bug: still one line, details with --log-level debug
        _report(args, RuntimeError(f"internal error: {type(err).__name__}: {err}"))
        return Exit.FAILED


def _report(args: argparse.Namespace, err: Exception) -> None:
    if args.log_level == "debug":
        logging.getLogger("pyupdate_agent").exception("failed")
    print(f"error: {printable(str(err))}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
