"""atheris fuzz target for the artifact reader: any input may only raise ArtifactError.

Run by hand:  .venv/bin/python tests/artifact/fuzz_reader.py CORPUS_DIR [-max_total_time=600]
Seeds:        .venv/bin/python tests/artifact/fuzz_reader.py --make-seeds CORPUS_DIR
The test suite runs a short bounded session (test_fuzz_reader.py).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


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
