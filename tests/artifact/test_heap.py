"""heap.py: glibc keeps freed pipeline buffers (the CI machines run glibc)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from pyupdate_artifact.heap import keep_freed_buffers


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_takes_the_thresholds():
    assert ctypes.util.find_library("c")
    assert keep_freed_buffers() is True
    assert keep_freed_buffers() is True  # cached: set once per process
