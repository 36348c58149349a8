#!/usr/bin/env python3
"""Delta artifacts against full artifacts and today's pairwise tools, in one run (issue 19).

Run by hand from the repo root, after bench/delta_images.py has built the pairs:
    nice -n 10 .venv/bin/python bench/delta.py IMAGES [--pairs A,B,C]
IMAGES holds {A,B,C}/{old,new}.img. Needs xdelta3 and zstd (apt-get install xdelta3 zstd).
Scratch goes to bench/work/delta/ (gitignored); results to bench/results/delta-<date>.md.

For each pair, on the wire: full artifacts of NEW written by our own `pyupdate-artifact
write rootfs-image` (gzip, zstd), `zstd -19 --long=27` of the raw image (the reference
size of ../shared/reference/delta-baselines.md), `xdelta3 -9 -S djw` with a source window
as large as the image, `zstd -19 --long=31 --patch-from=OLD`, and ours:
`pyupdate_host.delta.make_delta(OLD.mender, NEW.mender)` on the zstd artifacts. Each
command runs under GNU `/usr/bin/time -v` in its own process, so wall time and peak RSS
are its own: generation on the server side, apply on the device side. Our apply is
`pyupdate_artifact.delta.DeltaApplier` fed by the reader, as the agent does; a full
install is the reader decompressing the full artifact into a file. Every apply writes a
fresh file, fsyncs it (a device must) and is checked against NEW's sha256.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "bench" / "work" / "delta"
RESULTS = ROOT / "bench" / "results"
VENV_BIN = ROOT / ".venv" / "bin"
PY = str(VENV_BIN / "python")
TOOL = str(VENV_BIN / "pyupdate-artifact")
MIB = 1 << 20
DEVICE = "qemux86-64"
PAIRS = {
    "A": "add a package (v1 + nano + curl)",
    "B": "security update (bookworm -> + bookworm-updates, bookworm-security)",
    "C": "major (v1 + build-essential)",
}
RSS_GOAL_MIB = 64


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


# --- measuring ---------------------------------------------------------------------------
@dataclass
class Run:
    wall: float
    cpu: float
    rss_mib: float
    foreign: float  # share of the machine other processes used meanwhile
    code: int
    stdout: str


def _busy_jiffies() -> int:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields[:8]) - fields[3] - fields[4]


def _grab(text: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}: (.+)$", text, re.M)
    if match is None:
        raise RuntimeError(f"time -v output lacks {label!r}:\n{text[-2000:]}")
    return match.group(1).strip()


def measure(cmd: list[str], ok_codes: tuple[int, ...] = (0,)) -> Run:
    hz = os.sysconf("SC_CLK_TCK")
    before = _busy_jiffies()
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    elapsed = time.monotonic() - start
    busy = (_busy_jiffies() - before) / hz
    if done.returncode not in ok_codes:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    wall = 0.0
    for part in _grab(done.stderr, "Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    cpu = float(_grab(done.stderr, "User time (seconds)")) + float(
        _grab(done.stderr, "System time (seconds)")
    )
    rss = int(_grab(done.stderr, "Maximum resident set size (kbytes)")) / 1024
    foreign = max(0.0, busy - cpu) / max(elapsed * (os.cpu_count() or 1), 1e-9)
    return Run(wall, cpu, rss, foreign, done.returncode, done.stdout)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def synced(cmd: list[str], target: Path) -> list[str]:
    """cmd, then fsync of its output inside the measured process tree: the CLI tools do not
    fsync, our reader-driven installs do, and a device has to before switching slots."""
    return ["sh", "-c", f"{shlex.join(cmd)} && sync {shlex.quote(str(target))}"]


# --- device and server side drivers (run as subprocesses of this script) -----------------
def drive_make(old_art: str, new_art: str, out: str, old_img: str, new_img: str) -> int:
    try:
        from pyupdate_host.delta import DeltaNotSmaller, encode_images, make_delta
    except ImportError as err:
        print(f"missing: {err}")
        return 4
    try:
        result = make_delta(Path(old_art), Path(new_art), Path(out))
    except DeltaNotSmaller:
        # what the raw delta file would have been, to show by how much it lost
        with open(out + ".raw", "wb") as raw:
            encode_images(Path(old_img), Path(new_img), raw)
        print(f"not-smaller {os.path.getsize(out + '.raw')}")
        os.unlink(out + ".raw")
        return 3
    print(f"ok {result.delta_artifact_size}")
    return 0


class _FileWriter:
    """A payload sink into a file, fsynced at the end like the agent's slot writer."""

    def __init__(self, target: str) -> None:
        self.out = open(target, "wb")  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self.out.write(data)

    def finish(self) -> None:
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()

    def abort(self) -> None:
        self.out.close()


class _DeltaWriter(_FileWriter):
    def __init__(self, target: str, base: str, expect_base: str, expect_result: str) -> None:
        from pyupdate_artifact.delta import DeltaApplier

        super().__init__(target)
        self.base = open(base, "rb")  # noqa: SIM115
        self.applier = DeltaApplier(
            self.base, self.out.write, expect_base=expect_base, expect_result=expect_result
        )

    def write(self, data: bytes) -> None:
        self.applier.write(data)

    def finish(self) -> None:
        self.applier.finish()
        self.base.close()
        super().finish()


class _Sink:
    def __init__(self, make: object) -> None:
        self.make = make

    def open_file(self, payload: object, name: str, size: int) -> _FileWriter:
        return self.make()  # type: ignore[operator]


def drive_install(artifact: str, target: str) -> int:
    from pyupdate_artifact.reader import read_artifact

    read_artifact(artifact, sink=_Sink(lambda: _FileWriter(target)))
    return 0


def drive_apply(artifact: str, base: str, target: str, old_sha: str, new_sha: str) -> int:
    from pyupdate_artifact.reader import read_artifact

    read_artifact(artifact, sink=_Sink(lambda: _DeltaWriter(target, base, old_sha, new_sha)))
    return 0


DRIVERS = {"make": drive_make, "install": drive_install, "apply": drive_apply}


# --- one pair ----------------------------------------------------------------------------
@dataclass
class Row:
    method: str
    size: int | None  # bytes on the wire; None: not measured
    gen: Run | None = None
    apply: Run | None = None
    note: str = ""
    kind: str = "full"  # full | pairwise | ours | reference


@dataclass
class PairResult:
    pair: str
    image_bytes: int
    old_sha: str
    new_sha: str
    changed_blocks: int
    rows: list[Row] = field(default_factory=list)
    ours_measured: str = ""  # when the ours row was measured, if later than the rest

    def save(self) -> None:
        (WORK / f"{self.pair}.json").write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, pair: str) -> PairResult:
        data = json.loads((WORK / f"{pair}.json").read_text())
        rows = []
        for r in data.pop("rows"):
            for key in ("gen", "apply"):
                r[key] = Run(**r[key]) if r[key] else None
            rows.append(Row(**r))
        return cls(**data, rows=rows)


def changed_4k_blocks(old: Path, new: Path) -> int:
    """4 KiB blocks that differ at the same offset: how much of the image moved at all."""
    count = 0
    with open(old, "rb") as a, open(new, "rb") as b:
        while True:
            x, y = a.read(MIB), b.read(MIB)
            if not x and not y:
                return count
            if x != y:
                count += sum(x[i : i + 4096] != y[i : i + 4096] for i in range(0, len(y), 4096))


def bench_pair(pair: str, images: Path, ours: bool) -> PairResult:
    old, new = images / pair / "old.img", images / pair / "new.img"
    work = WORK / pair
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result_img = work / "result.img"
    old_sha, new_sha = sha256(old), sha256(new)
    res = PairResult(pair, new.stat().st_size, old_sha, new_sha, changed_4k_blocks(old, new))
    log(f"pair {pair}: {res.image_bytes // MIB} MiB, {res.changed_blocks} 4 KiB blocks differ")

    def check(label: str) -> None:
        got = sha256(result_img)
        if got != new_sha:
            raise RuntimeError(f"pair {pair}: {label} produced {got}, not NEW {new_sha}")
        result_img.unlink()

    def write(image: Path, name: str, compression: str, out: Path) -> Run:
        return measure(
            [
                TOOL,
                "write",
                "rootfs-image",
                "-f",
                str(image),
                "-n",
                name,
                "-t",
                DEVICE,
                "--compression",
                compression,
                "-q",
                "-o",
                str(out),
            ]
        )

    # full artifacts; OLD's zstd one is only the input of make_delta
    write(old, f"{pair}-v1", "zstd", work / "old-zstd.mender")
    for compression in ("gzip", "zstd"):
        art = work / f"new-{compression}.mender"
        gen = write(new, f"{pair}-v2", compression, art)
        apply = measure([PY, __file__, "--drive", "install", str(art), str(result_img)])
        check(f"full {compression} install")
        res.rows.append(
            Row(f"full artifact, {compression} (pyupdate-artifact)", art.stat().st_size, gen, apply)
        )
        log(f"pair {pair}: full {compression} {art.stat().st_size:,} B, {gen.wall:.1f} s")

    # reference: the raw image at zstd -19, as in delta-baselines.md
    ref = work / "new.img.zst"
    gen = measure(["zstd", "-q", "-19", "--long=27", "-T1", "-f", str(new), "-o", str(ref)])
    apply = measure(
        synced(["zstd", "-q", "-d", "--long=27", "-f", str(ref), "-o", str(result_img)], result_img)
    )
    check("zstd -19 full")
    res.rows.append(
        Row(
            "full image, zstd -19 --long=27 (reference)",
            ref.stat().st_size,
            gen,
            apply,
            kind="reference",
        )
    )
    log(f"pair {pair}: zstd -19 full {ref.stat().st_size:,} B, {gen.wall:.1f} s")

    # xdelta3 with a source window covering the whole image (default 64 MiB finds far less)
    window = str(old.stat().st_size)
    xd = work / "new.xd3"
    gen = measure(
        ["xdelta3", "-9", "-S", "djw", "-B", window, "-f", "-e", "-s", str(old), str(new), str(xd)]
    )
    apply = measure(
        synced(
            ["xdelta3", "-d", "-B", window, "-f", "-s", str(old), str(xd), str(result_img)],
            result_img,
        )
    )
    check("xdelta3")
    res.rows.append(
        Row("xdelta3 -9 -S djw, -B = image", xd.stat().st_size, gen, apply, kind="pairwise")
    )
    log(f"pair {pair}: xdelta3 {xd.stat().st_size:,} B, {gen.wall:.1f} s")

    zp = work / "new.patch.zst"
    patch = [
        "zstd",
        "-q",
        "-19",
        "--long=31",
        "-T1",
        "-f",
        f"--patch-from={old}",
        str(new),
        "-o",
        str(zp),
    ]
    gen = measure(patch)
    unpatch = [
        "zstd",
        "-q",
        "-d",
        "--long=31",
        "-f",
        f"--patch-from={old}",
        str(zp),
        "-o",
        str(result_img),
    ]
    apply = measure(synced(unpatch, result_img))
    check("zstd --patch-from")
    res.rows.append(
        Row("zstd -19 --long=31 --patch-from", zp.stat().st_size, gen, apply, kind="pairwise")
    )
    log(f"pair {pair}: zstd --patch-from {zp.stat().st_size:,} B, {gen.wall:.1f} s")

    # ours, from the zstd artifacts as a server or CI holds them
    res.rows.append(bench_ours(pair, images, work, ours))
    shutil.rmtree(work)
    res.save()
    return res


def bench_ours(pair: str, images: Path, work: Path, ours: bool) -> Row:
    """make_delta on work/{old,new}-zstd.mender, then apply it as the device does."""
    old, new = images / pair / "old.img", images / pair / "new.img"
    old_sha, new_sha = sha256(old), sha256(new)
    result_img = work / "result.img"
    delta = work / "delta.mender"
    row = Row("ours: pyupdate-artifact delta (make_delta)", None, kind="ours")
    if not ours:
        row.note = "missing: pyupdate_host.delta.make_delta not importable yet"
        return row
    make = [PY, __file__, "--drive", "make", str(work / "old-zstd.mender")]
    row.gen = measure(
        [*make, str(work / "new-zstd.mender"), str(delta), str(old), str(new)], ok_codes=(0, 3)
    )
    if row.gen.code == 3:
        raw = int(row.gen.stdout.split()[1])
        row.note = f"refused: not smaller than the full zstd artifact (raw delta file {raw:,} B)"
    else:
        row.size = delta.stat().st_size
        run = [PY, __file__, "--drive", "apply", str(delta), str(old), str(result_img)]
        row.apply = measure([*run, old_sha, new_sha])
        if sha256(result_img) != new_sha:
            raise RuntimeError(f"pair {pair}: our delta did not produce NEW")
        result_img.unlink()
    log(f"pair {pair}: ours {row.size}, {row.gen.wall:.1f} s {row.note}")
    return row


def rebench_ours(pair: str, images: Path) -> PairResult:
    """Our row again, the rest from the last full run: for when the delta code changed."""
    res = PairResult.load(pair)
    work = WORK / pair
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for which, version in (("old", "v1"), ("new", "v2")):
        art = work / f"{which}-zstd.mender"
        image = images / pair / f"{which}.img"
        subprocess.run(
            [
                TOOL,
                "write",
                "rootfs-image",
                "-f",
                str(image),
                "-n",
                f"{pair}-{version}",
                "-t",
                DEVICE,
                "--compression",
                "zstd",
                "-q",
                "-o",
                str(art),
            ],
            check=True,
        )
    res.rows = [r for r in res.rows if r.kind != "ours"]
    res.rows.append(bench_ours(pair, images, work, True))
    res.ours_measured = datetime.datetime.now().isoformat(timespec="seconds")
    shutil.rmtree(work)
    res.save()
    return res


# --- report ------------------------------------------------------------------------------
def fmt_run(run: Run | None) -> str:
    if run is None:
        return "—"
    return f"{run.wall:.1f} s ({run.cpu:.1f} CPU) / {run.rss_mib:.0f} MiB"


def pct(a: int | None, b: int | None) -> str:
    return "—" if a is None or not b else f"{100 * a / b:.1f}%"


def report(results: list[PairResult], run: dict[str, str]) -> str:
    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True)
        except OSError:
            return "not found"
        first = (out.stdout or out.stderr).strip().splitlines()[0]
        found = re.search(r"v?(\d+\.\d+\.\d+)", first)
        return f"{cmd[0]} {found.group(1) if found else first}"

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "?",
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // (1 << 20)
    lines = [
        f"# Delta updates: bytes on the wire, generation and apply ({run['started'][:10]})",
        "",
        "Issue 19. `bench/delta.py` on the pairs built by `bench/delta_images.py` (deterministic",
        "Debian 12 ext4 root filesystems, recipe of ../shared/reference/delta-baselines.md).",
        "",
        "Machine and versions:",
        f"- nproc: {os.cpu_count()}; CPU: {cpu}; kernel {platform.release()}; memory {mem} GiB",
        "- **shared**: the 2 cores were shared with 4 other helpers' work during the run; every",
        "  command ran under `nice -n 10`, so wall times are noisy (the 'foreign' column is the",
        "  share of the machine other processes used meanwhile). Sizes and RSS are not affected.",
        f"- full run started {run['started']}; load average at its start {run['load_start']},"
        f" at its end {run['load_end']}",
        f"- python {platform.python_version()}; {version(['zstd', '--version'])};"
        f" {version(['xdelta3', '-V'])}",
        "",
        "Method: each command in its own process under GNU `/usr/bin/time -v` (wall, CPU = user +",
        "system, peak RSS); one run each; on this shared machine CPU seconds compare better than",
        "wall. Generation = server/build host side. Apply = device side: our delta is",
        "`DeltaApplier` fed by the artifact reader (base = OLD image read with pread, output",
        "written to a file and fsynced); a full install is the reader decompressing the full",
        "artifact into a file (fsynced); xdelta3/zstd outputs are fsynced by `sync FILE` inside",
        "the measured process tree. Every result was checked against NEW's sha256. Full",
        "artifacts are unsigned (a signature adds ~0.5 KB to each). Our delta is made from the",
        "zstd artifacts of OLD and NEW (what a server holds), so its time includes their",
        "decompression.",
        "",
    ]
    summary = [
        "## Goals",
        "",
        "| pair | ours bytes | / min(xdelta3, zstd --patch-from) (goal <= 1.2) |"
        " / full zstd artifact (goal < 1) | / full zstd -19 | apply RSS (goal <= 64 MiB) |"
        " apply time vs full zstd install |",
        "|---|---|---|---|---|---|---|",
    ]
    for res in results:
        ours = next(r for r in res.rows if r.kind == "ours")
        pairwise = [r.size for r in res.rows if r.kind == "pairwise" and r.size]
        best = min(pairwise) if pairwise else None
        zstd_art = next(r for r in res.rows if r.kind == "full" and "zstd" in r.method)
        ref = next(r for r in res.rows if r.kind == "reference")
        lines += [
            f"## Pair {res.pair}: {PAIRS[res.pair]}",
            "",
            f"Slot {res.image_bytes // MIB} MiB ({res.image_bytes:,} B); "
            f"{res.changed_blocks:,} of {res.image_bytes // 4096:,} 4 KiB blocks differ at the "
            f"same offset. OLD sha256 `{res.old_sha[:16]}…`, NEW `{res.new_sha[:16]}…`.",
            "",
            *(
                [
                    f"Our row was measured again at {res.ours_measured} (`--ours-only`, the"
                    " delta code had changed); the other rows are from the full run.",
                    "",
                ]
                if res.ours_measured
                else []
            ),
            "| method | bytes on the wire | % of full zstd artifact | % of zstd -19 |"
            " generate s / peak RSS | apply s / peak RSS | foreign CPU gen/apply | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in res.rows:
            foreign = "/".join(
                f"{x.foreign:.0%}" if x is not None else "—" for x in (r.gen, r.apply)
            )
            size = f"{r.size:,}" if r.size is not None else "—"
            name = f"**{r.method}**" if r.kind == "ours" else r.method
            lines.append(
                f"| {name} | {size} | {pct(r.size, zstd_art.size)} | {pct(r.size, ref.size)} |"
                f" {fmt_run(r.gen)} | {fmt_run(r.apply)} | {foreign} | {r.note} |"
            )
        lines.append("")
        if ours.size is None:
            why = ours.note.split(":")[0] if ours.note else "missing"
            summary.append(f"| {res.pair} | {why} | — | — | — | — | — |")
        else:
            ratio_best = ours.size / best if best else float("nan")
            ratio_full = ours.size / zstd_art.size
            rss = ours.apply.rss_mib if ours.apply else float("nan")
            t_ours = f"{ours.apply.wall:.1f} s ({ours.apply.cpu:.1f} CPU)" if ours.apply else "—"
            t_full = (
                f"{zstd_art.apply.wall:.1f} s ({zstd_art.apply.cpu:.1f} CPU)"
                if zstd_art.apply
                else "—"
            )
            summary.append(
                f"| {res.pair} | {ours.size:,} | {ratio_best:.2f}x"
                f" {'ok' if ratio_best <= 1.2 else 'MISSED'} | {ratio_full:.3f}"
                f" {'ok' if ratio_full < 1 else 'MISSED'} | {ours.size / ref.size:.3f} |"
                f" {rss:.0f} MiB {'ok' if rss <= RSS_GOAL_MIB else 'MISSED'} |"
                f" {t_ours} vs {t_full} |"
            )
    return "\n".join(lines + summary) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--drive":
        sys.exit(DRIVERS[sys.argv[2]](*sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path, help="folder with {A,B,C}/{old,new}.img")
    parser.add_argument("--pairs", default="A,B,C")
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="measure only our delta again; other rows from the last run (bench/work/delta)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the report again from the last run's results (bench/work/delta)",
    )
    parser.add_argument(
        "--out", type=Path, help="report file (default bench/results/delta-<date>.md)"
    )
    args = parser.parse_args()
    for tool in ("xdelta3", "zstd", "/usr/bin/time"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found (apt-get install xdelta3 zstd time)")
    probe = subprocess.run(
        [PY, "-c", "import pyupdate_host.delta as d; d.make_delta"], capture_output=True
    )
    ours = probe.returncode == 0
    if not ours:
        log("pyupdate_host.delta.make_delta is not importable: our rows are left missing")
    images = args.images.resolve()
    pairs = [p.strip() for p in args.pairs.split(",")]
    run_file = WORK / "run.json"
    if args.report_only:
        results = [PairResult.load(p) for p in pairs]
    elif args.ours_only:
        results = [rebench_ours(p, images) for p in pairs]
    else:
        started = datetime.datetime.now().isoformat(timespec="seconds")
        load_start = " ".join(Path("/proc/loadavg").read_text().split()[0:3])
        results = [bench_pair(p, images, ours) for p in pairs]
        load_end = " ".join(Path("/proc/loadavg").read_text().split()[0:3])
        run = {"started": started, "load_start": load_start, "load_end": load_end}
        run_file.write_text(json.dumps(run))
    text = report(results, json.loads(run_file.read_text()))
    out = args.out or RESULTS / f"delta-{json.loads(run_file.read_text())['started'][:10]}.md"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(out)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
