"""The `version` member (mender-compat.md §1.2)."""

from __future__ import annotations

import hashlib

import pytest
from artifact_helpers import VERSION_SHA

from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.format.version import VERSION_BYTES, parse_version


def test_version_bytes_are_mender_artifacts_31_bytes():
    assert VERSION_BYTES == b'{"format":"mender","version":3}'
    assert len(VERSION_BYTES) == 31
    assert hashlib.sha256(VERSION_BYTES).hexdigest() == VERSION_SHA


def test_parse_version_accepts_v3_with_any_whitespace():
    assert parse_version(VERSION_BYTES) == 3
    assert parse_version(b'{\n  "version": 3,\n  "format": "mender"\n}\n') == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"format":"mender","version":1}', "unsupported artifact format version 1"),
        (b'{"format":"mender","version":2}', "unsupported artifact format version 2"),
        (b'{"format":"mender","version":4}', "unsupported artifact format version 4"),
        (b'{"format":"mender","version":"3"}', "unsupported artifact format version '3'"),
        (b'{"format":"mender","version":true}', "unsupported artifact format version True"),
        (b'{"format":"mender","version":3.0}', "unsupported"),
        (b'{"format":"rauc","version":3}', "unknown format 'rauc'"),
        (b'{"format":"mender","version":3,"x":1}', "exactly the keys"),
        (b'{"format":"mender"}', "exactly the keys"),
        (b"[3]", "exactly the keys"),
        (b'{"format":"mender","version":3', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_parse_version_refuses(data: bytes, message: str):
    with pytest.raises(FormatError, match=r"^version: ") as err:
        parse_version(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
