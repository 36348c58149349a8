"""Fill a Buildroot download directory without the internet.

    python3 ci/buildroot/fill_downloads.py --buildroot BUILDROOT --output O --dl DL_DIR

Buildroot would fetch each source from its upstream site; this machine (and
many CI runners) reach only the package registries. Every file Buildroot
needs (`make show-info` of the configured output dir O) is looked up:

1. already in DL_DIR and matching Buildroot's .hash: kept;
2. PyPI sdists: Buildroot's own files.pythonhosted.org address (a registry),
   or the same file name on PyPI's index (meson publishes its release there);
3. Debian source packages: an orig tarball whose sha256 is the one in
   Buildroot's .hash file (the Sources index lists every file's sha256, so
   only matching files are downloaded).

A file found nowhere is listed with the Debian source versions that exist,
and the script exits 1: such a package needs a substitution, declared in
buildroot-ext/support/substitutions.mk (docs/buildroot.md says which and why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEBIAN = "http://deb.debian.org/debian"
SUITES = ("bookworm", "trixie", "sid", "experimental")
# Buildroot package name -> Debian source package, where they differ.
DEBIAN_NAMES = {
    "busybox": ["busybox"],
    "gcc-final": ["gcc-14"],
    "host-gcc-initial": ["gcc-14"],
    "host-gcc-final": ["gcc-14"],
    "host-binutils": ["binutils"],
    "glibc": ["glibc"],
    "libopenssl": ["openssl"],
    "host-libopenssl": ["openssl"],
    "libzlib": ["zlib"],
    "host-libzlib": ["zlib"],
    "xz": ["xz-utils"],
    "host-xz": ["xz-utils"],
    "python3": ["python3.14"],
    "host-python3": ["python3.14"],
    "linux": ["linux"],
    "linux-headers": ["linux"],
    "uboot": ["u-boot"],
    "host-uboot-tools": ["u-boot"],
    "host-mpc": ["mpclib3"],
    "host-mpfr": ["mpfr4"],
    "host-gettext-tiny": ["gettext"],
    "sqlite": ["sqlite3"],
    "libyaml": ["libyaml"],
    "host-pkgconf": ["pkgconf"],
    "host-python-pylibfdt": ["device-tree-compiler"],
    "host-swig": ["swig"],
    "host-ninja": ["ninja-build"],
    "host-meson": ["meson"],
    "host-gnutls": ["gnutls28"],
    "host-libtasn1": ["libtasn1-6"],
    "host-libconfuse": ["libconfuse"],
}
# Packages whose installed paths carry Buildroot's version string: a substitute
# of another version must carry its own (swig's wrapper points SWIG_LIB at
# share/swig/$(SWIG_VERSION), where the 4.1.0 tree installed nothing).
VERSION_IN_PATHS = {"SWIG"}


@dataclass
class Need:
    package: str
    version: str
    source: str
    uris: list[str]


def needs(output: Path) -> list[Need]:
    out = subprocess.run(
        ["make", "-s", "-C", str(output), "show-info"], check=True, capture_output=True, text=True
    ).stdout
    info = json.loads(out)
    result = []
    for name, pkg in sorted(info.items()):
        for dl in pkg.get("downloads", []):
            uris = dl.get("uris") or []
            if any(u.startswith("local+") for u in uris):
                continue
            result.append(Need(name, pkg.get("version", ""), dl["source"], uris))
    return result


def hash_lines(buildroot: Path, output: Path, need: Need) -> list[tuple[str, str]]:
    """(algo, hex) pairs for need.source from the package's .hash files."""
    raw = need.package.removeprefix("host-")
    found = []
    for hashfile in list(buildroot.glob(f"**/{raw}.hash")) + list(
        buildroot.glob(f"**/{raw}/{need.version}/*.hash")
    ):
        for line in hashfile.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and not parts[0].startswith("#") and parts[2] == need.source:
                found.append((parts[0], parts[1]))
    if not found and raw.startswith(("gcc", "linux")):
        for hashfile in buildroot.glob("**/*.hash"):
            for line in hashfile.read_text(errors="replace").splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[2] == need.source:
                    found.append((parts[0], parts[1]))
    return found


def matches(path: Path, hashes: list[tuple[str, str]]) -> bool:
    if not hashes:
        return False
    for algo, want in hashes:
        h = hashlib.new(algo)
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != want:
            return False
    return True


class DebianSources:
    """sha256 -> URL of every file of the Debian source packages asked for."""

    def __init__(self, work: Path) -> None:
        self.work = work
        lists = work / "lists"
        lists.mkdir(parents=True, exist_ok=True)
        (work / "cache").mkdir(exist_ok=True)
        sources = work / "sources.list"
        sources.write_text("".join(f"deb-src {DEBIAN} {s} main\n" for s in SUITES))
        self.apt = [
            "-o", f"Dir::Etc::SourceList={sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={lists}",
            "-o", f"Dir::Cache={work / 'cache'}",
        ]  # fmt: skip
        if not any(lists.glob("*Sources*")):
            subprocess.run(["apt-get", *self.apt, "update", "-qq"], check=True)

    def files(self, source_pkg: str) -> dict[str, tuple[str, str]]:
        """sha256 -> (file name, URL) for every version of source_pkg."""
        out = subprocess.run(
            ["apt-cache", *self.apt, "showsrc", source_pkg], capture_output=True, text=True
        ).stdout
        result: dict[str, tuple[str, str]] = {}
        for record in out.split("\n\n"):
            directory = re.search(r"^Directory: (\S+)", record, re.M)
            block = re.search(r"^Checksums-Sha256:\n((?: .*\n?)+)", record, re.M)
            if not directory or not block:
                continue
            for line in block.group(1).splitlines():
                sha, _size, name = line.split()
                result[sha] = (name, f"{DEBIAN}/{directory.group(1)}/{name}")
        return result

    def orig(self, source_pkg: str, version: str) -> tuple[str, str] | None:
        """(name, URL) of the main orig tarball of one version."""
        out = subprocess.run(
            ["apt-cache", *self.apt, "showsrc", source_pkg], capture_output=True, text=True
        ).stdout
        for record in out.split("\n\n"):
            if f"\nVersion: {version}\n" not in f"\n{record}\n":
                continue
            directory = re.search(r"^Directory: (\S+)", record, re.M)
            for name in re.findall(r"^ \S+ \d+ (\S+\.orig\.tar\.\w+)$", record, re.M):
                if directory:
                    return name, f"{DEBIAN}/{directory.group(1)}/{name}"
        return None

    def versions(self, source_pkg: str) -> list[str]:
        out = subprocess.run(
            ["apt-cache", *self.apt, "showsrc", source_pkg], capture_output=True, text=True
        ).stdout
        found = set(re.findall(r"^Version: (\S+)", out, re.M))
        return sorted(found, key=lambda v: vkey(upstream(v)))


def debian_names(need: Need) -> list[str]:
    if need.package in DEBIAN_NAMES:
        return DEBIAN_NAMES[need.package]
    return [need.package.removeprefix("host-").removeprefix("python-")]


def fetch(url: str, dest: Path) -> bool:
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=300) as r, tmp.open("wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except OSError as e:
        print(f"         {url}: {e}")
        return False
    tmp.replace(dest)
    return True


def upstream(version: str) -> str:
    """Debian version -> upstream version: epoch, revision and repack tags dropped."""
    v = version.split(":", 1)[-1].rsplit("-", 1)[0]
    v = re.sub(r"\+really", "+", v)
    if "+" in v and re.search(r"\+(dfsg|ds|repack)", v):
        v = v.split("+")[0]
    return re.sub(r"(dfsg|ds|repack)\d*$", "", v).rstrip(".+~")


def vkey(v: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", v)][:4]


def ranked(wanted: str, versions: list[str]) -> list[str]:
    """Debian versions, best substitute first: the same upstream version, then
    the same major.minor (newest patch level first), then the nearest release."""
    want = [*vkey(wanted), 0, 0]

    def rank(v: str) -> tuple[int, int, int, int, int]:
        have = [*vkey(upstream(v)), 0, 0, 0]
        exact = 0 if upstream(v) == wanted else 1
        # binutils and gcc publish dated development snapshots: releases first
        snapshot = 1 if re.search(r"\.(50|90)\.\d{8}", v) else 0
        return (exact, snapshot, abs(have[0] - want[0]), abs(have[1] - want[1]), -have[2])

    return sorted((v for v in versions if "~" not in v), key=rank)


def substitute(debian: DebianSources, need: Need, buildroot: Path, src_root: Path) -> str | None:
    """Unpack the closest Debian orig tarball, apply Buildroot's patches; return its version."""
    for name in debian_names(need):
        dest = src_root / override_var(need.package)
        marker = dest / ".pyupdate-substitute"
        for chosen in ranked(need.version.split("-")[0], debian.versions(name)):
            orig = debian.orig(name, chosen)
            if not orig:
                continue
            if marker.exists() and marker.read_text().split()[0] == f"{name}={chosen}":
                return marker.read_text().strip()
            # gcc-initial and gcc-final, linux and linux-headers: one source tree
            for other in src_root.glob("*/.pyupdate-substitute"):
                if other.read_text().split()[0] == f"{name}={chosen}":
                    shutil.rmtree(dest, ignore_errors=True)
                    dest.symlink_to(other.parent.name)
                    return other.read_text().strip()
            with tempfile.TemporaryDirectory(dir=src_root) as tmp:
                tarball = Path(tmp) / orig[0]
                if not fetch(orig[1], tarball):
                    continue
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir(parents=True)
                unpack(tarball, dest, need.package.removeprefix("host-"))
            notes = apply_patches(need, buildroot, dest)
            marker.write_text(f"{name}={chosen} {notes}\n")
            return marker.read_text().strip()
    return None


def unpack(tarball: Path, dest: Path, subdir: str = "") -> None:
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(dest)], check=True)
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        top = entries[0]
        for e in top.iterdir():
            e.rename(dest / e.name)
        top.rmdir()
    # a repository export whose release tarball is one of its folders (expat)
    if (
        subdir
        and (dest / subdir / "configure.ac").exists()
        and not (dest / "configure.ac").exists()
    ):
        inner = dest / subdir
        keep = dest.parent / f".{dest.name}.inner"
        inner.rename(keep)
        shutil.rmtree(dest)
        keep.rename(dest)
    # gcc's Debian orig holds the upstream tarball itself
    inner = [e for e in dest.iterdir() if re.match(r"gcc-[\d.]+(-dfsg)?\.tar\.", e.name)]
    if inner and not (dest / "configure").exists():
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            shutil.move(str(inner[0]), tmp)
            for e in list(dest.iterdir()):
                shutil.rmtree(e) if e.is_dir() else e.unlink()
            unpack(Path(tmp) / inner[0].name, dest)


def apply_patches(need: Need, buildroot: Path, dest: Path) -> str:
    raw = need.package.removeprefix("host-")
    base = {"gcc-final": "gcc", "gcc-initial": "gcc", "linux-headers": "linux",
            "uboot-tools": "uboot-tools"}.get(raw, raw)  # fmt: skip
    pkgdirs = list(buildroot.glob(f"package/{base}")) + list(buildroot.glob(f"boot/{base}"))
    patches: list[Path] = []
    for d in pkgdirs:
        patches += sorted(d.glob("*.patch"))
        vdir = d / need.version
        if vdir.is_dir():
            patches += sorted(vdir.glob("*.patch"))
    applied, skipped = 0, []
    for p in patches:
        dry = subprocess.run(["patch", "-p1", "--dry-run", "-s", "-f", "-d", str(dest), "-i", str(p)],
                             capture_output=True)  # fmt: skip
        if dry.returncode == 0:
            subprocess.run(["patch", "-p1", "-s", "-f", "-d", str(dest), "-i", str(p)], check=True)
            applied += 1
        else:
            skipped.append(p.name)
    _without_doc_subdir(dest)
    # Debian's orig of some autotools projects is a git export (libconfuse,
    # libyaml): generate what their release tarball ships, with the host's autotools
    # (kmod ships configure.ac too but Buildroot builds it with meson).
    autotools = any("autotools-package" in mk.read_text() for d in pkgdirs for mk in d.glob("*.mk"))
    if autotools and not (dest / "configure").exists() and (dest / "configure.ac").exists():
        run = subprocess.run(["autoreconf", "-fi"], cwd=dest, capture_output=True, text=True)
        if run.returncode:
            last = (run.stderr.strip().splitlines() or ["?"])[-1]
            raise SystemExit(f"fill_downloads.py: {need.package}: autoreconf failed: {last}")
    fixup = WITHOUT_MANUAL.get(override_var(need.package))
    if fixup:
        fixup(dest)
    # One mtime for every file: a patched Makefile.am or configure.ac must not
    # look newer than the generated files, or make re-runs automake (which
    # Buildroot has not built yet when host-tar needs it).
    subprocess.run(
        ["find", str(dest), "-exec", "touch", "-h", "-d", "@1700000000", "{}", "+"], check=True
    )
    return f"patches-applied={applied} skipped={','.join(skipped) or '-'}"


def override_var(package: str) -> str:
    raw = package.removeprefix("host-")
    raw = {"uboot-tools": "uboot-tools"}.get(raw, raw)
    return raw.upper().replace("-", "_")


def from_pypi(need: Need, dest: Path, hashes: list[tuple[str, str]]) -> bool:
    """PyPI is a registry we reach: take Buildroot's own files.pythonhosted.org URI."""
    for uri in need.uris:
        url = uri.split("+", 1)[-1]
        if "files.pythonhosted.org" in url and fetch(f"{url}/{need.source}", dest):
            if matches(dest, hashes):
                return True
            dest.unlink()
    return False


def from_pypi_index(need: Need, dest: Path, hashes: list[tuple[str, str]]) -> bool:
    """A project that also publishes its release tarball on PyPI (meson): same bytes."""
    m = re.match(r"(.+?)-\d", need.source)
    if not m or not hashes:
        return False
    try:
        with urllib.request.urlopen(f"https://pypi.org/simple/{m.group(1)}/", timeout=60) as r:
            index = r.read().decode(errors="replace")
    except OSError:
        return False
    for url in re.findall(r'href="(https://files\.pythonhosted\.org/[^"#]+)', index):
        if url.endswith("/" + need.source) and fetch(url, dest):
            if matches(dest, hashes):
                return True
            dest.unlink()
    return False


def _without_doc_subdir(tree: Path) -> None:
    """A doc/ whose manual Debian removed (or doc/ itself gone): not built at all."""
    doc = tree / "doc"
    makefile_in = doc / "Makefile.in"
    if makefile_in.exists():
        texinfos = re.findall(r"^info_TEXINFOS = (\S+)", makefile_in.read_text(), re.M)
        if all((doc / t).exists() for t in texinfos):
            return
    elif doc.is_dir() or not (tree / "configure").exists():
        return
    else:
        # configure.ac too: Buildroot re-runs autoreconf on packages it patches (gmp)
        for name in ("configure", "configure.ac"):
            if (tree / name).exists():
                text = (tree / name).read_text()
                (tree / name).write_text(re.sub(r"([ \t\[])doc/Makefile\b ?", r"\1", text))
    for name in ("Makefile.in", "Makefile.am"):
        f = tree / name
        if f.exists():
            text = re.sub(r"^(SUBDIRS = .*?) doc( |$)", r"\1\2", f.read_text(), flags=re.M)
            f.write_text(text)


def _bison_without_manual(tree: Path) -> None:
    # the examples are extracted from the manual: an empty one has none
    stub = tree / "doc/bison.texi"
    if not stub.exists():
        stub.write_text("\\input texinfo\n@setfilename bison.info\n@settitle stub\n@bye\n")
    makefile = tree / "Makefile.in"
    text = re.sub(r"^INFO_DEPS = .*$", "INFO_DEPS =", makefile.read_text(), flags=re.M)
    makefile.write_text(re.sub(r"^all-local: .*info\.bak$", "all-local:", text, flags=re.M))


def _gawk_without_manual(tree: Path) -> None:
    # awklib's programs are extracted from the manual too; gawk runs without them
    for name in ("Makefile.in", "Makefile.am"):
        f = tree / name
        f.write_text(re.sub(r"^(SUBDIRS = .*?) awklib( |$)", r"\1\2", f.read_text(), flags=re.M))


def _gcc_without_manual(tree: Path) -> None:
    # tm.texi is made from the (removed) tm.texi.in only to be compared with
    # the shipped manual; nothing the compiler needs comes from it
    makefile = tree / "gcc/Makefile.in"
    text = makefile.read_text()
    rule = re.search(r"^s-tm-texi: build/genhooks.*?\n(?:\t.*\n)+", text, re.M)
    if rule:
        head = rule.group(0).splitlines()[0]
        makefile.write_text(text.replace(rule.group(0), f"{head}\n\t$(STAMP) $@\n"))


def _glibc_without_manual(tree: Path) -> None:
    makeconfig = tree / "Makeconfig"
    if not (tree / "manual").exists():
        makeconfig.write_text(re.sub(r"(\s)manual(\s)", r"\1\2", makeconfig.read_text(), count=1))


def _sqlite_amalgamation(tree: Path) -> None:
    """Debian ships sqlite's full tree (it builds the Tcl extension); Buildroot
    builds the amalgamation, which sqlite's own makefile makes from that tree."""
    if (tree / "sqlite3.c").exists():
        return
    with tempfile.TemporaryDirectory(dir=tree.parent) as tmp:
        work = Path(tmp)
        (work / "bin").mkdir()
        (work / "bin/tree").write_text("#!/bin/sh\nexit 0\n")  # only lists the result
        (work / "bin/tree").chmod(0o755)
        env = {**os.environ, "PATH": f"{work / 'bin'}:{os.environ['PATH']}"}
        subprocess.run([str(tree / "configure")], cwd=work, check=True, capture_output=True)
        subprocess.run(
            ["make", "amalgamation-tarball"], cwd=work, env=env, check=True, capture_output=True
        )
        tarball = next(work.glob("sqlite-autoconf-*.tar.gz"))
        for e in list(tree.iterdir()):
            shutil.rmtree(e) if e.is_dir() else e.unlink()
        unpack(tarball, tree)


# Debian's repacks drop GFDL manuals that the build still names as inputs:
# build without them (Buildroot never installs host info pages). Most keep
# them in doc/ (_without_doc_subdir); bison builds its manual from the top.
WITHOUT_MANUAL = {
    "BISON": _bison_without_manual,
    "GAWK": _gawk_without_manual,
    "GCC_FINAL": _gcc_without_manual,
    "GCC_INITIAL": _gcc_without_manual,
    "GLIBC": _glibc_without_manual,
    "SQLITE": _sqlite_amalgamation,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--buildroot", type=Path, required=True)
    ap.add_argument("--output", type=Path, required=True, help="configured Buildroot O= dir")
    ap.add_argument("--dl", type=Path, required=True, help="BR2_DL_DIR to fill")
    ap.add_argument("--work", type=Path, help="apt lists cache (default DL/.debian)")
    ap.add_argument("--substitute", type=Path,
                    help="unpack Debian's closest source here for what is missing; writes local.mk")  # fmt: skip
    args = ap.parse_args()
    overrides: dict[str, str] = {}
    debian = DebianSources(args.work or args.dl / ".debian")
    missing = []
    for need in needs(args.output):
        raw = need.package.removeprefix("host-")
        # Buildroot keeps one download dir per package, shared by target and host.
        dl_name = {"gcc-final": "gcc", "host-gcc-initial": "gcc", "host-gcc-final": "gcc",
                   "linux-headers": "linux", "host-uboot-tools": "uboot"}.get(need.package, raw)  # fmt: skip
        dest = args.dl / dl_name / need.source
        dest.parent.mkdir(parents=True, exist_ok=True)
        hashes = hash_lines(args.buildroot, args.output, need)
        if dest.exists() and matches(dest, hashes):
            print(f"ok       {need.package} {need.source}")
            continue
        if from_pypi(need, dest, hashes) or from_pypi_index(need, dest, hashes):
            print(f"pypi     {need.package} {need.source}")
            continue
        sha = dict(hashes).get("sha256")
        got = False
        for name in debian_names(need):
            files = debian.files(name)
            if sha and sha in files and fetch(files[sha][1], dest):
                if matches(dest, hashes):
                    print(f"debian   {need.package} {need.source} <- {files[sha][0]}")
                    got = True
                    break
                dest.unlink()
        if got:
            continue
        if args.substitute:
            var = override_var(need.package)
            if var in overrides:
                continue
            # A tree put there by hand (docs/buildroot.md: what the registries lack)
            marker = args.substitute / var / ".pyupdate-substitute"
            if marker.exists() and marker.read_text().startswith("local:"):
                overrides[var] = marker.read_text().strip()
                print(f"LOCAL    {need.package} {need.version} {need.source} -> {overrides[var]}")
                continue
            got_sub = substitute(debian, need, args.buildroot, args.substitute)
            if got_sub:
                overrides[var] = got_sub
                print(f"SUBST    {need.package} {need.version} {need.source} -> {got_sub}")
                continue
        versions = {n: debian.versions(n) for n in debian_names(need)}
        missing.append(need)
        have = "; ".join(f"{n}: {' '.join(v[-4:]) or 'none'}" for n, v in versions.items())
        print(
            f"MISSING  {need.package} {need.version} {need.source} (sha256 {sha or '-'}; debian {have})"
        )
    if args.substitute:
        # linux-headers "as kernel" takes the kernel's source; Buildroot refuses both
        if "LINUX" in overrides:
            overrides.pop("LINUX_HEADERS", None)
        lines = []
        for v, note in sorted(overrides.items()):
            lines.append(f"# {note}\n{v}_OVERRIDE_SRCDIR = {args.substitute / v}\n")
            if v in VERSION_IN_PATHS and not note.startswith("local:"):
                tree_version = upstream(note.split()[0].split("=", 1)[1])
                lines.append(f"override {v}_VERSION = {tree_version}\n")
            # e.g. a substitute of another minor version names it for Buildroot
            extra = args.substitute / v / ".pyupdate-local.mk"
            if extra.exists():
                lines.append(extra.read_text())
        (args.substitute / "local.mk").write_text("".join(lines))
    print(f"{len(missing)} missing, {len(overrides)} substituted")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
