"""atheris fuzz target for the artifact reader: any input may only raise ArtifactError.

Run by hand:  .venv/bin/python tests/artifact/fuzz_reader.py CORPUS_DIR [-max_total_time=600]
Seeds:        .venv/bin/python tests/artifact/fuzz_reader.py --make-seeds CORPUS_DIR
The test suite runs a short bounded session (test_fuzz_reader.py).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path


def read_everything(data: bytes) -> None:
    """What the CLI's validate does, on an in-memory stream; ArtifactError is the only way out."""
    from pyupdate_artifact.errors import ArtifactError
    from pyupdate_artifact.reader import ArtifactReader

    try:
        reader = ArtifactReader(io.BytesIO(data))
        reader.read_header()
        reader.read_payloads(None)
    except ArtifactError as err:
        text = str(err)
        if not text or "\n" in text:
            raise AssertionError(f"error message is not one line: {text!r}") from None


def seeds() -> dict[str, bytes]:
    """Tiny valid artifacts: every compression, a module with meta-data and scripts, bootstrap."""
    # beside this file: on sys.path as the script's folder, and as the test's under pytest
    from artifact_helpers import Parts

    found = {}
    for suffix in ("", ".gz", ".xz", ".zst"):
        found[f"rootfs{suffix or '.none'}"] = Parts(suffix=suffix).build()
    module = Parts(
        files={"a.txt": b"A", "b.conf": b"key=value\n" * 3},
        type_info={
            "type": "single-file",
            "artifact_provides": {"k": "v"},
            "clears_artifact_provides": ["k*"],
        },
        meta_data=b'{"n":1}',
        scripts={"ArtifactInstall_Enter_00": b"#!/bin/sh\n"},
        suffix="",
    )
    found["module"] = module.build()
    boot = Parts(files={}, type_info={"type": None}, meta_data=None)
    boot.header_info["payloads"] = [{"type": None}]
    found["bootstrap"] = boot.build()
    found.update(written_seeds())
    return found


def written_seeds() -> dict[str, bytes]:
    """Artifacts from our own writer: framed gzip members (stored, text and zeros runs) and zstd frames."""
    import os
    import tempfile

    from pyupdate_artifact.compression import by_id
    from pyupdate_host.defaults import rootfs_payload
    from pyupdate_host.writer import ArtifactSpec, write_artifact

    found = {}
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder, "rootfs.ext4")
        # 64 KiB segments of each kind, so the gzip block has stored and deflated members
        image.write_bytes(os.urandom(1 << 16) + bytes(1 << 16) + b"line of text\n" * 5000)
        for compression in ("gzip", "zstd"):
            out = Path(folder, f"{compression}.mender")
            spec = ArtifactSpec(
                name="release-1",
                device_types=("qemux86-64",),
                payload=rootfs_payload(image, "release-1"),
                compression=by_id(compression),
            )
            write_artifact(out, spec)
            found[f"written.{compression}"] = out.read_bytes()
    return found


def make_seeds(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (folder / name).write_bytes(data)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--make-seeds":
        make_seeds(Path(sys.argv[2]))
        return
    import atheris

    with atheris.instrument_imports(include=["pyupdate_artifact"]):
        import pyupdate_artifact.reader  # noqa: F401

    atheris.Setup(sys.argv, read_everything)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
