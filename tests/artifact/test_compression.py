"""Compressor registry and bounded decompressing readers (compression/)."""

from __future__ import annotations

import gzip
import io
import lzma
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import zstandard

from pyupdate_artifact import compression
from pyupdate_artifact.compression import COMPRESSIONS, by_id, by_member
from pyupdate_artifact.compression import gzip as gzip_compressor
from pyupdate_artifact.errors import FormatError, UsageError
from pyupdate_host.cli.main import build_parser

PAYLOAD = b"".join(bytes([i % 251]) * 1000 + b"text line\n" * 50 for i in range(300))


def _compressed(kind: str, data: bytes) -> bytes:
    return {
        "none": lambda d: d,
        "gzip": lambda d: gzip.compress(d, mtime=0),
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_XZ),
        "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    }[kind](data)


def _read_all(kind: str, blob: bytes, size: int = 65536) -> bytes:
    reader = by_id(kind).open_reader(io.BytesIO(blob), "data/0000.tar")
    parts = []
    while chunk := reader.read(size):
        assert len(chunk) <= size
        parts.append(chunk)
    return b"".join(parts)


def test_registry_maps_ids_and_suffixes_like_mender_artifact():
    assert {c.id: c.suffix for c in COMPRESSIONS.values()} == {
        "none": "",
        "gzip": ".gz",
        "lzma": ".xz",
        "zstd": ".zst",
    }
    assert by_member("header.tar.gz", "header.tar").id == "gzip"
    assert by_member("data/0000.tar", "data/0000.tar").id == "none"
    assert by_member("data/0001.tar.zst", "data/0001.tar").id == "zstd"


def test_unknown_compression_is_a_usage_error_naming_the_choices():
    with pytest.raises(
        UsageError, match=r"unknown compression 'bz2' \(use none\|gzip\|lzma\|zstd\)"
    ):
        by_id("bz2")


def test_unknown_suffix_is_a_format_error():
    with pytest.raises(FormatError, match=r"header.tar.bz2: unknown compression suffix '.bz2'"):
        by_member("header.tar.bz2", "header.tar")


@pytest.mark.parametrize("kind", list(COMPRESSIONS))
def test_readers_round_trip_every_compression(kind: str):
    assert _read_all(kind, _compressed(kind, PAYLOAD)) == PAYLOAD
    assert _read_all(kind, _compressed(kind, PAYLOAD), size=1)[:10] == PAYLOAD[:10]


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_small_header_compression_round_trips(kind: str):
    blob = by_id(kind).compress_small(PAYLOAD)
    assert _read_all(kind, blob) == PAYLOAD


def test_gzip_header_blob_is_reproducible_with_mtime_zero():
    blob = by_id("gzip").compress_small(b"abc")
    assert blob == by_id("gzip").compress_small(b"abc")
    assert blob[4:8] == b"\0\0\0\0"


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_reads_are_bounded_on_highly_compressed_data(kind: str):
    # 64 MiB of zeros compress to a few hundred KiB; no read may return more than asked.
    zeros = bytes(1 << 20)
    obj = {
        "gzip": lambda: zlib.compressobj(9, zlib.DEFLATED, 31),
        "lzma": lambda: lzma.LZMACompressor(lzma.FORMAT_XZ),
        "zstd": lambda: zstandard.ZstdCompressor().compressobj(),
    }[kind]()
    blob = b"".join(obj.compress(zeros) for _ in range(64)) + obj.flush()
    reader = by_id(kind).open_reader(io.BytesIO(blob), "d")
    total = 0
    while chunk := reader.read(1 << 20):
        assert len(chunk) <= 1 << 20
        total += len(chunk)
    assert total == 64 << 20


def test_concatenated_gzip_members_and_xz_streams_are_one_stream():
    assert _read_all("gzip", gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    xz = lzma.compress(b"ab") + lzma.compress(b"cd")
    assert _read_all("lzma", xz) == b"abcd"


@pytest.mark.parametrize("accel", ["1", "0"], ids=["stdlib", "accelerated"])
def test_a_member_ending_inside_a_bounded_read_is_read_once(
    accel: str, monkeypatch: pytest.MonkeyPatch
):
    # zlib leaves what follows a member in unused_data and, when the call began from
    # unconsumed_tail, a copy in unconsumed_tail: the second member came out twice.
    monkeypatch.setenv("PYUPDATE_NO_ACCEL", accel)
    first = bytes(i * 7 % 4 for i in range(1 << 20))
    blob = gzip.compress(first) + gzip.compress(b"second member")
    assert _read_all("gzip", blob) == first + b"second member"


@pytest.mark.parametrize("kind", ["gzip", "lzma"])
def test_trailing_garbage_after_the_stream_is_refused(kind: str):
    with pytest.raises(FormatError, match=r"trailing garbage"):
        _read_all(kind, _compressed(kind, PAYLOAD) + b"garbage!")


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_truncated_stream_is_refused(kind: str):
    blob = _compressed(kind, PAYLOAD)
    for cut in (1, len(blob) // 2, len(blob) - 1):
        with pytest.raises(FormatError, match=r"^data/0000.tar: "):
            _read_all(kind, blob[:cut])


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_corrupt_stream_is_refused(kind: str):
    blob = bytearray(_compressed(kind, PAYLOAD))
    blob[len(blob) // 2] ^= 0xFF
    blob[len(blob) // 2 + 1] ^= 0xFF
    with pytest.raises(FormatError, match=r"^data/0000.tar: "):
        _read_all(kind, bytes(blob))


@pytest.mark.parametrize("kind", ["gzip", "lzma", "zstd"])
def test_empty_stream_is_refused(kind: str):
    with pytest.raises(FormatError, match=r"compressed stream is empty"):
        _read_all(kind, b"")


def test_gzip_crc_mismatch_is_refused():
    blob = bytearray(gzip.compress(PAYLOAD))
    blob[-8] ^= 1
    with pytest.raises(FormatError, match=r"corrupt compressed data"):
        _read_all("gzip", bytes(blob))


def test_stdlib_is_used_when_acceleration_is_off(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYUPDATE_NO_ACCEL", "1")
    assert gzip_compressor.deflate_module() is zlib
    assert gzip_compressor.libdeflate() is None
    assert _read_all("gzip", gzip.compress(PAYLOAD)) == PAYLOAD
    monkeypatch.delenv("PYUPDATE_NO_ACCEL")
    assert gzip_compressor.deflate_module().__name__ in ("isal.isal_zlib", "zlib")


# --- the registry is the only list --------------------------------------------------------------
SOURCES = [Path(__file__).resolve().parents[2] / p for p in ("artifact_tool", "agent", "server")]
REGISTRY = Path(compression.__file__).parent


def test_every_compressor_module_is_a_registry_row_and_nothing_else_is():
    helpers = {"blocks", "multistream", "zstdframes"}  # shared plumbing, not compressors
    modules = {m.name for m in pkgutil.iter_modules(compression.__path__)} - helpers
    rows = {row.open_reader.__module__.rsplit(".", 1)[1] for row in COMPRESSIONS.values()}
    assert rows == modules
    for row in COMPRESSIONS.values():  # one module serves all three jobs of a row
        functions = (row.open_reader, row.open_encoder, row.compress_small)
        assert {f.__module__ for f in functions} == {row.open_reader.__module__}


def test_the_cli_and_the_reader_take_their_lists_from_the_registry():
    write = build_parser()._subparsers._group_actions[0].choices["write"]  # type: ignore[union-attr]
    rootfs = write._subparsers._group_actions[0].choices["rootfs-image"]  # type: ignore[union-attr]
    [option] = [a for a in rootfs._actions if "--compression" in a.option_strings]
    assert option.help == "none, gzip (default), lzma or zstd" == compression.cli_help()
    assert compression.suffixes() == ".gz|.xz|.zst"
    assert compression.DEFAULT in COMPRESSIONS


def test_no_code_outside_the_registry_branches_on_a_compression_name():
    # `if c.id == "gzip": ... elif ...` chains were what the registry replaced.
    names = "|".join(COMPRESSIONS) + "|xz"
    chain = re.compile(
        rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=)|["']\.(gz|xz|zst)["']"""
    )
    offenders = []
    for root in SOURCES:
        for path in (root / "src").rglob("*.py"):
            if path == REGISTRY / "__init__.py" or "build" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if chain.search(line):
                    offenders.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    assert offenders == []


def test_reading_imports_no_optional_package():
    # The agent reads artifacts on devices with the stdlib only: optional backends load on use.
    probe = (
        "import sys\n"
        "for name in ('isal', 'deflate', 'zstandard'):\n"
        "    sys.modules[name] = None  # an import of it now fails\n"
        "import gzip, io, lzma\n"
        "from pyupdate_artifact import compression, reader\n"
        "for kind, blob in (('gzip', gzip.compress(b'x' * 99)), ('lzma', lzma.compress(b'y'))):\n"
        "    r = compression.by_id(kind).open_reader(io.BytesIO(blob), 'd')\n"
        "    print(kind, len(r.read(1000)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["gzip", "99", "lzma", "1"]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, pyupdate_artifact.reader; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("isal", "deflate", "zstandard", "lzma", "concurrent"):
        assert f"'{name}'" not in loaded, name


def test_zstd_without_zstandard_is_one_usage_line():
    probe = (
        "import io, sys\n"
        "sys.modules['zstandard'] = None\n"
        "from pyupdate_artifact.compression import by_id\n"
        "from pyupdate_artifact.errors import UsageError\n"
        "try:\n"
        "    by_id('zstd').open_reader(io.BytesIO(b''), 'd')\n"
        "except UsageError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout == "zstd needs the 'zstandard' package (pip install zstandard)\n"
