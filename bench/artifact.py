#!/usr/bin/env python3
"""pyupdate-artifact against Debian's mender-artifact 3.9, in the same run (issue 3).

Run by hand from the repo root: `.venv/bin/python bench/artifact.py [--runs 3]`.
Inputs are cached under bench/work/ (gitignored):
  img1g.ext4   the 1 GiB benchmark image: MiB i is random if i%3==0, zeros if 1,
               the repeated 63-byte text line if 2 (../shared/reference/perf-baselines.md)
  rootfs.ext4  an ext4 of a Debian bookworm minbase rootfs (mmdebstrap + mkfs.ext4 -d)
  big4g.img    4 GiB, mostly holes, for the peak-RSS check only
Each command runs under GNU `/usr/bin/time -v` (wall, user+sys, max RSS); the
median of --runs is reported, with the CPU other processes used meanwhile so
a noisy run can be told apart. Results go to bench/results/artifact-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
PY_TOOL = str(ROOT / ".venv" / "bin" / "pyupdate-artifact")
MENDER = "mender-artifact"
MIB = 1 << 20
LINE = b"    def update(self, data: bytes) -> None:  # hash the payload\n"


# --- inputs -----------------------------------------------------------------------
def bench_image(path: Path, mib: int = 1024) -> Path:
    if path.exists() and path.stat().st_size == mib * MIB:
        return path
    text = (LINE * (MIB // len(LINE) + 1))[:MIB]
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as out:
        for i in range(mib):
            out.write(os.urandom(MIB) if i % 3 == 0 else bytes(MIB) if i % 3 == 1 else text)
    tmp.rename(path)
    return path


def rootfs_image(path: Path) -> Path:
    if path.exists():
        return path
    tree = WORK / "rootfs-tree"  # cached: mmdebstrap takes a minute and needs the mirror
    if not tree.exists():
        partial = WORK / "rootfs-tree.partial"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--mode=root",
                "--format=directory",
                "bookworm",
                str(partial),
            ],
            check=True,
        )
        partial.rename(tree)
    used = int(
        subprocess.run(
            ["du", "-sb", str(tree)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    size_mib = used * 14 // 10 // MIB + 64
    tmp = path.with_suffix(".partial")
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(tree), "-L", "rootfs", str(tmp), f"{size_mib}M"],
        check=True,
        env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
    )
    tmp.rename(path)
    return path


def sparse_image(path: Path, gib: int = 4) -> Path:
    """4 GiB, a random MiB every 256 MiB and holes elsewhere: enough to watch RSS."""
    if path.exists() and path.stat().st_size == gib << 30:
        return path
    with open(path, "wb") as out:
        out.truncate(gib << 30)
        for offset in range(0, gib << 30, 256 * MIB):
            out.seek(offset)
            out.write(os.urandom(MIB))
    return path


def keys() -> tuple[Path, Path]:
    key, pub = WORK / "rsa.key", WORK / "rsa.pub"
    if not key.exists():
        subprocess.run(
            ["openssl", "genrsa", "-traditional", "-out", str(key), "3072"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)],
            check=True,
            capture_output=True,
        )
    return key, pub


# --- measuring -----------------------------------------------------------------------
@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    foreign: float  # share of the machine other processes used during the run


def _busy_jiffies() -> int:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle


def _parse_time(text: str) -> tuple[float, float, float]:
    def grab(label: str) -> str:
        match = re.search(rf"^\s*{re.escape(label)}: (.+)$", text, re.M)
        if match is None:
            raise RuntimeError(f"time -v output lacks {label!r}:\n{text}")
        return match.group(1).strip()

    wall_text = grab("Elapsed (wall clock) time (h:mm:ss or m:ss)")
    wall = 0.0
    for part in wall_text.split(":"):
        wall = wall * 60 + float(part)
    cpu = float(grab("User time (seconds)")) + float(grab("System time (seconds)"))
    rss = int(grab("Maximum resident set size (kbytes)")) / 1024
    return wall, cpu, rss


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    hz = os.sysconf("SC_CLK_TCK")
    before = _busy_jiffies()
    start = time.monotonic()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    elapsed = time.monotonic() - start
    busy = (_busy_jiffies() - before) / hz
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    wall, cpu, rss = _parse_time(done.stderr)
    foreign = max(0.0, busy - cpu) / max(elapsed * os.cpu_count(), 1e-9)
    return Run(wall, cpu, rss, foreign)


@dataclass
class Row:
    tool: str
    op: str
    runs: list[Run]
    out_bytes: int | None
    mib: float

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def best(self) -> float:
        return min(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def rss(self) -> float:
        return max(r.rss_mib for r in self.runs)

    @property
    def foreign(self) -> float:
        return max(r.foreign for r in self.runs)


def bench_input(image: Path, runs: int, key: Path, pub: Path) -> dict[tuple[str, str], Row]:
    mib = image.stat().st_size / MIB
    out = WORK / "out"
    out.mkdir(exist_ok=True)
    write = [
        "write",
        "rootfs-image",
        "-f",
        str(image),
        "-n",
        "r1",
        "-t",
        "qemux86-64",
        "-k",
        str(key),
    ]
    stdlib = {"PYUPDATE_NO_ACCEL": "1"}
    plan: list[tuple[str, str, list[str], dict | None, Path | None]] = [
        (
            "mender-artifact",
            "write gzip",
            [
                MENDER,
                *write,
                "--compression",
                "gzip",
                "--no-progress",
                "-o",
                str(out / "m-gzip.mender"),
            ],
            None,
            out / "m-gzip.mender",
        ),
        (
            "mender-artifact",
            "write none",
            [
                MENDER,
                *write,
                "--compression",
                "none",
                "--no-progress",
                "-o",
                str(out / "m-none.mender"),
            ],
            None,
            out / "m-none.mender",
        ),
        (
            "pyupdate",
            "write gzip",
            [PY_TOOL, *write, "--compression", "gzip", "-o", str(out / "p-gzip.mender")],
            None,
            out / "p-gzip.mender",
        ),
        (
            "pyupdate",
            "write zstd",
            [PY_TOOL, *write, "--compression", "zstd", "-o", str(out / "p-zstd.mender")],
            None,
            out / "p-zstd.mender",
        ),
        (
            "pyupdate",
            "write none",
            [PY_TOOL, *write, "--compression", "none", "-o", str(out / "p-none.mender")],
            None,
            out / "p-none.mender",
        ),
        (
            "pyupdate stdlib",
            "write gzip",
            [PY_TOOL, *write, "--compression", "gzip", "-o", str(out / "s-gzip.mender")],
            stdlib,
            out / "s-gzip.mender",
        ),
        (
            "mender-artifact",
            "validate gzip",
            [MENDER, "validate", str(out / "m-gzip.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "mender-artifact",
            "read gzip",
            [MENDER, "read", str(out / "m-gzip.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "pyupdate",
            "validate gzip",
            [PY_TOOL, "validate", str(out / "p-gzip.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "pyupdate",
            "read gzip",
            [PY_TOOL, "read", str(out / "p-gzip.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "pyupdate",
            "validate zstd",
            [PY_TOOL, "validate", str(out / "p-zstd.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "pyupdate",
            "validate none",
            [PY_TOOL, "validate", str(out / "p-none.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "mender-artifact",
            "validate none",
            [MENDER, "validate", str(out / "m-none.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "pyupdate stdlib",
            "validate gzip",
            [PY_TOOL, "validate", str(out / "p-gzip.mender"), "-k", str(pub)],
            stdlib,
            None,
        ),
        # cross-checks: each tool validates the other's artifact (not timed for the goals)
        (
            "pyupdate",
            "validate mender's gzip",
            [PY_TOOL, "validate", str(out / "m-gzip.mender"), "-k", str(pub)],
            None,
            None,
        ),
        (
            "mender-artifact",
            "validate pyupdate's gzip",
            [MENDER, "validate", str(out / "p-gzip.mender"), "-k", str(pub)],
            None,
            None,
        ),
    ]
    rows: dict[tuple[str, str], Row] = {}
    for _ in range(runs):  # interleaved, so a slow minute hits both tools alike
        for tool, op, cmd, env, produced in plan:
            run = measure(cmd, env)
            row = rows.setdefault((tool, op), Row(tool, op, [], None, mib))
            row.runs.append(run)
            if produced is not None:
                row.out_bytes = produced.stat().st_size
            print(
                f"  {image.name}: {tool:16} {op:26} {run.wall:6.2f} s  rss {run.rss_mib:5.0f} MiB  foreign {run.foreign:4.0%}",
                flush=True,
            )
    for path in out.iterdir():
        path.unlink()
    return rows


def rss_check(big: Path, key: Path, pub: Path) -> list[tuple[str, Run]]:
    out = WORK / "out"
    out.mkdir(exist_ok=True)
    artifact = out / "big.mender"
    write = [
        PY_TOOL,
        "write",
        "rootfs-image",
        "-f",
        str(big),
        "-n",
        "big",
        "-t",
        "d",
        "-k",
        str(key),
        "-o",
        str(artifact),
    ]
    runs = []
    for compression in ("gzip", "zstd"):
        runs.append((f"write {compression}", measure([*write, "--compression", compression])))
        validate = [PY_TOOL, "validate", str(artifact), "-k", str(pub)]
        runs.append((f"validate {compression}", measure(validate)))
        runs.append((f"read {compression}", measure([PY_TOOL, "read", str(artifact)])))
        artifact.unlink()
    return runs


# --- report ----------------------------------------------------------------------------
GOALS = [
    # (label, pyupdate row, mender row, minimum speed ratio, size rule)
    (
        "write gzip >= 1.5x, output <= 105%",
        ("pyupdate", "write gzip"),
        ("mender-artifact", "write gzip"),
        1.5,
        1.05,
    ),
    (
        "write zstd >= 3x, output <= mender gzip",
        ("pyupdate", "write zstd"),
        ("mender-artifact", "write gzip"),
        3.0,
        1.0,
    ),
    ("write none >= 3x", ("pyupdate", "write none"), ("mender-artifact", "write none"), 3.0, None),
    (
        "validate >= 1.0x",
        ("pyupdate", "validate gzip"),
        ("mender-artifact", "validate gzip"),
        1.0,
        None,
    ),
    (
        "stdlib write gzip >= 1.0x",
        ("pyupdate stdlib", "write gzip"),
        ("mender-artifact", "write gzip"),
        1.0,
        None,
    ),
]


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except OSError:
        return "missing"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine() -> list[str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    py = ROOT / ".venv" / "bin" / "python"
    libs = subprocess.run(
        [
            str(py),
            "-c",
            "import importlib.metadata as m\nfor d in ('isal','zstandard','cryptography'):\n  print(d, m.version(d))",
        ],
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    dpkg = _version(["dpkg-query", "-W", "-f", "${Version}", "mender-artifact"])
    return [
        f"- nproc: {os.cpu_count()}; CPU: {cpu}; kernel {platform.release()}",
        f"- memory: {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') >> 30} GiB",
        f"- python: {_version([str(py), '--version'])}; {', '.join(x for x in libs if x)}",
        f"- {_version([PY_TOOL, '--version'])}; mender-artifact {dpkg} ({_version([MENDER, '--version'])})",
        f"- load average at start: {os.getloadavg()[0]:.2f}",
    ]


def table(rows: dict[tuple[str, str], Row]) -> list[str]:
    lines = [
        "| tool | operation | wall med / best s | MiB/s med | CPU med s | max RSS MiB | output bytes | foreign CPU (max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows.values():
        size = f"{row.out_bytes:,}".replace(",", " ") if row.out_bytes is not None else "—"
        lines.append(
            f"| {row.tool} | {row.op} | {row.wall:.2f} / {row.best:.2f} | {row.mib / row.wall:.0f} | "
            f"{row.cpu:.2f} | {row.rss:.0f} | {size} | {row.foreign:.0%} |"
        )
    return lines


def goals(rows: dict[tuple[str, str], Row]) -> list[str]:
    lines = [
        "| goal | speed ratio (mender wall / ours, median) | size ratio (ours / mender) | met |",
        "|---|---|---|---|",
    ]
    for label, ours_key, peer_key, min_ratio, size_rule in GOALS:
        ours, peer = rows[ours_key], rows[peer_key]
        ratio = peer.wall / ours.wall
        met = ratio >= min_ratio
        size_text = "—"
        if size_rule is not None and ours.out_bytes and peer.out_bytes:
            size_ratio = ours.out_bytes / peer.out_bytes
            size_text = f"{size_ratio:.3f}"
            met = met and size_ratio <= size_rule
        lines.append(f"| {label} | {ratio:.2f}x | {size_text} | {'yes' if met else '**no**'} |")
    extra = [
        ("read gzip", ("pyupdate", "read gzip"), ("mender-artifact", "read gzip")),
        ("validate none", ("pyupdate", "validate none"), ("mender-artifact", "validate none")),
        (
            "stdlib validate gzip",
            ("pyupdate stdlib", "validate gzip"),
            ("mender-artifact", "validate gzip"),
        ),
    ]
    for label, ours_key, peer_key in extra:
        lines.append(
            f"| ({label}, no goal) | {rows[peer_key].wall / rows[ours_key].wall:.2f}x | — | — |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-rootfs", action="store_true")
    parser.add_argument("--skip-4g", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which(MENDER) is None or not Path(PY_TOOL).exists():
        sys.exit("error: needs mender-artifact and .venv/bin/pyupdate-artifact")
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    header = machine()
    key, pub = keys()
    images = [bench_image(WORK / "img1g.ext4")]
    if not args.skip_rootfs:
        images.append(rootfs_image(WORK / "rootfs.ext4"))
    report = [
        f"# pyupdate-artifact vs mender-artifact ({datetime.date.today()})",
        "",
        "Machine and versions:",
        *header,
        "",
    ]
    report += [
        f"Method: `bench/artifact.py --runs {args.runs}`. Each command under GNU `/usr/bin/time -v`, inputs warm in the page cache,",
        "the two tools interleaved run by run; median wall reported; MiB/s = uncompressed input / wall.",
        "Both tools sign with the same RSA-3072 PKCS#1 key; validate/read verify with its public key.",
        "'foreign CPU' is what other processes on the machine used during the run (share of all cores); above ~10% the row is noisy.",
        "",
    ]
    for image in images:
        print(f"{image.name}: {image.stat().st_size / MIB:.0f} MiB", flush=True)
        rows = bench_input(image, args.runs, key, pub)
        report += [
            f"## {image.name} ({image.stat().st_size / MIB:.0f} MiB)",
            "",
            *table(rows),
            "",
            *goals(rows),
            "",
        ]
    if not args.skip_4g:
        big = sparse_image(WORK / "big4g.img")
        report += [
            "## Peak RSS on a 4 GiB image (goal < 64 MiB)",
            "",
            "| operation | wall s | max RSS MiB | < 64 MiB |",
            "|---|---|---|---|",
        ]
        for op, run in rss_check(big, key, pub):
            report.append(
                f"| pyupdate {op} | {run.wall:.2f} | {run.rss_mib:.0f} | {'yes' if run.rss_mib < 64 else '**no**'} |"
            )
        report.append("")
    path = RESULTS / f"artifact-{datetime.date.today()}.md"
    path.write_text("\n".join(report) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
