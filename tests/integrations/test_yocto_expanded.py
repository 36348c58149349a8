"""The recorded expansion of meta-pyupdate (ci/yocto/expand.py) against the layer and wic.

Without snapshots (CI): the record must match the layer's files, carry no
path of the machine that made it, and its wks must be one ci/yocto/wks.py can
assemble. With PYUPDATE_SNAPSHOTS (bitbake/ and openembedded-core/, see
docs/yocto.md): a live expansion equals the record, and wks.py and oe-core's
wic make disks with the same partition table and filesystem labels.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import record
import wks

REPO = Path(__file__).resolve().parents[2]

SNAPSHOTS = os.environ.get("PYUPDATE_SNAPSHOTS")
needs_snapshots = pytest.mark.skipif(not SNAPSHOTS, reason="PYUPDATE_SNAPSHOTS is not set")


# Both machines' expansions are recorded (ci/yocto/expand.py --machine); the
# QEMU scenario boots qemux86-64's, the record checks hold for both.
@pytest.fixture(scope="module", params=["qemux86-64", "qemuarm64"])
def data(request) -> dict:
    return record.load(request.param)


def test_record_matches_the_layer(data: dict) -> None:
    if record.stale(data):
        pytest.fail(record.STALE, pytrace=False)


def test_record_holds_no_path_of_the_machine_that_made_it(data: dict) -> None:
    text = json.dumps(data)
    # paths inside the build dir are fine: @@BUILDDIR@@/tmp/work/...
    assert not re.findall(r"(?<![@\w])/(?:tmp|work|home|root)/", text)
    assert str(REPO) not in text


def test_record_has_every_task_the_layer_adds(data: dict) -> None:
    recipes = data["builds"]["release-1"]
    tasks = {(pn, t["task"]) for pn, r in recipes.items() for t in r.get("tasks", []) if t["parts"]}
    assert {
        ("u-boot", "do_compile"),
        ("u-boot", "do_deploy"),
        ("libubootenv", "do_install"),
        ("pyupdate-agent", "do_install"),
        ("pyupdate-state-scripts-test", "do_install"),
    } <= tasks
    image = recipes["pyupdate-image-minimal"]
    assert image["image_cmd"]["pyupdate"] and image["rootfs_postprocess"]
    names = {
        b["pyupdate-image-minimal"]["vars"]["PYUPDATE_ARTIFACT_NAME"]
        for b in data["builds"].values()
    }
    assert len(names) == len(data["builds"])


def test_recorded_wks_is_laid_out_as_wic_lays_it(data: dict) -> None:
    layout = wks.parse(data["builds"]["release-1"]["pyupdate-image-minimal"]["wks"])
    assert [p.label for p in layout.parts] == ["boot", "rootfsa", "rootfsb", "data"]
    assert layout.parts[0].start == 2048 and layout.parts[0].active
    for a, b in zip(layout.parts, layout.parts[1:], strict=False):
        assert b.start >= a.start + a.sectors and b.start % 2048 == 0


def test_wks_outside_the_subset_is_refused_in_one_line() -> None:
    with pytest.raises(wks.WksError, match="--source rawcopy is not assembled without wic"):
        wks.parse("part /x --source rawcopy --fstype=ext4 --fixed-size 8M\n")


@needs_snapshots
def test_live_expansion_equals_the_record(data: dict) -> None:
    import expand

    live = expand.expand(Path(SNAPSHOTS).resolve(), data["machine"])
    assert live == data, f"the live expansion differs: {record.STALE}"


@needs_snapshots
def test_wks_py_and_wic_make_the_same_partitions(data: dict, tmp_path: Path) -> None:
    import run_tasks

    wic = run_tasks.wic_script(Path(SNAPSHOTS))
    assert wic is not None, "no oe-core wic beside the snapshots (docs/yocto.md)"
    image = data["builds"]["release-1"]["pyupdate-image-minimal"]
    rootfs, deploy = tmp_path / "rootfs", tmp_path / "deploy"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/fstab").write_text("# stand-in\n")
    deploy.mkdir()
    for name in image["vars"]["IMAGE_BOOT_FILES"].split():
        (deploy / name.split(";")[0]).write_bytes(b"x" * 16384)
    wks_file = tmp_path / "pyupdate-ab.wks"
    wks_file.write_text(image["wks"])
    extra = (image["vars"].get("WIC_CREATE_EXTRA_ARGS") or "").split()
    layout, boot_files = wks.parse(image["wks"]), image["vars"]["IMAGE_BOOT_FILES"]
    ours = wks.assemble(
        layout, rootfs, deploy, boot_files, tmp_path / "ours.img", "--no-fstab-update" not in extra
    )
    env = {**os.environ, "PATH": f"/usr/sbin:/sbin:{os.environ['PATH']}"}
    theirs = wks.assemble_with_wic(
        wic, wks_file, image["vars"], rootfs, deploy, tmp_path / "wic.img", env, extra
    )
    assert wks.describe(ours) == wks.describe(theirs)
    rootfs_a = wks.describe(theirs)[1]
    assert wks.read_file(ours, wks.describe(ours)[1], "/etc/fstab") == wks.read_file(
        theirs, rootfs_a, "/etc/fstab"
    )
    shutil.rmtree(rootfs)
