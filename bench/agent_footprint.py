"""What the agent costs a device, for one source tree: installed size, import time, idle RSS.

    .venv/bin/python bench/agent_footprint.py [--tree DIR ...] [--runs 5] [--json OUT]

TREE (default: this checkout) is any revision of the repo, e.g. one made with
`git worktree add /tmp/before <rev>`; the harness (pyupdate_testing), the server
and the artifact writer always come from this checkout's venv, only the agent
and its artifact reader come from TREE. Both are built as wheels and installed
with `pip install --no-deps --no-compile --target`, and the agent then runs
from that dir alone (`python -S`, PYTHONPATH=the dir: the stdlib and nothing
else, as on a device).

(a) installed size: bytes and files in the --target dir, without __pycache__
    and the `bin/` scripts (a recipe installs its own).
(b) import time per `pyupdate` verb: `python -S -X importtime -m
    pyupdate_agent.cli VERB` run for real on a host-mode device
    (pyupdate_testing.host_device): install, commit, show-artifact,
    show-provides, install + rollback, check-update and send-inventory (no
    daemon runs, so these two exit with their one-line error after their
    imports). The number is the sum of the top-level `cumulative` times,
    i.e. the whole import cost; median and min of RUNS, the trees taking
    turns run by run so that other load on the machine hits them alike.
(c) idle RSS of the daemon: `pyupdate daemon` polling a throwaway
    pyupdate-server every 5 s (pyupdate_testing.server.live_server), VmRSS of
    the exec'd daemon 10 s after its second update check; median of 3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyupdate_testing.daemon_device import make_daemon_device
from pyupdate_testing.host_device import DEVICE_TYPE, HostDevice, make_host
from pyupdate_testing.proxies import CountingProxy
from pyupdate_testing.server import live_server
from pyupdate_testing.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent
VERBS = ("install", "commit", "show-artifact", "show-provides", "rollback", "check-update",
         "send-inventory")  # fmt: skip


def reader_dir(tree: Path) -> Path:
    """artifact_tool/reader since the device/host split, artifact_tool before it."""
    split = tree / "artifact_tool" / "reader"
    return split if (split / "pyproject.toml").is_file() else tree / "artifact_tool"


def install_target(tree: Path, work: Path) -> Path:
    """The agent and its reader from `tree`, as pip installs them on a device."""
    wheels, target, clean = work / "wheels", work / "site", work / "src"
    # a copy without build/ and *.egg-info: setuptools puts a stale build/lib into the wheel
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    sources = [
        shutil.copytree(d, clean / d.name, ignore=skip) for d in (reader_dir(tree), tree / "agent")
    ]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), *map(str, sources)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
         "--target", str(target), *map(str, sorted(wheels.glob("*.whl")))],
        check=True, capture_output=True,
    )  # fmt: skip
    return target


def installed_size(target: Path) -> dict[str, object]:
    files = [
        p for p in target.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.relative_to(target).parts[0] != "bin"
    ]  # fmt: skip
    by_package: dict[str, int] = {}
    for p in files:
        top = p.relative_to(target).parts[0]
        key = "dist-info" if top.endswith(".dist-info") else top
        by_package[key] = by_package.get(key, 0) + p.stat().st_size
    return {"bytes": sum(by_package.values()), "files": len(files), "by_package": by_package}


def import_us(stderr: str) -> int:
    """Sum of the top-level cumulative times in `-X importtime` output (nested ones are in it)."""
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self, cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not name.startswith("  "):  # one space after the bar: a top-level import
            total += int(cumulative)
    return total


def agent(target: Path, host: HostDevice, *args: str) -> tuple[int, int]:
    """(exit code, import microseconds) of one `pyupdate` run from `target` alone."""
    proc = subprocess.run(
        [sys.executable, "-S", "-X", "importtime", "-m", "pyupdate_agent.cli", *host.argv(*args)],
        capture_output=True, text=True, env={"PATH": os.environ["PATH"], "PYTHONPATH": str(target)},
    )  # fmt: skip
    return proc.returncode, import_us(proc.stderr)


def rootfs_artifact(out: Path, name: str) -> Path:
    image = out.with_suffix(".ext4")
    image.write_bytes(name.encode().ljust(32, b"\0") * (1 << 15))  # 1 MiB
    subprocess.run(
        [ROOT / ".venv/bin/pyupdate-artifact", "write", "rootfs-image", "-f", str(image),
         "-n", name, "-t", DEVICE_TYPE, "-o", str(out), "--quiet"],
        check=True,
    )  # fmt: skip
    return out


def verb_sequence(target: Path, host: HostDevice, first: Path, second: Path) -> list[tuple]:
    """(verb, exit code, import us) of each measured verb, on one fresh device."""
    out = []
    out.append(("install", *agent(target, host, "install", str(first))))
    host.boot()
    out += [
        (verb, *agent(target, host, verb)) for verb in ("commit", "show-artifact", "show-provides")
    ]
    agent(target, host, "install", str(second))
    out.append(("rollback", *agent(target, host, "rollback")))
    out += [(verb, *agent(target, host, verb)) for verb in ("check-update", "send-inventory")]
    return out


def verb_times(targets: dict[str, Path], work: Path, runs: int) -> dict[str, dict]:
    """Per tree and verb: median and min import time over `runs`, the trees interleaved
    run by run so that load from elsewhere on the machine hits them alike."""
    first = rootfs_artifact(work / "release-1.mender", "release-1")
    second = rootfs_artifact(work / "release-2.mender", "release-2")
    times = {t: {v: [] for v in VERBS} for t in targets}
    codes: dict[str, dict[str, set[int]]] = {t: {v: set() for v in VERBS} for t in targets}
    for n in range(runs + 1):
        for i, (tree, target) in enumerate(targets.items()):
            measured = verb_sequence(target, make_host(work / f"dev{i}-{n}"), first, second)
            if n == 0:
                continue  # run 0 warms the page cache and is dropped
            for verb, rc, us in measured:
                times[tree][verb].append(us)
                codes[tree][verb].add(rc)
    return {
        tree: {
            v: {"median_us": statistics.median(t), "min_us": min(t), "exit": sorted(codes[tree][v])}
            for v, t in per_verb.items()
        }
        for tree, per_verb in times.items()
    }


def checks(proxy: CountingProxy) -> int:
    return sum("deployments/next" in r for r in proxy.requests)


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"{pid}: no VmRSS")


def daemon_rss(target: Path, work: Path, runs: int = 3) -> float:
    """VmRSS (KiB) of the idle daemon, median of `runs` fresh devices against one server."""
    rss = []
    work.mkdir(parents=True)
    with live_server(work) as srv:
        for n in range(runs):
            proxy = CountingProxy(srv.port)
            dev = make_daemon_device(
                work / f"daemon{n}", srv, number=n + 1,
                server_url=f"http://127.0.0.1:{proxy.port}",
                UpdatePollIntervalSeconds=5, RetryPollIntervalSeconds=5,
                InventoryPollIntervalSeconds=3600,
            )  # fmt: skip
            with open(dev.log, "wb") as out:
                # `pyupdate daemon` execs `python -m pyupdate_agent.daemon`: same pid
                proc = subprocess.Popen(
                    [sys.executable, "-S", "-m", "pyupdate_agent.cli", *dev.host.argv("daemon")],
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    env={"PATH": os.environ["PATH"], "PYTHONPATH": str(target)},
                )  # fmt: skip
            try:
                wait_for("two update checks", lambda p=proxy: checks(p) >= 2, 90, [dev.log])
                time.sleep(10)
                rss.append(vm_rss_kib(proc.pid))
            finally:
                proc.kill()
                proc.wait(timeout=10)
    return statistics.median(rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tree",
        type=Path,
        action="append",
        help="a checkout to measure, repeatable (default: this one)",
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the numbers here as JSON")
    args = parser.parse_args(argv)
    trees = {str(t): t.resolve() for t in args.tree or [ROOT]}
    with tempfile.TemporaryDirectory(prefix="agent-footprint-") as tmp:
        work = Path(tmp)
        targets = {
            name: install_target(tree, work / f"t{i}")
            for i, (name, tree) in enumerate(trees.items())
        }
        imports = verb_times(targets, work, args.runs)
        result = {
            name: {
                "installed": installed_size(target),
                "import_us": imports[name],
                "daemon_rss_kib": daemon_rss(target, work / f"rss{i}"),
            }
            for i, (name, target) in enumerate(targets.items())
        }
    text = json.dumps(result, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
