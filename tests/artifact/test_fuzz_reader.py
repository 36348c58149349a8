"""The reader under random input: only ArtifactError may come out (fuzz_reader.py).

A bounded atheris (libFuzzer) session runs from a seed corpus of tiny valid
artifacts; a deterministic mutation loop covers the same ground without atheris.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_reader import make_seeds, read_everything, seeds

FUZZER = Path(__file__).with_name("fuzz_reader.py")


def test_seeds_are_valid_artifacts():
    from pyupdate_artifact.reader import read_artifact

    for name, data in seeds().items():
        import io

        assert read_artifact(io.BytesIO(data)).artifact_name == "release-1", name


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.4 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice < 0.6:
            del buf[rng.randrange(len(buf) + 1) :]
        elif choice < 0.8 and buf:
            start = rng.randrange(len(buf))
            del buf[start : start + rng.randint(1, 600)]
        else:
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = rng.randbytes(rng.randint(1, 64))
    return bytes(buf)


def test_mutated_artifacts_only_raise_artifact_errors():
    rng = random.Random(20240601)
    corpus = list(seeds().values())
    for _ in range(3000):
        read_everything(_mutate(rng, rng.choice(corpus)))


def test_bounded_atheris_run_finds_no_crash(tmp_path: Path):
    pytest.importorskip("atheris", reason="atheris is in requirements-dev.txt")
    corpus = tmp_path / "corpus"
    make_seeds(corpus)
    done = subprocess.run(
        [
            sys.executable,
            str(FUZZER),
            str(corpus),
            "-max_total_time=20",
            "-runs=200000",
            "-timeout=10",
            "-rss_limit_mb=1024",
            "-print_final_stats=1",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    tail = done.stderr[-4000:]
    assert done.returncode == 0, tail
    assert "Done" in done.stderr, tail
    assert not list(tmp_path.glob("crash-*")), tail
