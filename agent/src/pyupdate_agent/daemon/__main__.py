"""Lean entry of the daemon: `pyupdate daemon` execs this, so the idle process never
imports the standalone commands' modules (the artifact library alone is ~15 MB of RSS).

`python -m pyupdate_agent.daemon --config F --data D --log-level L [--log-json]`;
errors: one line on stderr, the exit code from exitcodes.py's table ("daemon").
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..config import DEFAULT_DATA, load_config
from ..errors import AgentError
from ..exitcodes import exit_code
from ..log import setup_logging


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pyupdate daemon")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-json", action="store_true")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_json)
    from .control import run_daemon

    try:
        return run_daemon(
            load_config(args.config), args.data, reexec=["-m", "pyupdate_agent.daemon", *argv]
        )
    except AgentError as err:
        if args.log_level == "debug":
            logging.getLogger("pyupdate_agent").exception("failed")
        print(f"error: {err}", file=sys.stderr)
        return exit_code("daemon", err)
    except KeyboardInterrupt as err:
        return exit_code("daemon", err)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
