"""`write rootfs-image | module-image | bootstrap-artifact`: mender-artifact 3.9's flags."""

from __future__ import annotations

import argparse
from pathlib import Path

from pyupdate_artifact import compression
from pyupdate_artifact.errors import FormatError, InputError, UsageError
from pyupdate_artifact.format.gojson import go_json, loads_limited

from ..defaults import software_defaults
from .options import add_quiet, check_scripts, key_values, progress_for

NAME = "write"
HELP = "write an artifact"


def _common(parser: argparse.ArgumentParser, *, files: bool) -> None:
    parser.add_argument("-n", "--artifact-name", required=True, help="name of the artifact")
    parser.add_argument(
        "-t",
        "--device-type",
        action="append",
        required=True,
        help="compatible device type (repeatable)",
    )
    parser.add_argument("-o", "--output-path", required=True, help="artifact file to write")
    if files:
        parser.add_argument("-f", "--file", action="append", required=True, help="payload file")
    parser.add_argument("-k", "--key", help="private key (RSA or ECDSA P-256 PEM) to sign with")
    parser.add_argument("--compression", default=None, help=compression.cli_help())
    parser.add_argument("--compression-level", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("-p", "--provides", action="append", metavar="KEY:VALUE")
    parser.add_argument("-d", "--depends", action="append", metavar="KEY:VALUE")
    parser.add_argument("-s", "--script", action="append", help="state script (repeatable)")
    parser.add_argument("-N", "--artifact-name-depends", action="append", default=[])
    parser.add_argument("-g", "--provides-group")
    parser.add_argument("-G", "--depends-groups", action="append", default=[])
    parser.add_argument("--clears-provides", action="append", default=[])
    parser.add_argument("--no-default-clears-provides", action="store_true")
    parser.add_argument("--software-version")
    parser.add_argument("--software-name")
    parser.add_argument("--software-filesystem")
    parser.add_argument("--no-default-software-version", action="store_true")
    parser.add_argument("-v", "--version", type=int, default=3, help="artifact format version (3)")
    add_quiet(parser)


def register(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    rootfs = kinds.add_parser("rootfs-image", help="a full filesystem image for the A/B slots")
    _common(rootfs, files=True)
    rootfs.add_argument("--no-checksum-provide", action="store_true")
    rootfs.add_argument("--legacy-rootfs-image-checksum", action="store_true")
    rootfs.add_argument("-S", "--ssh-args", help=argparse.SUPPRESS)
    module = kinds.add_parser("module-image", help="files for an update module")
    _common(module, files=True)
    module.add_argument("-T", "--type", required=True, help="update module (payload type)")
    module.add_argument("-m", "--meta-data", help="JSON file stored as the payload's meta-data")
    boot = kinds.add_parser("bootstrap-artifact", help="an empty payload that seeds provides")
    _common(boot, files=False)


def _software_defaults(args: argparse.Namespace, module_type: str | None) -> tuple[dict, tuple]:
    return software_defaults(
        args.artifact_name,
        module_type,
        software_name=args.software_name,
        software_filesystem=args.software_filesystem,
        software_version=args.software_version,
        no_default_version=args.no_default_software_version,
        user_clears=tuple(args.clears_provides),
        no_default_clears=args.no_default_clears_provides,
    )


def run(args: argparse.Namespace) -> int:
    from ..sign import load_signer
    from ..writer import ArtifactSpec, PayloadSpec, write_artifact

    if args.version != 3:
        raise UsageError(f"artifact format version {args.version} is not supported (only 3)")
    kind = compression.by_id(args.compression or compression.DEFAULT)
    provides = key_values(args.provides, "--provides")
    depends: dict[str, str | list[str]] = dict(key_values(args.depends, "--depends"))
    files = tuple(Path(f) for f in getattr(args, "file", None) or ())
    for path in files:
        if not path.is_file() and not path.is_block_device():
            raise InputError(f"{path}: no such file")
    checksum_key = None
    meta: bytes | None = None
    if args.kind == "rootfs-image":
        if len(files) != 1:
            raise UsageError("rootfs-image takes exactly one --file")
        defaults, clears = _software_defaults(args, None)
        payload_type: str | None = "rootfs-image"
        meta = b""
        if not args.no_checksum_provide:
            legacy = args.legacy_rootfs_image_checksum
            checksum_key = "rootfs_image_checksum" if legacy else "rootfs-image.checksum"
    elif args.kind == "module-image":
        defaults, clears = _software_defaults(args, args.type)
        payload_type = args.type
        if args.meta_data:
            try:
                doc = loads_limited(Path(args.meta_data).read_bytes(), args.meta_data)
            except OSError as err:
                raise InputError(f"{args.meta_data}: {err.strerror}") from None
            except FormatError as err:  # the reader's limits, so what we write it reads
                raise InputError(str(err)) from None
            if not isinstance(doc, dict):
                raise InputError(f"{args.meta_data}: meta-data must be a JSON object")
            meta = go_json(doc, sort_keys=True)
    else:
        defaults, clears = {}, tuple(args.clears_provides)
        payload_type = None
    for key in defaults:
        provides.setdefault(key, defaults[key])
    spec = ArtifactSpec(
        name=args.artifact_name,
        device_types=tuple(args.device_type),
        group=args.provides_group,
        depends_names=tuple(args.artifact_name_depends),
        depends_groups=tuple(args.depends_groups),
        scripts=check_scripts(args.script),
        compression=kind,
        level=args.compression_level,
        payload=PayloadSpec(
            type=payload_type,
            files=files,
            provides=provides,
            depends=depends,
            clears_provides=clears or None,
            meta_data=meta,
            checksum_provide=checksum_key,
        ),
    )
    signer = load_signer(args.key) if args.key else None
    bar = progress_for(list(files), "writing", args.quiet) if files else None
    try:
        write_artifact(args.output_path, spec, signer, bar)
    finally:
        if bar is not None:
            bar.close()
    return 0
