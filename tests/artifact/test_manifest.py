"""`manifest`: sha256sum-style lines (mender-compat.md §1.3)."""

from __future__ import annotations

import pytest

from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.format.manifest import MAX_MANIFEST, parse_manifest, render_manifest

# The 242-byte manifest of mender-compat.md §1.10, byte for byte.
EXAMPLE = (
    b"b64e3179b9aa508d2aa57437c1e47ed505a24098bf18be3edf009510073b93d5  data/0000/rootfs.ext4\n"
    b"9220d7babd6526eb8a112bf3b99c8085c0bc108d81eb5b73b9c2f219eea23df1  header.tar.gz\n"
    b"96bcd965947569404798bcbdb614f103db5a004eb6e364cfc162c146890ea35b  version\n"
)
H = "a" * 64


def test_parse_manifest_reads_mender_artifacts_example():
    assert len(EXAMPLE) == 242
    entries = parse_manifest(EXAMPLE)
    assert list(entries) == ["data/0000/rootfs.ext4", "header.tar.gz", "version"]
    assert entries["version"].startswith("96bcd965")


def test_render_manifest_is_byte_identical_to_mender_artifact():
    entries = list(parse_manifest(EXAMPLE).items())
    assert render_manifest(entries) == EXAMPLE


def test_parse_manifest_line_order_is_free():
    lines = EXAMPLE.splitlines(keepends=True)
    assert parse_manifest(b"".join(reversed(lines))) == parse_manifest(EXAMPLE)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (EXAMPLE[:-1], "last line is not terminated"),
        (
            EXAMPLE + EXAMPLE.splitlines(keepends=True)[0],
            "duplicate entry for data/0000/rootfs.ext4",
        ),
        (f"{H} version\n".encode(), "line 1 is not"),
        (f"{H}   version\n".encode(), "line 1 is not"),
        (f"{H.upper()}  version\n".encode(), "line 1 is not"),
        (f"{H[:63]}  version\n".encode(), "line 1 is not"),
        (f"{H}  \n".encode(), "line 1 is not"),
        (f"{H}  version\n\n".encode(), "line 2 is not"),
        (f"{H}  data/0/rootfs.ext4\n".encode(), "invalid payload path data/0/rootfs.ext4"),
        (f"{H}  data/0000/sub/f\n".encode(), "invalid payload path"),
        (f"{H}  data/0000/\n".encode(), "invalid payload path"),
        (f"{H}  data/0000/a b\n".encode(), "line 1 is not"),
    ],
)
def test_parse_manifest_refuses(data: bytes, message: str):
    with pytest.raises(FormatError, match=r"^manifest: ") as err:
        parse_manifest(data)
    assert message in str(err.value)


def test_parse_manifest_refuses_absurd_size_before_parsing():
    with pytest.raises(FormatError, match=r"larger than"):
        parse_manifest(b"x" * (MAX_MANIFEST + 1))
