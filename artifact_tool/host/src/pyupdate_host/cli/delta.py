"""`delta OLD.mender NEW.mender -o DELTA.mender [-k KEY]`: a binary delta artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "delta"
HELP = "make a delta artifact that turns OLD's rootfs into NEW's"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD.mender", help="artifact the devices run now")
    parser.add_argument("new", metavar="NEW.mender", help="artifact to update them to")
    parser.add_argument("-o", "--output-path", required=True, help="delta artifact to write")
    parser.add_argument("-k", "--key", help="private key (RSA or ECDSA P-256 PEM) to sign with")


def run(args: argparse.Namespace) -> int:
    from ..delta import make_delta
    from ..sign import load_signer

    signer = load_signer(args.key) if args.key else None
    make_delta(Path(args.old), Path(args.new), Path(args.output_path), signer=signer)
    return 0
