"""`python -m pyupdate_server.delta_generate OLD NEW OUT [--key KEY]`: one delta, made in
a child process of the delta worker (delta_worker.py) so that its CPU, memory and time
are bounded apart from the server: it lowers its own priority and caps its address space
before it imports the generator, and the worker kills it at the timeout.

Exit codes: 0 made, 3 not smaller than NEW (nothing written), 2 not installed, 1 any
other failure; the last line on stderr says why.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

NOT_SMALLER = 3
NOT_INSTALLED = 2


def _bound(nice: int, memory: int) -> None:
    if nice:
        os.nice(nice)
    if memory:
        # the generator reads both images: without a cap, a huge one could take the host
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyupdate_server.delta_generate")
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--key", type=Path, default=None)
    parser.add_argument("--nice", type=int, default=10)
    parser.add_argument("--memory", type=int, default=0, help="address space cap, bytes")
    args = parser.parse_args(argv)
    _bound(args.nice, args.memory)
    try:
        from pyupdate_host.delta import DeltaNotSmaller, make_delta
        from pyupdate_host.sign import load_signer
    except ImportError as exc:
        print(
            f"error: delta generation needs pyupdate-host with its delta module ({exc})",
            file=sys.stderr,
        )
        return NOT_INSTALLED
    try:
        signer = load_signer(args.key) if args.key is not None else None
        make_delta(args.old, args.new, args.out, signer=signer)
    except DeltaNotSmaller as exc:
        print(f"not smaller: {exc}", file=sys.stderr)
        return NOT_SMALLER
    except MemoryError:
        print(f"error: out of memory (delta_memory is {args.memory} bytes)", file=sys.stderr)
        return 1
    except Exception as exc:  # one line for the job's record; the worker logs it
        text = str(exc).strip().splitlines()
        print(f"error: {type(exc).__name__}: {text[0] if text else ''}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
