"""`sign FILE -k KEY [-o OUT]`: add or replace the signature, payload untouched."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "sign"
HELP = "sign an artifact (adds or replaces manifest.sig)"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="artifact file")
    parser.add_argument("-k", "--key", required=True, help="private key (RSA or ECDSA P-256 PEM)")
    parser.add_argument("-o", "--output-path", help="write here instead of replacing the input")
    parser.add_argument(
        "-f", "--force", action="store_true", help="accepted for mender-artifact compatibility"
    )


def run(args: argparse.Namespace) -> int:
    from ..resign import sign_artifact
    from ..sign import load_signer

    src = Path(args.artifact)
    sign_artifact(src, Path(args.output_path) if args.output_path else src, load_signer(args.key))
    return 0
