"""Compressor registry: none, gzip, lzma (xz), zstd, by id and by member suffix.

Reading needs only the stdlib for none/gzip/lzma; zstd needs `zstandard`.
Inflate and deflate use `isal` (or `zlib-ng`) when installed, the stdlib
otherwise; PYUPDATE_NO_ACCEL=1 forces the stdlib (benchmarks, tests).
"""

from __future__ import annotations

import lzma
import os
import zlib
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol

from .errors import FormatError, UsageError
from .members import MemberInflater
from .zstdframes import FrameWalker


def deflate_module() -> ModuleType:
    """The fastest zlib-compatible module available (isal, zlib-ng, zlib)."""
    if os.environ.get("PYUPDATE_NO_ACCEL") != "1":
        try:
            from isal import isal_zlib

            return isal_zlib
        except ImportError:
            pass
        try:
            from zlib_ng import zlib_ng

            return zlib_ng
        except ImportError:
            pass
    return zlib


def libdeflate() -> ModuleType | None:
    """The `deflate` package (libdeflate): zlib's ratio at 3-4x its speed, inflate at 4x."""
    if os.environ.get("PYUPDATE_NO_ACCEL") == "1":
        return None
    try:
        import deflate
    except ImportError:
        return None
    return deflate


class ByteSource(Protocol):
    def read(self, size: int, /) -> bytes: ...


RAW_CHUNK = 1 << 18


class _Inflater:
    """Bounded reads from concatenated compressed members (gzip members, xz streams).

    Output per read is capped so that a highly compressed run (a GiB of zeros)
    never lands in memory at once. Anything after a member that does not start
    a new member is an error, as in Go's multistream readers.
    """

    def __init__(self, raw: ByteSource, new_obj, magic: bytes, where: str, lzma_like: bool) -> None:
        self._raw = raw
        self._new = new_obj
        self._magic = magic
        self._where = where
        self._lzma = lzma_like
        self._obj = new_obj()
        self._buf = b""
        self._started = False

    def _fail(self, err: Exception) -> FormatError:
        return FormatError(f"{self._where}: corrupt compressed data ({err})")

    def read(self, size: int) -> bytes:
        while True:
            obj = self._obj
            if obj.eof:
                leftover = obj.unused_data + self._buf
                self._buf = b""
                if not leftover:
                    leftover = self._raw.read(RAW_CHUNK)
                if not leftover:
                    return b""
                if not leftover.startswith(self._magic[: len(leftover)]):
                    raise FormatError(f"{self._where}: trailing garbage after compressed data")
                self._obj = self._new()
                self._buf = leftover
                continue
            if self._lzma and not obj.needs_input:
                data = b""
            else:
                data = self._buf or self._raw.read(RAW_CHUNK)
                self._buf = b""
                if not data:
                    what = "truncated" if self._started else "empty"
                    raise FormatError(f"{self._where}: compressed stream is {what}")
            self._started = True
            try:
                out = obj.decompress(data, size)
            except Exception as err:  # zlib.error, LZMAError, isal's IsalError: no common base
                raise self._fail(err) from None
            if not self._lzma:
                self._buf = obj.unconsumed_tail
            if out:
                return out


class _ZstdReader:
    def __init__(self, raw: ByteSource, where: str) -> None:
        zstd = _zstandard()
        self._where = where
        self._error = zstd.ZstdError
        # The walker sees every compressed byte: the decompressor ends a cut frame
        # as if the stream were complete, the walker's frame boundaries do not.
        self._frames = FrameWalker(raw, where)
        self._reader = zstd.ZstdDecompressor().stream_reader(
            self._frames, read_size=RAW_CHUNK, read_across_frames=True
        )

    def read(self, size: int) -> bytes:
        try:
            out = self._reader.read(size)
        except self._error as err:
            raise FormatError(f"{self._where}: corrupt compressed data ({err})") from None
        if not out and size:
            self._frames.check_end()
        return out


@dataclass(frozen=True, slots=True)
class Compression:
    """One entry of the registry: CLI id and member suffix."""

    id: str
    suffix: str

    def open_reader(self, raw: ByteSource, member: str) -> ByteSource:
        """Decompressed view of `raw`; reads return at most the size asked for."""
        if self.id == "none":
            return raw
        if self.id == "gzip":
            module = deflate_module()

            def stream(rest: ByteSource) -> ByteSource:
                return _Inflater(rest, lambda: module.decompressobj(31), b"\x1f\x8b", member, False)

            return MemberInflater(raw, member, module, libdeflate(), stream)
        if self.id == "lzma":
            return _Inflater(
                raw, lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ), b"\xfd7zXZ\x00", member, True
            )
        return _ZstdReader(raw, member)


def _zstandard() -> ModuleType:
    try:
        import zstandard
    except ImportError:
        raise UsageError("zstd needs the 'zstandard' package (pip install zstandard)") from None
    return zstandard


COMPRESSIONS: dict[str, Compression] = {
    "none": Compression("none", ""),
    "gzip": Compression("gzip", ".gz"),
    "lzma": Compression("lzma", ".xz"),
    "zstd": Compression("zstd", ".zst"),
}
_BY_SUFFIX = {c.suffix: c for c in COMPRESSIONS.values()}


def by_id(name: str) -> Compression:
    try:
        return COMPRESSIONS[name]
    except KeyError:
        known = "|".join(COMPRESSIONS)
        raise UsageError(f"unknown compression {name!r} (use {known})") from None


def by_member(member: str, base: str) -> Compression:
    """`header.tar.gz` with base `header.tar` -> gzip; unknown suffix is a FormatError."""
    suffix = member[len(base) :]
    try:
        return _BY_SUFFIX[suffix]
    except KeyError:
        raise FormatError(f"{member}: unknown compression suffix {suffix!r}") from None


def compress_small(compression: Compression, data: bytes) -> bytes:
    """Whole-buffer compression for the header (a few KiB)."""
    if compression.id == "none":
        return data
    if compression.id == "gzip":
        return _gzip_member(data)
    if compression.id == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_XZ, preset=6)
    return _zstandard().ZstdCompressor(level=3).compress(data)


def _gzip_member(data: bytes) -> bytes:
    # mtime 0 and no name: reproducible header blobs, like mender-artifact's stream entries.
    obj = zlib.compressobj(6, zlib.DEFLATED, 31)
    return obj.compress(data) + obj.flush()
