"""Tar members, read and written by hand: regular files only, safe names, size caps.

The outer artifact and its inner tars are plain POSIX tar. We parse headers
ourselves (instead of `tarfile`) to refuse links, devices, absolute and `..`
names early, to cap sizes before anything is allocated, and to stream member
data straight to a hash and a sink. See docs/artifact-format.md#tar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .errors import FormatError

BLOCK = 512
_REGULAR = (b"0", b"\0", b"7")
_MAX_PAX = 1 << 20
_TRAILER_CHUNK = 64 << 10


class ByteSource(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    size: int


def read_exact(src: ByteSource, size: int, what: str) -> bytes:
    data = src.read(size)
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = src.read(size - got)
        if not more:
            raise FormatError(f"{what}: unexpected end of data (truncated artifact?)")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _octal(field: bytes, what: str) -> int:
    if field and field[0] & 0x80:  # base-256, used for sizes of 8 GiB and more
        value = int.from_bytes(field[1:], "big") | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise FormatError(f"{what}: corrupt tar header (bad number)") from None


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156]
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:])
    try:
        return _octal(stored, "tar") == unsigned
    except FormatError:
        return False


def check_name(name: str, where: str) -> None:
    if not name or name.startswith("/") or "\\" in name:
        raise FormatError(f"{where}: unsafe member name {name!r}")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise FormatError(f"{where}: unsafe member name {name!r}")


def _parse_pax(data: bytes, where: str) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise FormatError(f"{where}: corrupt pax header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise FormatError(f"{where}: corrupt pax header") from None
        record = data[space + 1 : pos + length]
        if length <= 0 or pos + length > len(data) or not record.endswith(b"\n"):
            raise FormatError(f"{where}: corrupt pax header")
        key, sep, value = record[:-1].partition(b"=")
        if not sep:
            raise FormatError(f"{where}: corrupt pax header")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return records


class TarReader:
    """Iterates the regular-file members of one tar stream, in order.

    `next_member()` returns the next Member or None at the end; the caller
    then reads exactly `size` bytes with `read(n)` before asking again.
    """

    def __init__(self, src: ByteSource, where: str, *, skip_dirs: bool = False) -> None:
        self._src = src
        self._where = where
        self._skip_dirs = skip_dirs
        self._left = 0
        self._pad = 0
        self.ended = False

    def next_member(self) -> Member | None:
        if self._left:
            raise FormatError(f"{self._where}: member not fully read")
        if self._pad:
            read_exact(self._src, self._pad, self._where)
            self._pad = 0
        pax: dict[str, str] = {}
        long_name: str | None = None
        while True:
            block = self._src.read(BLOCK)
            if not block:
                # Go's reader also takes EOF at a header boundary as the end; missing
                # members are caught by the manifest check instead.
                self.ended = True
                return None
            if len(block) < BLOCK:
                block += read_exact(self._src, BLOCK - len(block), self._where)
            if block == bytes(BLOCK):
                self._end_of_archive()
                self.ended = True
                return None
            if not _checksum_ok(block):
                raise FormatError(f"{self._where}: corrupt tar header (checksum mismatch)")
            kind = block[156:157]
            size = _octal(block[124:136], self._where)
            if kind in (b"x", b"g", b"L"):
                if size > _MAX_PAX:
                    raise FormatError(
                        f"{self._where}: extended header of {size} bytes is too large"
                    )
                data = read_exact(self._src, size, self._where)
                read_exact(self._src, -size % BLOCK, self._where)
                if kind == b"x":
                    pax.update(_parse_pax(data, self._where))
                elif kind == b"L":
                    long_name = data.split(b"\0", 1)[0].decode("utf-8", "replace")
                continue
            name = long_name or _header_name(block)
            name = pax.get("path", name)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise FormatError(f"{self._where}: corrupt pax size") from None
            if kind == b"5" and self._skip_dirs:
                read_exact(self._src, size + (-size % BLOCK), self._where)
                pax, long_name = {}, None
                continue
            if kind not in _REGULAR:
                what = {b"1": "hard link", b"2": "symlink", b"5": "directory"}.get(
                    kind, "special file"
                )
                raise FormatError(
                    f"{self._where}: {name!r} is a {what}; only regular files are allowed"
                )
            if size < 0:
                raise FormatError(f"{self._where}: {name!r} has a negative size")
            check_name(name, self._where)
            self._left = size
            self._pad = -size % BLOCK
            return Member(name, size)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes of the current member ('' at its end)."""
        size = min(size, self._left)
        if size <= 0:
            return b""
        data = self._src.read(size)
        if not data:
            raise FormatError(f"{self._where}: unexpected end of data (truncated artifact?)")
        self._left -= len(data)
        return data

    def read_member(self, member: Member, limit: int) -> bytes:
        if member.size > limit:
            raise FormatError(
                f"{self._where}: {member.name} is {member.size} bytes, more than {limit}"
            )
        data = read_exact(self, member.size, f"{self._where}: {member.name}")
        return data

    def finish(self) -> None:
        """Consume what follows the end-of-archive marker (record padding, or anything:
        Go's reader, and so mender-artifact, never reads past the two zero blocks)."""
        while self._src.read(_TRAILER_CHUNK):
            pass

    def _end_of_archive(self) -> None:
        """After the first zero block: EOF, or a second zero block; as Go's archive/tar."""
        block = self._src.read(BLOCK)
        if not block:
            return
        if len(block) < BLOCK:
            block += read_exact(self._src, BLOCK - len(block), self._where)
        if block != bytes(BLOCK):
            raise FormatError(
                f"{self._where}: data after the tar's end-of-archive marker"
                " (a zero block must follow the first one)"
            )


def _header_name(block: bytes) -> str:
    name = block[0:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0] if block[257:262] == b"ustar" else b""
    if prefix:
        name = prefix + b"/" + name
    return name.decode("utf-8", "replace")


def member_header(
    name: str, size: int, *, mode: int = 0o600, mtime: int = 0, kind: bytes = b"0"
) -> bytes:
    """One ustar header block, laid out as Go's archive/tar writes it."""
    raw = name.encode()
    prefix = b""
    if len(raw) > 100:
        head, _, tail = raw.rpartition(b"/")
        if not head or len(tail) > 100 or len(head) > 155:
            raise FormatError(f"member name too long for ustar: {name}")
        prefix, raw = head, tail
    # base-256 for sizes of 8 GiB and more, as Go and GNU tar write them
    small = size < 8**11
    size_field = b"%011o\0" % size if small else bytes([0x80]) + size.to_bytes(11, "big")
    block = bytearray(BLOCK)
    block[0 : len(raw)] = raw
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = size_field
    block[136:148] = b"%011o\0" % mtime
    block[156:157] = kind
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    # Go writes devmajor/devminor as octal zeros even for regular files; so do we, so
    # that our tar headers (and header.tar.gz) are byte-identical to mender-artifact's.
    block[329:337] = b"0000000\0"
    block[337:345] = b"0000000\0"
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def pax_filler(total: int, name: str) -> bytes:
    """A pax extended header of exactly `total` bytes (a multiple of 512, >= 1024).

    It carries only a `comment` record, which every tar reader ignores; the
    writer uses it to fill the room reserved in front of the payload member.
    """
    if total < 2 * BLOCK or total % BLOCK:
        raise ValueError("pax filler must be a multiple of 512 and at least 1024")
    body_len = total - BLOCK
    # record: "<len> comment=<x...>\n" whose decimal <len> counts itself
    for digits in range(1, 10):
        fill = body_len - digits - len(" comment=\n")
        if fill >= 0 and len(str(body_len)) == digits:
            break
    record = f"{body_len} comment={'x' * fill}\n".encode()
    assert len(record) == body_len
    return member_header(f"PaxHeaders/{name}"[-100:], body_len, kind=b"x") + record


def member(name: str, data: bytes, *, mode: int = 0o600, mtime: int = 0) -> bytes:
    """Header, data and padding of one small member."""
    return member_header(name, len(data), mode=mode, mtime=mtime) + data + bytes(-len(data) % BLOCK)


def end_of_archive() -> bytes:
    return bytes(2 * BLOCK)
