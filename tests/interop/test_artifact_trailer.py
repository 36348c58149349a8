"""What follows a tar's end-of-archive marker: we accept and refuse what Debian's
mender-artifact 3.9 (Go's archive/tar) does, in the artifact and in a payload tar
(issue 16; docs/artifact-format.md#tar).

Go reads one block after the first zero block: EOF or a zero block ends the
archive, anything else is an invalid header, a part block a truncation. Past the
second zero block it reads nothing, so bytes there, zero or not, are accepted.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from pyupdate_host.cli.main import main

pytestmark = pytest.mark.peers

BLOCK = 512
JUNK = b"J" * BLOCK


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("trailer")
    (folder / "f.txt").write_text("hello\n")
    out = folder / "a.mender"
    subprocess.run(
        ["mender-artifact", "write", "module-image", "-T", "single-file", "-n", "a1",
         "-t", "dev", "-f", folder / "f.txt", "-o", out],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return out.read_bytes()


def _end(tar: bytes) -> int:
    """Offset of the first end-of-archive block (members end on a block boundary)."""
    return -(-len(tar.rstrip(b"\0")) // BLOCK) * BLOCK


def _outer(artifact: bytes, tail: bytes) -> bytes:
    return artifact[: _end(artifact)] + tail


def _inner(artifact: bytes, tail: bytes) -> bytes:
    """The artifact with data/0000.tar.gz's tar ending in `tail` instead of its trailer."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(artifact)) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as dst,
    ):
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "data/0000.tar.gz":
                raw = gzip.decompress(data)
                data = gzip.compress(raw[: _end(raw)] + tail, mtime=0)
            info = tarfile.TarInfo(member.name)
            info.size, info.mode = len(data), member.mode
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


TAILS = {
    "no trailer": b"",
    "one zero block": bytes(BLOCK),
    "two zero blocks and padding": bytes(20 * BLOCK),
    "junk instead of the second zero block": bytes(BLOCK) + JUNK,
    "a part block after the first zero block": bytes(BLOCK) + bytes(100),
    "junk after the two zero blocks": bytes(2 * BLOCK) + JUNK + b"more",
}


@pytest.mark.parametrize("where", ["artifact", "payload tar"])
@pytest.mark.parametrize("case", list(TAILS))
def test_trailer_accepted_and_refused_as_mender_artifact_does(
    capsys, tmp_path: Path, artifact: bytes, where: str, case: str
):
    build = _outer if where == "artifact" else _inner
    path = tmp_path / "t.mender"
    path.write_bytes(build(artifact, TAILS[case]))
    theirs = subprocess.run(
        ["mender-artifact", "read", path], capture_output=True, text=True, timeout=120
    )
    capsys.readouterr()
    ours = main(["validate", str(path)])
    err = capsys.readouterr().err
    assert (ours == 0) == (theirs.returncode == 0), (ours, err, theirs.stderr[-300:])
    if ours:
        assert ours == 4 and len(err.splitlines()) == 1, err
