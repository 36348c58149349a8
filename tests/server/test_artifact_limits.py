"""An artifact whose header JSON nests 100,000 deep is refused with one line, not a 500.

The reader's own limit (32 levels, docs/artifact-format.md#limits) refuses it like any
other invalid artifact: 422, nothing stored."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile

import pytest
from server_helpers import upload


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def deep_header_artifact(path, depth: int = 100_000):  # type: ignore[no-untyped-def]
    header_info = (
        b'{"payloads": ' + b"[" * depth + b"]" * depth + b', "artifact_provides": '
        b'{"artifact_name": "deep"}, "artifact_depends": {"device_type": ["qemux86-64"]}}'
    )
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w") as tar:
        _member(tar, "header-info", header_info)
    header = gzip.compress(inner.getvalue())
    version = b'{"format":"mender","version":3}'
    manifest = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
        for name, data in (("header.tar.gz", header), ("version", version))
    ).encode()
    with tarfile.open(path, "w") as tar:
        _member(tar, "version", version)
        _member(tar, "manifest", manifest)
        _member(tar, "header.tar.gz", header)
    return path


@pytest.mark.parametrize("depth", [100_000, 3_000])
def test_deep_header_json_is_422_with_one_line(client, admin, tmp_path, depth):
    r = upload(client, admin, deep_header_artifact(tmp_path / "deep.mender", depth))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == ("artifact rejected: header-info: JSON nests deeper than 32 levels")
    assert client.get("/api/management/v1/deployments/artifacts", headers=admin).json() == []
