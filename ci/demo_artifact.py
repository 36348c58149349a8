"""`make demo`: the main job, step by step with timings.

Today it shows the artifact tool's round trip on a generated image: write
(gzip and zstd), sign, read, validate, and a tampered copy refused. When the
QEMU images exist it grows into the full device update.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TOOL = str(BIN / "pyupdate-artifact")
MIB = 1 << 20


def step(title: str, argv: list[str], *, expect_fail: bool = False) -> subprocess.CompletedProcess:
    start = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True)
    took = time.monotonic() - start
    ok = (result.returncode != 0) if expect_fail else (result.returncode == 0)
    mark = "ok " if ok else "FAIL"
    print(f"[{mark}] {title:<52} {took:6.2f} s")
    if not ok or expect_fail:
        for line in (result.stderr or result.stdout).strip().splitlines()[-3:]:
            print(f"         {line}")
    if not ok:
        raise SystemExit(1)
    return result


def make_image(path: Path, mib: int) -> None:
    """MiB i: random if i%3==0, zeros if 1, source-like text if 2 (the benchmark mix)."""
    line = b"    def update(self, data: bytes) -> None:  # hash the payload\n"
    text = (line * (MIB // len(line) + 1))[:MIB]
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(os.urandom(MIB) if i % 3 == 0 else bytes(MIB) if i % 3 == 1 else text)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="pyupdate-demo-"))
    try:
        image = work / "rootfs.ext4"
        make_image(image, 256)
        print(f"pyupdate demo: artifact round trip on a 256 MiB image in {work}\n")
        key, pub = work / "signing.key", work / "signing.pub"
        step(
            "generate an ECDSA P-256 signing key",
            ["openssl", "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", str(key)],
        )
        step(
            "extract its public key",
            ["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)],
        )
        for comp in ("gzip", "zstd"):
            out = work / f"release-2-{comp}.mender"
            step(
                f"write rootfs-image, {comp}, signed",
                [
                    TOOL,
                    "write",
                    "rootfs-image",
                    "-f",
                    str(image),
                    "-n",
                    "release-2",
                    "-t",
                    "qemux86-64",
                    "-k",
                    str(key),
                    "--compression",
                    comp,
                    "-o",
                    str(out),
                    "--quiet",
                ],
            )
            print(f"         {out.name}: {out.stat().st_size / MIB:.1f} MiB")
        unsigned = work / "release-2-unsigned.mender"
        step(
            "write rootfs-image, gzip, unsigned",
            [
                TOOL,
                "write",
                "rootfs-image",
                "-f",
                str(image),
                "-n",
                "release-2",
                "-t",
                "qemux86-64",
                "-o",
                str(unsigned),
                "--quiet",
            ],
        )
        step(
            "sign it afterwards (payload not recompressed)",
            [TOOL, "sign", str(unsigned), "-k", str(key)],
        )
        signed = work / "release-2-gzip.mender"
        summary = step("read --json", [TOOL, "read", "--json", str(signed), "-k", str(pub)])
        for line in summary.stdout.splitlines()[:4]:
            print(f"         {line}")
        step("validate with the public key", [TOOL, "validate", str(signed), "-k", str(pub)])
        if shutil.which("mender-artifact"):
            step(
                "mender-artifact validate (the peer agrees)",
                ["mender-artifact", "validate", "-k", str(pub), str(signed)],
            )
        tampered = work / "tampered.mender"
        data = bytearray(signed.read_bytes())
        data[len(data) // 2] ^= 0xFF
        tampered.write_bytes(data)
        step(
            "a tampered copy is refused",
            [TOOL, "validate", str(tampered), "-k", str(pub)],
            expect_fail=True,
        )
        print("\ndemo done")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
