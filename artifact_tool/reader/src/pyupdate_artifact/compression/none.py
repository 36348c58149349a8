"""No compression (`data/0000.tar`, `header.tar`): the bytes pass through."""

from __future__ import annotations

from collections.abc import Callable

from ..tarsafe import ByteSource

CHUNK = 1 << 20


def open_reader(raw: ByteSource, where: str) -> ByteSource:
    return raw


def compress_small(data: bytes) -> bytes:
    return data


class _Plain:
    block = CHUNK

    def __init__(self, out: Callable[[bytes], None]) -> None:
        self.write = out

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def open_encoder(out: Callable[[bytes], None], level: int | None = None) -> _Plain:
    return _Plain(out)
