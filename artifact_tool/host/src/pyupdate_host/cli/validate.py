"""`validate FILE [-k PUBKEY]`: structure, every checksum, and the signature when a key is given."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_quiet, progress_for, verifiers

NAME = "validate"
HELP = "check structure, checksums and (with -k) the signature"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="artifact file")
    parser.add_argument(
        "-k", "--key", action="append", help="public key the signature must verify with"
    )
    add_quiet(parser)


def run(args: argparse.Namespace) -> int:
    from pyupdate_artifact.reader import read_artifact

    bar = progress_for(Path(args.artifact), "validating", args.quiet)
    try:
        read_artifact(args.artifact, verify_keys=verifiers(args.key), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    print(f"Artifact file '{args.artifact}' validated successfully")
    return 0
