#!/usr/bin/env python3
"""Deterministic Debian 12 root filesystem image pairs for the delta benchmark (issue 19).

Run by hand as root from the repo root:
    nice -n 10 python3 bench/delta_images.py WORKDIR [--pairs A,B,C] [--check]
Needs mmdebstrap and e2fsprogs (apt-get install mmdebstrap) and the host's apt sources for
bookworm, bookworm-updates and bookworm-security (the mirrors are taken from
`apt-get indextargets`, so no host name is written down here). About 3 minutes on 2 cores;
the images are 316, 308 and 644 MiB a slot (2.6 GiB in all), built 2026-12-07.
Downloaded packages stay in WORKDIR/debcache for the next run; the trees are deleted.
Packages come from the live suites, so a later run builds newer images (the same day's
runs are identical, --check shows it).

Writes WORKDIR/{A,B,C}/{old,new}.img, each pair followed by WORKDIR/READY-<pair>, in the
order A, B, C (another bench step may start on A while B builds). Images are written to
.tmp and renamed, so a reader never sees half an image. A pair whose READY file exists is
skipped. --check builds the base tree a second time from scratch and compares the image.

The recipe is the one of ../shared/reference/delta-baselines.md:
- mmdebstrap --variant=minbase, python3 + openssh-server + libubootenv-tool, no recommends;
  ssh host keys, resolv.conf and dpkg/debconf -old files removed, hostname fixed.
- SOURCE_DATE_EPOCH for mmdebstrap, every mtime newer than it clamped to it.
- mkfs.ext4 -d with a fixed UUID, hash_seed and root owner under E2FSPROGS_FAKE_TIME, then
  atime/ctime/crtime of every used inode set to the epoch with debugfs (mke2fs copies them
  from the tree, where they are the time of the build).
- A slot is 1.3x the larger tree of its pair, rounded up to 4 MiB; old and new are the same
  size, as A/B slots are.

Pairs:
  A "add a package"    old = base, new = base + nano + curl
  B "security update"  old = base from the bookworm suite only, new = base
  C "major"            old = base, new = base + build-essential (a delta may not pay)
where base = bookworm + bookworm-updates + bookworm-security, the system a fleet runs today.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

# 2026-12-01T00:00:00Z: later than every package of the suites, so package files keep
# their own mtimes (as on a real device) and only files made during the build are clamped.
EPOCH = 1796083200
FS_UUID = "5d1e17a0-0000-4000-8000-000000000019"
HASH_SEED = "5d1e17a0-0000-4000-8000-0000000000a5"
MIB = 1 << 20
SLOT_ALIGN = 4 * MIB
BASE_PACKAGES = ["python3", "openssh-server", "libubootenv-tool"]
ALL_SUITES = ["bookworm", "bookworm-updates", "bookworm-security"]

# tree name -> (suites, packages on top of the base)
TREES: dict[str, tuple[list[str], list[str]]] = {
    "base": (ALL_SUITES, []),
    "stable": (["bookworm"], []),
    "add": (ALL_SUITES, ["nano", "curl"]),
    "major": (ALL_SUITES, ["build-essential"]),
}
# pair -> (old tree, new tree), in build order
PAIRS: dict[str, tuple[str, str]] = {
    "A": ("base", "add"),
    "B": ("stable", "base"),
    "C": ("base", "major"),
}

# Run inside the finished chroot: what differs between two builds of the same packages,
# or names the build host.
CLEANUP = (
    'rm -f "$1"/etc/ssh/ssh_host_* "$1"/etc/resolv.conf'
    ' "$1"/var/lib/dpkg/*-old "$1"/var/cache/debconf/*-old;'
    ' echo pyupdate > "$1"/etc/hostname;'
    ' printf "127.0.0.1\\tlocalhost\\n127.0.1.1\\tpyupdate\\n" > "$1"/etc/hosts'
)


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def mirrors() -> dict[str, str]:
    """Suite -> repository URI, from the host's apt sources."""
    out = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(RELEASE) $(REPO_URI)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = dict(line.split() for line in out.splitlines() if line.strip())
    missing = [s for s in ALL_SUITES if s not in found]
    if missing:
        sys.exit(f"error: the host's apt sources lack {', '.join(missing)} (run apt-get update)")
    return found


def build_tree(name: str, work: Path) -> Path:
    tree = work / "trees" / name
    if tree.exists():
        return tree
    suites, extra = TREES[name]
    uris = mirrors()
    partial = work / "trees" / f"{name}.tmp"
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    # a download cache shared by the builds: the trees share most of their packages
    cache = work / "debcache"
    cache.mkdir(exist_ok=True)
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
        "--include=" + ",".join(BASE_PACKAGES + extra),
        '--aptopt=APT::Install-Recommends "false"',
        "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
        "--customize-hook=" + CLEANUP,
        "bookworm",
        str(partial),
        *(f"deb {uris[s]} {s} main" for s in suites),
    ]
    log(f"tree {name}: mmdebstrap {' '.join(suites)} + {' '.join(extra) or '(base)'}")
    subprocess.run(cmd, check=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)})
    clamp_mtimes(partial)
    partial.rename(tree)
    log(f"tree {name}: {tree_bytes(tree) / MIB:.0f} MiB")
    return tree


def clamp_mtimes(tree: Path) -> None:
    """Files written by maintainer scripts carry the build time."""
    for dirpath, dirnames, filenames in os.walk(tree):
        for entry in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            st = os.lstat(entry)
            if st.st_mtime > EPOCH:
                os.utime(entry, (EPOCH, EPOCH), follow_symlinks=False)


def tree_bytes(tree: Path) -> int:
    out = subprocess.run(["du", "-s", "--block-size=1", str(tree)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def used_inodes(image: Path) -> list[int]:
    """Inodes in use, from the group bitmaps as dumpe2fs prints them ('Free inodes: a-b, c')."""
    text = subprocess.run(
        ["dumpe2fs", str(image)], capture_output=True, text=True, check=True
    ).stdout
    count = int(re.search(r"^Inode count:\s+(\d+)", text, re.M).group(1))
    first = int(re.search(r"^First inode:\s+(\d+)", text, re.M).group(1))
    free: set[int] = set()
    for ranges in re.findall(r"^\s+Free inodes: (.*)$", text, re.M):
        for part in filter(None, (p.strip() for p in ranges.split(","))):
            lo, _, hi = part.partition("-")
            free.update(range(int(lo), int(hi or lo) + 1))
    # of the reserved inodes only the root directory holds a tree's times
    return [2] + [i for i in range(first, count + 1) if i not in free]


def make_image(tree: Path, size: int, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    env = {**os.environ, "E2FSPROGS_FAKE_TIME": str(EPOCH)}
    subprocess.run(
        [
            "mkfs.ext4",
            "-q",
            "-F",
            "-b",
            "4096",
            "-L",
            "rootfs",
            "-U",
            FS_UUID,
            "-E",
            f"hash_seed={HASH_SEED},root_owner=0:0",
            "-d",
            str(tree),
            str(tmp),
            f"{size // 1024}k",
        ],
        check=True,
        env=env,
    )
    script = tmp.with_name(tmp.name + ".debugfs")
    with open(script, "w") as f:
        for ino in used_inodes(tmp):
            for field in ("atime", "ctime", "crtime"):
                f.write(f"sif <{ino}> {field} @{EPOCH}\n")
            for field in ("atime_extra", "ctime_extra", "crtime_extra", "mtime_extra"):
                f.write(f"sif <{ino}> {field} 0\n")
    subprocess.run(
        ["debugfs", "-w", "-f", str(script), str(tmp)],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    script.unlink()
    subprocess.run(["e2fsck", "-fn", str(tmp)], check=True, capture_output=True)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    tmp.rename(dest)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MIB):
            h.update(chunk)
    return h.hexdigest()


def slot_size(*trees: Path) -> int:
    need = max(tree_bytes(t) for t in trees) * 13 // 10
    return -(-need // SLOT_ALIGN) * SLOT_ALIGN


def remaining_uses(pairs: list[str], done: set[str]) -> dict[str, int]:
    uses: dict[str, int] = {}
    for p in pairs:
        if p not in done:
            for name in PAIRS[p]:
                uses[name] = uses.get(name, 0) + 1
    return uses


def build_pairs(work: Path, pairs: list[str], keep_base: bool) -> None:
    done = {p for p in pairs if (work / f"READY-{p}").exists()}
    for pair in pairs:
        if pair in done:
            log(f"pair {pair}: READY-{pair} exists, skipped")
            continue
        old_name, new_name = PAIRS[pair]
        old, new = build_tree(old_name, work), build_tree(new_name, work)
        size = slot_size(old, new)
        out = work / pair
        out.mkdir(parents=True, exist_ok=True)
        for which, tree in (("old", old), ("new", new)):
            log(f"pair {pair}: {which}.img from {tree.name}, {size // MIB} MiB")
            make_image(tree, size, out / f"{which}.img")
        (work / f"READY-{pair}").touch()
        done.add(pair)
        log(
            f"pair {pair} ready: old {sha256(out / 'old.img')[:16]}, new {sha256(out / 'new.img')[:16]}"
        )
        # trees are only needed while a pair still uses them (about 300-600 MiB each)
        uses = remaining_uses(pairs, done)
        for name in {old_name, new_name}:
            if uses.get(name, 0) == 0 and not (keep_base and name == "base"):
                shutil.rmtree(work / "trees" / name)


def check_determinism(work: Path) -> bool:
    """Build the base tree again from scratch, image it as pair A's old slot, compare."""
    reference = work / "A" / "old.img"
    first = work / "trees" / "base"
    if first.exists():
        shutil.rmtree(first)
    tree = build_tree("base", work)
    dest = work / "check-old.img"
    make_image(tree, reference.stat().st_size, dest)
    a, b = sha256(reference), sha256(dest)
    log(f"determinism: A/old.img {a}, rebuilt {b}: {'identical' if a == b else 'DIFFERENT'}")
    dest.unlink()
    shutil.rmtree(tree)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--pairs", default="A,B,C", help="which pairs, in order (A,B,C)")
    parser.add_argument(
        "--check", action="store_true", help="rebuild the base tree and compare its image"
    )
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    unknown = [p for p in pairs if p not in PAIRS]
    if unknown:
        sys.exit(f"error: unknown pair {', '.join(unknown)} (A, B or C)")
    build_pairs(work, pairs, keep_base=False)
    if args.check and not check_determinism(work):
        sys.exit(1)
    shutil.rmtree(work / "trees", ignore_errors=True)


if __name__ == "__main__":
    main()
