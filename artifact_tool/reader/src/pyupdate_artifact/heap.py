"""Keep freed buffers in the process heap instead of handing them back to the kernel.

Every chunk this pipeline reads, inflates or joins is a fresh ~1 MiB bytes
object. glibc serves those from mmap (or trims its heap when they are freed),
so each one is faulted in again page by page: ~300 000 page faults and ~1 s
of kernel time per GiB, a third of a gzip write. Raising glibc's mmap and
trim thresholds keeps them in the heap for reuse; the live set stays a few
dozen MiB, so nothing grows. Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import functools

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_MAX = 32 << 20  # glibc's ceiling for the mmap threshold on 64-bit
_TRIM = 256 << 20


@functools.cache
def keep_freed_buffers() -> bool:
    """True when glibc took the settings; call once, early, from a CLI entry point."""
    # The process's own symbols (dlopen(NULL)) hold libc's; find_library("c")
    # would run ldconfig, ~10 ms of a short command's start.
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM))
