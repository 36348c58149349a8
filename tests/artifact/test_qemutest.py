"""pyupdate-qemu-test without booting: inputs found and refused, reports, budget, the broken
and the veto releases.

The scenarios themselves run on real images in tests/qemu/test_qemu_test_tool.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import xmlschema

from pyupdate_artifact.reader import read_artifact
from pyupdate_artifact.verify import load_verifier
from pyupdate_host.image.artifact import write_rootfs_artifact
from pyupdate_host.image.board import resolve
from pyupdate_host.qemutest import build_output, cli, media, report, runner
from pyupdate_host.qemutest.scenarios import Scenario

TOOL = [sys.executable, "-m", "pyupdate_host.qemutest.cli"]
XSD = Path(__file__).with_name("junit-10.xsd")


def _keys(tmp: Path, name: str) -> tuple[Path, Path]:
    priv, pub = tmp / f"{name}.pem", tmp / f"{name}.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(priv)], check=True, capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "pkey", "-in", str(priv), "-pubout", "-out", str(pub)], check=True)
    return priv, pub


def _rootfs(tmp: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=tmp))
    tree = tmp / "tree"
    (tree / "sbin").mkdir(parents=True)
    (tree / "sbin/init").write_text("#!/bin/sh\n")
    (tree / "etc").mkdir()
    (tree / "etc/hostname").write_text("device\n")
    image = tmp / "rootfs.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image), "4M"], check=True)
    return image


@pytest.fixture
def build(tmp_path: Path) -> dict[str, Path]:
    """A board config, firmware, disk and two signed artifacts: what a build leaves."""
    priv, pub = _keys(tmp_path, "signing")
    board = json.loads(resolve("qemu-x86_64").read_text())
    firmware = tmp_path / "u-boot.rom"
    firmware.write_bytes(b"\0" * 1024)
    board["uboot"]["binary"] = str(firmware)
    board_file = tmp_path / "board.json"
    board_file.write_text(json.dumps(board))
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    update = tmp_path / "release-2.mender"
    write_rootfs_artifact(_rootfs(tmp_path), update, "release-2", board["device_type"], priv)
    return {"board": board_file, "firmware": firmware, "disk": disk, "update": update,
            "key": priv, "verify": pub}  # fmt: skip


def _tool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TOOL, *map(str, args)], capture_output=True, text=True, timeout=120)


def _one_line_usage_error(run: subprocess.CompletedProcess[str], *words: str) -> None:
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyupdate-qemu-test: "), run.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_list_names_every_scenario() -> None:
    run = _tool("--list")
    assert run.returncode == 0
    names = [line.split()[0] for line in run.stdout.splitlines()]
    assert names == [
        "boot", "standalone", "rollback", "power-cut", "managed", "managed-phases",
        "managed-window", "delta",
    ]  # fmt: skip


def test_missing_firmware_is_a_usage_error_before_anything_boots(build, tmp_path: Path) -> None:
    run = _tool("--board", build["board"], "--disk", build["disk"], "--update", build["update"],
                "--firmware", tmp_path / "nope.rom", "--logs", tmp_path / "logs")  # fmt: skip
    _one_line_usage_error(run, "--firmware", "nope.rom", "no such file")
    assert not (tmp_path / "logs").exists()


def test_wrong_verify_key_is_one_line(build, tmp_path: Path) -> None:
    _, other = _keys(tmp_path, "other")
    run = _tool("--board", build["board"], "--disk", build["disk"], "--update", build["update"],
                "--verify-key", other)  # fmt: skip
    _one_line_usage_error(run, "--update: release-2.mender", "does not verify")


def test_unsigned_update_with_a_verify_key_is_refused(build, tmp_path: Path) -> None:
    unsigned = tmp_path / "unsigned.mender"
    write_rootfs_artifact(_rootfs(tmp_path), unsigned, "release-3", "qemu-x86_64", None)
    run = _tool("--board", build["board"], "--disk", build["disk"], "--update", unsigned,
                "--verify-key", build["verify"])  # fmt: skip
    _one_line_usage_error(run, "--update")


def test_unsigned_veto_with_a_verify_key_is_refused(build, tmp_path: Path) -> None:
    unsigned = tmp_path / "veto.mender"
    write_rootfs_artifact(_rootfs(tmp_path), unsigned, "release-2-veto", "qemu-x86_64", None)
    run = _tool("--board", build["board"], "--disk", build["disk"], "--update", build["update"],
                "--veto", unsigned, "--verify-key", build["verify"])  # fmt: skip
    _one_line_usage_error(run, "--veto")


@pytest.mark.parametrize(
    "args, words",
    [
        ([], ["--qemuboot, --images or --board"]),
        (["--board", "qemu-x86_64"], ["--board needs --disk"]),
        (["--board", "no-such-board", "--disk", "x"], ["no such shipped board"]),
        (["--images", "/nonexistent"], ["--images", "not a directory"]),
        (["--qemuboot", "/nonexistent.qemuboot.conf"], ["--qemuboot", "no such file"]),
        (["--scenario", "standalone,fly"], ["no such scenario: fly"]),
        (
            [
                "--skip",
                "boot,standalone,rollback,power-cut,managed,managed-phases,managed-window,delta",
            ],
            ["no scenario left"],
        ),
    ],
)
def test_bad_input_is_one_line(args: list[str], words: list[str]) -> None:
    _one_line_usage_error(_tool(*args), *words)


def test_update_for_another_device_type_is_refused(build, tmp_path: Path) -> None:
    other = tmp_path / "other.mender"
    write_rootfs_artifact(_rootfs(tmp_path), other, "release-2", "raspberrypi4", build["key"])
    run = _tool("--board", build["board"], "--disk", build["disk"], "--update", other)
    _one_line_usage_error(run, "raspberrypi4", "qemu-x86_64")


def test_qemuboot_conf_gives_machine_firmware_disk_and_board(build, tmp_path: Path) -> None:
    """A deploy dir as oe-core and meta-pyupdate leave it; paths relative to the conf."""
    deploy = tmp_path / "deploy/images/qemux86-64"
    deploy.mkdir(parents=True)
    board = json.loads(build["board"].read_text())
    board["qemu"] = {"binary": "qemu-system-x86_64", "machine": "none"}  # as the layer writes it
    board["uboot"]["binary"] = "/build/tmp/deploy/images/qemux86-64/u-boot.rom"
    (deploy / "pyupdate-board.json").write_text(json.dumps(board))
    (deploy / "u-boot.rom").write_bytes(b"\0")
    (deploy / "pyupdate-image-minimal-qemux86-64.wic").write_bytes(b"\0" * 512)
    conf = deploy / "pyupdate-image-minimal-qemux86-64.qemuboot.conf"
    conf.write_text(
        "[config_bsp]\ndeploy_dir_image = .\nimage_link_name = pyupdate-image-minimal-qemux86-64\n"
        "qb_system_name = qemu-system-x86_64\nqb_machine = -machine pc\nqb_cpu = -cpu qemu64\n"
        "qb_mem = -m 512\nqb_default_bios = u-boot.rom\nqb_default_fstype = wic\n"
        "qb_drive_type = /dev/vd\nqb_graphics = \n"
    )
    got, disk = build_output.from_qemuboot(conf, None, None)
    assert (got.qemu.machine, got.qemu.cpu, got.qemu.memory_mib) == ("pc", "qemu64", 512)
    assert got.qemu.disk_interface == "virtio"
    assert Path(got.uboot.binary) == (deploy / "u-boot.rom").resolve()
    assert disk == (deploy / "pyupdate-image-minimal-qemux86-64.wic").resolve()
    (deploy / "u-boot.rom").unlink()
    with pytest.raises(build_output.UsageError, match="--firmware"):
        build_output.from_qemuboot(conf, None, None)
    conf.write_text("qb_mem = -m 512\n")
    with pytest.raises(build_output.UsageError, match="qemuboot"):
        build_output.from_qemuboot(conf, None, None)


def test_buildroot_images_dir_finds_board_disk_and_firmware(build, tmp_path: Path) -> None:
    """The board config names the build machine's BINARIES_DIR; a copied images/ still works."""
    images = tmp_path / "images"
    (images / "pyupdate").mkdir(parents=True)
    board = json.loads(build["board"].read_text())
    board["uboot"]["binary"] = "/elsewhere/output/images/u-boot.rom"
    (images / "pyupdate/board.json").write_text(json.dumps(board))
    (images / "u-boot.rom").write_bytes(b"\0")
    (images / "disk.img").write_bytes(b"\0" * 512)
    got, disk = build_output.from_images(images, None, None)
    assert Path(got.uboot.binary) == (images / "u-boot.rom").resolve()
    assert disk == (images / "disk.img").resolve()


def test_broken_artifact_has_no_init_and_is_signed(build, tmp_path: Path) -> None:
    update = build_output.read_header(build["update"], "--update", build["verify"])
    broken = media.broken_artifact(update, build["key"], tmp_path)
    assert broken.name == "release-2-broken"
    header = read_artifact(broken.path, verify_keys=[load_verifier(build["verify"])],
                           require_signature=True)  # fmt: skip
    assert header.artifact_name == "release-2-broken"
    slot = tmp_path / "slot.img"
    read_artifact(broken.path, sink=media._FileSink(slot))
    listing = subprocess.run(["debugfs", "-R", "ls -l /sbin", str(slot)],
                             capture_output=True, text=True).stdout  # fmt: skip
    assert "init" not in listing
    etc = subprocess.run(["debugfs", "-R", "cat /etc/hostname", str(slot)],
                         capture_output=True, text=True).stdout  # fmt: skip
    assert etc.strip() == "device"


def test_veto_artifact_is_the_update_with_a_failing_commit_script(build, tmp_path: Path) -> None:
    update = build_output.read_header(build["update"], "--update", build["verify"])
    veto = media.veto_artifact(update, build["key"], tmp_path)
    assert veto.name == "release-2-veto"
    header = read_artifact(veto.path, verify_keys=[load_verifier(build["verify"])],
                           require_signature=True)  # fmt: skip
    assert header.artifact_name == "release-2-veto"
    assert list(header.scripts) == [media.VETO_SCRIPT]
    script = header.scripts[media.VETO_SCRIPT].decode()
    assert media.VETO_MESSAGE in script and script.rstrip().endswith("exit 1")
    slots = [tmp_path / "veto.img", tmp_path / "update.img"]
    read_artifact(veto.path, sink=media._FileSink(slots[0]))
    read_artifact(update.path, sink=media._FileSink(slots[1]))
    assert slots[0].read_bytes() == slots[1].read_bytes()  # the same system, only vetoed
    assert not (tmp_path / media.VETO_SCRIPT).exists()  # nothing left beside the artifact
    assert not (tmp_path / "veto-rootfs.img").exists()


def _results() -> list[runner.Result]:
    return [
        runner.Result("boot", "passed", 12.5, boots=[30.0], notes=["slot A runs release-1"]),
        runner.Result(
            "standalone",
            "failed",
            99.0,
            "pyupdate commit exited 1:\nno /data",
            "U-Boot\x1b[0m 2025.01\x07\nError: store not found",
            Path("s.log"),
        ),
        runner.Result("rollback", "error", 1.0, "OSError: qemu died", "tail"),
        runner.Result("managed", "skipped", message="time budget exceeded"),
    ]


def test_junit_report_validates_and_lists_each_scenario() -> None:
    xml = report.junit_xml(_results(), "pyupdate-qemu-test", {"board": "qemu-x86_64"})
    schema = xmlschema.XMLSchema(str(XSD))
    schema.validate(xml.decode())
    doc = schema.to_dict(xml.decode())
    suite = doc["testsuite"][0]
    assert (suite["@tests"], suite["@failures"], suite["@errors"], suite["@skipped"]) == (
        "4", "1", "1", "1",
    )  # fmt: skip
    cases = {c["@name"]: c for c in suite["testcase"]}
    assert list(cases) == ["boot", "standalone", "rollback", "managed"]
    failure = cases["standalone"]["failure"][0]
    assert failure["@message"] == "pyupdate commit exited 1:"
    assert "Error: store not found" in failure["$"] and "console, last lines" in failure["$"]
    assert "skipped" in cases["managed"]


def test_summary_has_a_line_per_scenario() -> None:
    text = report.summary(_results(), {"board": "qemu-x86_64"})
    assert "standalone   failed" in text and "1/4 passed" in text


def test_budget_cuts_a_hanging_scenario_and_skips_the_rest(tmp_path: Path) -> None:
    def hangs(ctx: object) -> None:
        time.sleep(30)

    def never(ctx: object) -> None:
        raise AssertionError("must not run")

    said: list[str] = []
    started = time.monotonic()
    results = runner.run_all(
        [Scenario("hangs", hangs), Scenario("next", never)],
        None,  # type: ignore[arg-type]  # the fake scenarios boot nothing
        tmp_path / "media.img",
        None,
        tmp_path / "work",
        tmp_path,
        0.5,
        lambda name, text: said.append(f"{name}: {text}"),
    )
    assert time.monotonic() - started < 10
    assert [(r.name, r.status) for r in results] == [("hangs", "error"), ("next", "skipped")]
    assert "budget" in results[0].message and "budget" in results[1].message


def test_exit_code_3_when_the_budget_ran_out(monkeypatch, build, tmp_path: Path) -> None:
    monkeypatch.setattr(cli, "check_host", lambda *a: None)
    monkeypatch.setattr(
        cli,
        "run_all",
        lambda scenarios, *a: [
            runner.Result(s.name, "skipped", message="time budget exceeded") for s in scenarios
        ],
    )
    code = cli.main(["--board", str(build["board"]), "--disk", str(build["disk"]),
                     "--update", str(build["update"]), "--scenario", "boot,standalone",
                     "--logs", str(tmp_path / "logs"), "--junit", str(tmp_path / "r.xml")])  # fmt: skip
    assert code == 3
    assert (tmp_path / "logs/summary.txt").read_text().count("skipped") == 2
    xmlschema.XMLSchema(str(XSD)).validate(str(tmp_path / "r.xml"))


def test_console_tail_keeps_serial_line_ends_as_one_line(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"U-Boot 2025.01\r\r\nAB: booting part 2\r\r\nroot@pyupdate:~# ")
    assert runner._tail(log, 2) == "AB: booting part 2\nroot@pyupdate:~# "
