"""Read-ahead thread (prefetch.py): order kept, memory bounded, errors handed over."""

from __future__ import annotations

import io

import pytest

from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.prefetch import Prefetcher


def test_bytes_come_out_in_order_in_any_read_size():
    data = bytes(range(256)) * 5000
    source = Prefetcher(io.BytesIO(data), chunk=1000, depth=2)
    out = bytearray()
    size = 1
    while chunk := source.read(size):
        assert len(chunk) <= size
        out += chunk
        size = size * 3 % 4099 + 1
    assert bytes(out) == data
    assert source.read(10) == b""
    source.close()


def test_an_error_of_the_source_is_raised_by_the_reader():
    class Broken:
        def __init__(self):
            self.calls = 0

        def read(self, size):
            self.calls += 1
            if self.calls == 3:
                raise FormatError("data/0000.tar.gz: corrupt compressed data")
            return b"x" * size

    source = Prefetcher(Broken(), chunk=10, depth=1)
    assert source.read(10) == b"x" * 10
    assert source.read(10) == b"x" * 10
    with pytest.raises(FormatError, match="corrupt compressed data"):
        source.read(10)
    assert source.read(10) == b""
    source.close()


def test_close_stops_a_worker_blocked_on_a_full_queue():
    class Endless:
        def read(self, size):
            return b"y" * size

    source = Prefetcher(Endless(), chunk=1 << 16, depth=2)
    assert source.read(5) == b"yyyyy"
    source.close()
    source.close()  # twice is fine
