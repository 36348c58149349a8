"""Tar members (tarsafe.py): Go's layout on write; only safe regular files on read."""

from __future__ import annotations

import io
import tarfile

import pytest
from artifact_helpers import tar_bytes

from pyupdate_artifact import tarsafe
from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.tarsafe import BLOCK, TarReader, member_header, pax_filler


def _go_version_header() -> bytes:
    """The first header block of mender-compat.md §1.10, field by field."""
    block = bytearray(BLOCK)
    block[0:7] = b"version"
    block[100:108] = b"0000600\0"
    block[108:116] = b"0000000\0"
    block[116:124] = b"0000000\0"
    block[124:136] = b"00000000037\0"
    block[136:148] = b"00000000000\0"
    block[148:156] = b"010605\0 "
    block[156] = ord("0")
    block[257:265] = b"ustar\x0000"
    block[329:345] = b"0000000\0" * 2  # devmajor, devminor
    return bytes(block)


def test_member_header_is_byte_identical_to_go_archive_tar():
    assert member_header("version", 31) == _go_version_header()


def _read_all(data: bytes, **kwargs) -> list[tuple[str, bytes]]:
    reader = TarReader(io.BytesIO(data), "t", **kwargs)
    found = []
    while (m := reader.next_member()) is not None:
        found.append((m.name, tarsafe.read_exact(reader, m.size, m.name)))
    return found


def test_members_round_trip_and_python_tarfile_agrees():
    members = [("a", b""), ("b/c", b"x" * 511), ("d", b"y" * 513), ("e" * 99, b"z")]
    data = tar_bytes(members)
    assert _read_all(data) == members
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == members


def test_long_names_go_into_the_ustar_prefix():
    name = "d" * 120 + "/" + "f" * 90
    data = tar_bytes([(name, b"1")])
    assert _read_all(data) == [(name, b"1")]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == [name]


def test_member_header_refuses_names_ustar_cannot_hold():
    with pytest.raises(FormatError, match=r"too long"):
        member_header("x" * 101, 1)


def test_sizes_of_8_gib_and_more_use_base_256_like_go():
    size = 9 << 30
    block = member_header("big", size)
    assert block[124] == 0x80
    info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    assert info.size == size
    reader = TarReader(io.BytesIO(block), "t")
    assert reader.next_member().size == size


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_reads_every_tar_dialect_python_writes(fmt: int):
    buf = io.BytesIO()
    long_name = "n" * 150  # pax path record / GNU longname / ustar prefix... (ustar: no slash)
    names = ["plain", long_name if fmt != tarfile.USTAR_FORMAT else "p" * 90 + "/" + "q" * 60]
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 3
            info.uname = "ü" * 40  # forces a pax record in PAX format
            tar.addfile(info, io.BytesIO(b"abc"))
    assert _read_all(buf.getvalue()) == [(n, b"abc") for n in names]


def test_pax_filler_has_the_exact_size_and_every_reader_skips_it():
    for total in (1024, 1536, 4096, 16384, 10 * BLOCK + 9 * 1024):
        filler = pax_filler(total, "data/0000.tar.gz")
        assert len(filler) == total
        data = filler + tarsafe.member("data/0000.tar.gz", b"abc") + tarsafe.end_of_archive()
        assert _read_all(data) == [("data/0000.tar.gz", b"abc")]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert tar.getnames() == ["data/0000.tar.gz"]
    with pytest.raises(ValueError):
        pax_filler(512, "x")
    with pytest.raises(ValueError):
        pax_filler(1500, "x")


# --- refusals ----------------------------------------------------------------------
def _tarfile_member(name: str, kind: bytes, linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info.tobuf(tarfile.USTAR_FORMAT)


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        (tarfile.SYMTYPE, "symlink"),
        (tarfile.LNKTYPE, "hard link"),
        (tarfile.DIRTYPE, "directory"),
        (tarfile.CHRTYPE, "special file"),
        (tarfile.BLKTYPE, "special file"),
        (tarfile.FIFOTYPE, "special file"),
    ],
)
def test_refuses_links_directories_and_devices(kind: bytes, what: str):
    data = _tarfile_member(
        "version", kind, "/etc/passwd"
    )  # tarfile adds '/' to dirs + tarsafe.end_of_archive()
    with pytest.raises(FormatError, match=f"'version/?' is a {what}; only regular files"):
        _read_all(data)


def test_skips_directories_only_when_asked():
    data = _tarfile_member("headers/", tarfile.DIRTYPE) + tar_bytes([("headers/0000/x", b"1")])
    assert _read_all(data, skip_dirs=True) == [("headers/0000/x", b"1")]


@pytest.mark.parametrize(
    "name", ["/etc/passwd", "../x", "a/../../x", "./version", "a//b", "a/.", "a\\b", "data/"]
)
def test_refuses_unsafe_names(name: str):
    with pytest.raises(FormatError, match=r"unsafe member name"):
        _read_all(tar_bytes([(name, b"1")]))


def test_refuses_unsafe_names_hidden_in_pax_and_gnu_records():
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            info = tarfile.TarInfo("../" + "x" * 120)
            tar.addfile(info, io.BytesIO(b""))
        with pytest.raises(FormatError, match=r"unsafe member name"):
            _read_all(buf.getvalue())


def test_refuses_a_corrupt_header_checksum():
    data = bytearray(tar_bytes([("version", b"abc")]))
    data[0] ^= 0x20
    with pytest.raises(FormatError, match=r"checksum mismatch"):
        _read_all(bytes(data))


def test_refuses_a_corrupt_size_field():
    block = bytearray(member_header("version", 3))
    block[124:136] = b"0000000009x\0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    with pytest.raises(FormatError, match=r"bad number"):
        _read_all(bytes(block))


@pytest.mark.parametrize("cut", [1, 100, 511, 512, 513, 700, 1023])
def test_refuses_truncation_inside_a_header_or_member(cut: int):
    data = tar_bytes([("a", b"x" * 600)])
    with pytest.raises(FormatError, match=r"unexpected end of data"):
        _read_all(data[:cut])


def test_a_missing_trailer_ends_the_archive_like_go():
    assert _read_all(tar_bytes([("a", b"1")], trailer=False)) == [("a", b"1")]


def test_refuses_absurd_extended_header_sizes_before_reading_them():
    block = member_header("PaxHeaders/x", 1 << 40, kind=b"x")
    with pytest.raises(FormatError, match=r"extended header of 1099511627776 bytes is too large"):
        _read_all(block)


@pytest.mark.parametrize(
    "record", [b"zz path=x\n", b"99 path=x\n", b"8 pathx\n", b"0 \n", b"nospace"]
)
def test_refuses_corrupt_pax_records(record: bytes):
    data = member_header("PaxHeaders/x", len(record), kind=b"x") + record
    data += bytes(-len(record) % BLOCK) + tar_bytes([("a", b"1")])
    with pytest.raises(FormatError, match=r"corrupt pax"):
        _read_all(data)


def test_read_member_refuses_members_over_the_limit_before_reading():
    reader = TarReader(io.BytesIO(member_header("manifest", 1 << 40)), "artifact")
    member = reader.next_member()
    with pytest.raises(FormatError, match=r"manifest is 1099511627776 bytes, more than 1024"):
        reader.read_member(member, 1024)


def test_next_member_refuses_to_skip_unread_data():
    reader = TarReader(io.BytesIO(tar_bytes([("a", b"12"), ("b", b"")])), "t")
    reader.next_member()
    with pytest.raises(FormatError, match=r"not fully read"):
        reader.next_member()
