"""`pyupdate-artifact`: parser built in a loop over VERBS; the one place errors become exit codes.

Exit codes: 0 ok, 1 internal error (a bug), 2 usage, 3 input/output/key file,
4 format or checksum, 5 signature, 130 interrupted (docs/artifact-tool.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.heap import keep_freed_buffers
from pyupdate_artifact.printable import printable

from .. import __version__
from . import delta, read, sign, validate, write

VERBS: tuple[ModuleType, ...] = (write, read, validate, sign, delta)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every usage error
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pyupdate-artifact", description="Write, read, validate and sign Mender v3 artifacts."
    )
    parser.add_argument("--version", action="version", version=f"pyupdate-artifact {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument("--compression", dest="global_compression", help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=_Parser)
    for verb in VERBS:
        sub = verbs.add_parser(verb.NAME, help=verb.HELP, description=verb.HELP)
        sub.set_defaults(run=verb.run)
        verb.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(message)s"
    )
    if getattr(args, "compression", "x") is None and args.global_compression:
        args.compression = args.global_compression
    keep_freed_buffers()
    try:
        return args.run(args)
    except ArtifactError as err:
        # the message may quote the artifact's own names: no raw escape sequences
        sys.stderr.write(f"error: {printable(str(err))}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as err:  # a bug: one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(
            f"error: internal error: {type(err).__name__}: {printable(str(err))}"
            " (rerun with --debug)\n"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
