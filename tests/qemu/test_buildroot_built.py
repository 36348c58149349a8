"""What a real Buildroot build of buildroot-ext made, checked by pyupdate-qemu-test.

Opt-in (`make buildroot-image` then `make buildroot-test`): PYUPDATE_BUILDROOT_OUT
names ci/buildroot/build.sh's output for one board (WORK/BOARD), next to which
the script left BOARD-release-1/ (output/images/ of release 1: disk.img,
U-Boot, pyupdate/board.json, and the throw-away key pair) and BOARD-release-2/
(the next release's artifact). Everything booted here came out of Buildroot:
toolchain, kernel, U-Boot, BusyBox, Python, the agent and the post-image
script's disk. The tool makes the broken release from release 2 (no init)
and signs it with the build's key.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema

OUT = Path(os.environ.get("PYUPDATE_BUILDROOT_OUT", "build/buildroot/qemu-x86_64")).resolve()
RELEASE_1 = OUT.parent / f"{OUT.name}-release-1"
RELEASE_2 = OUT.parent / f"{OUT.name}-release-2"
TOOL = Path(sys.executable).parent / "pyupdate-qemu-test"
XSD = Path(__file__).resolve().parents[1] / "artifact" / "junit-10.xsd"


def test_pyupdate_qemu_test_passes_on_the_buildroot_build(tmp_path: Path) -> None:
    update = RELEASE_2 / "pyupdate-buildroot-2.mender"
    for needed in (RELEASE_1 / "disk.img", RELEASE_1 / "pyupdate/board.json", update):
        if not needed.exists():
            pytest.fail(f"no Buildroot build output: run `make buildroot-image` ({needed})",
                        pytrace=False)  # fmt: skip
    report = tmp_path / "report.xml"
    logs = Path(os.environ.get("PYUPDATE_QEMU_TEST_LOGS", tmp_path / "logs"))
    run = subprocess.run(
        [str(TOOL), "--images", str(RELEASE_1), "--update", str(update),
         "--signing-key", str(RELEASE_1 / "signing-key.pem"),
         "--verify-key", str(RELEASE_1 / "verify-key.pem"),
         "--junit", str(report), "--logs", str(logs), "--quiet"],
        capture_output=True, text=True, timeout=90 * 60,
    )  # fmt: skip
    print(run.stdout, run.stderr)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(str(report))
    cases = [c["@name"] for c in schema.to_dict(str(report))["testsuite"][0]["testcase"]]
    assert cases == ["boot", "standalone", "rollback", "power-cut", "managed"]
