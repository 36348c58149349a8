"""`read [--json] FILE [-k PUBKEY]`: what an artifact holds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pyupdate_artifact.printable import printable

from .options import add_quiet, progress_for, verifiers

if TYPE_CHECKING:
    from pyupdate_artifact.model import ArtifactHeader

NAME = "read"
HELP = "show an artifact's header, payloads and signature"


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", help="artifact file")
    parser.add_argument("-k", "--key", action="append", help="public key to verify the signature")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_quiet(parser)


def as_json(header: ArtifactHeader) -> dict:
    info = header.header_info
    return {
        "name": header.artifact_name,
        "format": "mender",
        "version": header.format_version,
        "compression": header.compression,
        "signature": {"present": header.signed, "verified": header.signature_verified},
        "artifact_provides": {"artifact_name": info.artifact_name}
        | ({"artifact_group": info.artifact_group} if info.artifact_group else {}),
        "artifact_depends": {
            "device_type": list(info.device_types),
            "artifact_name": list(info.depends_names),
            "artifact_group": list(info.depends_groups),
        },
        "device_types": list(info.device_types),
        "provides": header.type_provides,
        "depends": header.depends,
        "clears_provides": header.clears_provides,
        "scripts": sorted(header.scripts),
        "payloads": [
            {
                "index": p.index,
                "type": p.type,
                "provides": p.type_info.provides,
                "depends": p.type_info.depends,
                "clears_provides": (
                    list(p.type_info.clears_provides)
                    if p.type_info.clears_provides is not None
                    else None
                ),
                "meta_data": p.meta_data,
                "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in p.files],
            }
            for p in header.payloads
        ],
    }


def _depends_value(values: object) -> str:
    """A depends value as mender-artifact prints it: a string, or a list's repr."""
    return printable(values) if isinstance(values, str) else printable(str(values))


def _text(header: ArtifactHeader) -> str:
    """mender-artifact's layout; every string from the artifact goes through printable()."""
    p = printable
    info = header.header_info
    if header.signature_verified:
        signature = "signed and verified correctly"
    elif header.signed:
        signature = "signed but no key for verification provided; please use `-k` option"
    else:
        signature = "no signature"
    lines = [
        "Mender artifact:",
        f"  Name: {p(header.artifact_name)}",
        "  Format: mender",
        f"  Version: {header.format_version}",
        f"  Signature: {signature}",
        f"  Compatible devices: '[{p(' '.join(info.device_types))}]'",
        f"  Provides group: {p(info.artifact_group or '')}",
        f"  Depends on one of artifact(s): [{p(', '.join(info.depends_names))}]",
        f"  Depends on one of group(s): [{p(', '.join(info.depends_groups))}]",
        "  State scripts:",
        *(f"    {p(name)}" for name in sorted(header.scripts)),
        "",
        "Updates:",
    ]
    for payload in header.payloads:
        ti = payload.type_info
        lines += [
            f"    {payload.index}:",
            f"    Type:   {p(payload.type) if payload.type is not None else 'null'}",
        ]
        lines += ["    Provides:" if ti.provides else "    Provides: Nothing"]
        lines += [f"\t{p(k)}: {p(v)}" for k, v in sorted(ti.provides.items())]
        lines += ["    Depends:" if ti.depends else "    Depends: Nothing"]
        lines += [f"\t{p(k)}: {_depends_value(v)}" for k, v in sorted(ti.depends.items())]
        clears = ", ".join(f'"{p(c)}"' for c in ti.clears_provides or ())
        lines += [
            f"    Clears Provides: [{clears}]"
            if ti.clears_provides
            else "    Clears Provides: Nothing"
        ]
        lines += [
            f"    Metadata: {json.dumps(payload.meta_data)}"
            if payload.meta_data
            else "    Metadata: Nothing"
        ]
        lines += ["    Files:" if payload.files else "    Files: None"]
        for f in payload.files:
            lines += [
                f"      name:     {p(f.name)}",
                f"      size:     {f.size}",
                f"      checksum: {f.sha256}",
            ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pyupdate_artifact.reader import read_artifact

    bar = progress_for(Path(args.artifact), "reading", args.quiet or args.json)
    try:
        header = read_artifact(args.artifact, verify_keys=verifiers(args.key), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        json.dump(as_json(header), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_text(header))
    return 0
