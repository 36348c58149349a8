"""Each Buildroot defconfig, resolved, has what the boot flow and the build host tools need.

Facts: a real `make <name>_defconfig` and `make show-info` when
PYUPDATE_SNAPSHOTS is set, else the record in tests/integrations/data/closure/
(ci/closure/record.py). The fstab lines and the host tool's imports are live.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import agent_closure
import buildroot_closure
import closure_facts
import pytest
from closure_fixtures import br_facts

__all__ = ["br_facts"]
DEFCONFIGS = sorted(p.name for p in (buildroot_closure.BR_EXT / "configs").glob("*_defconfig"))


def _check(br_facts: dict[str, object], facts: dict[str, object]) -> list[str]:
    return buildroot_closure.check_defconfig(
        facts,
        agent_closure.host_tool_closure(),
        br_facts["python_modules"],  # type: ignore[arg-type]
    )


def _one(br_facts: dict[str, object]) -> tuple[str, dict[str, object]]:
    name = "pyupdate_qemu_x86_64_defconfig"
    return name, copy.deepcopy(br_facts["defconfigs"][name])  # type: ignore[index]


@pytest.mark.parametrize("defconfig", DEFCONFIGS)
def test_defconfig_resolves_with_what_the_device_needs(
    br_facts: dict[str, object], defconfig: str
) -> None:
    if not closure_facts.snapshots() and (line := closure_facts.drift(br_facts)):
        pytest.fail(line)
    failures = _check(br_facts, br_facts["defconfigs"][defconfig])  # type: ignore[index]
    assert not failures, "\n".join(failures)


# --- the checks fail on bad input ---------------------------------------------------------------


def test_a_dropped_defconfig_line(br_facts: dict[str, object]) -> None:
    name, facts = _one(br_facts)
    facts["dropped_lines"] = ["BR2_PACKAGE_NONEXISTENT=y"]
    assert (
        f"buildroot-ext/configs/{name}: `BR2_PACKAGE_NONEXISTENT=y` is not in the resolved .config (unknown option or unmet dependency)"
        in _check(br_facts, facts)
    )


def test_kernel_without_vfat(br_facts: dict[str, object]) -> None:
    name, facts = _one(br_facts)
    facts["kernel_config"]["CONFIG_VFAT_FS"] = "m"  # type: ignore[index]
    lines = [f for f in _check(br_facts, facts) if "CONFIG_VFAT_FS" in f]
    assert len(lines) == 1 and lines[0].startswith(
        f"buildroot-ext/configs/{name}: kernel CONFIG_VFAT_FS=y needed"
    )
    assert "is a module" in lines[0]


def test_fstab_by_label_without_busybox_label_support(br_facts: dict[str, object]) -> None:
    _name, facts = _one(br_facts)
    facts["busybox_config"]["CONFIG_FEATURE_MOUNT_LABEL"] = "n"  # type: ignore[index]
    lines = [f for f in _check(br_facts, facts) if "FEATURE_MOUNT_LABEL" in f]
    assert len(lines) == 1 and "fstab mounts /data by LABEL=data" in lines[0]
    facts["config"]["BR2_PACKAGE_UTIL_LINUX_MOUNT"] = "y"  # type: ignore[index]
    assert not [f for f in _check(br_facts, facts) if "FEATURE_MOUNT_LABEL" in f]


def test_qemu_x86_uboot_without_pylibfdt(br_facts: dict[str, object]) -> None:
    name, facts = _one(br_facts)
    facts["config"].pop("BR2_TARGET_UBOOT_NEEDS_PYLIBFDT", None)  # type: ignore[union-attr]
    lines = [f for f in _check(br_facts, facts) if "PYLIBFDT" in f]
    assert lines == [
        f"buildroot-ext/configs/{name}: BR2_TARGET_UBOOT_NEEDS_PYLIBFDT is not set (u-boot.rom is made by binman (arch/x86 selects BINMAN), which imports libfdt): set it in buildroot-ext/configs/{name}"
    ]


def test_host_python_without_xz(br_facts: dict[str, object]) -> None:
    _name, facts = _one(br_facts)
    facts["config"].pop("BR2_PACKAGE_HOST_PYTHON3_XZ", None)  # type: ignore[union-attr]
    lines = [f for f in _check(br_facts, facts) if "HOST_PYTHON3_XZ" in f]
    assert len(lines) == 1 and "(_lzma for pyupdate_artifact" in lines[0]
    assert lines[0].endswith("select it in buildroot-ext/package/pyupdate-host/Config.in.host")


def test_rust_in_the_build(br_facts: dict[str, object]) -> None:
    name, facts = _one(br_facts)
    packages = facts["packages"]
    packages["python-cryptography"] = ["host-rust-bin"]  # type: ignore[index]
    packages["host-rust-bin"] = []  # type: ignore[index]
    packages["pyupdate-artifact"] = [*packages.get("pyupdate-artifact", []), "python-cryptography"]  # type: ignore[union-attr]
    lines = [f for f in _check(br_facts, facts) if "(Rust)" in f]
    assert lines == [
        f"buildroot-ext/configs/{name}: the build includes host-rust-bin (Rust), pulled in by pyupdate-artifact: drop it from buildroot-ext/package",
        f"buildroot-ext/configs/{name}: the build includes python-cryptography (Rust), pulled in by pyupdate-artifact: drop it from buildroot-ext/package",
    ]


def test_a_changed_external_tree_asks_for_a_new_record(
    tmp_path: Path, br_facts: dict[str, object]
) -> None:
    ext = tmp_path / "buildroot-ext"
    shutil.copytree(buildroot_closure.BR_EXT, ext)
    facts = {
        "inputs_sha256": closure_facts.inputs_sha256(ext),
        "defconfigs": br_facts["defconfigs"],
    }
    assert closure_facts.drift(facts, ext) is None
    with (ext / "configs" / DEFCONFIGS[0]).open("a") as f:
        f.write("BR2_PACKAGE_HTOP=y\n")
    assert (
        closure_facts.drift(facts, ext)
        == "buildroot-ext changed since the record: run ci/closure/record.py SNAPSHOT_DIR"
    )


def test_resolution_drops_an_unknown_option_live(tmp_path: Path) -> None:
    snap = closure_facts.snapshots()
    if snap is None:
        pytest.skip("needs PYUPDATE_SNAPSHOTS (a Buildroot tree) to run make")
    ext = tmp_path / "buildroot-ext"
    shutil.copytree(buildroot_closure.BR_EXT, ext)
    name = DEFCONFIGS[0]
    path = ext / "configs" / name
    path.write_text(
        path.read_text().replace(
            "BR2_PACKAGE_PYTHON3=y", "BR2_PACKAGE_PYTHON3=y\nBR2_PACKAGE_NONEXISTENT=y"
        )
    )
    out = buildroot_closure.resolve(snap / "buildroot", ext, name, tmp_path / "work")
    config = set((out / ".config").read_text().splitlines())
    assert "BR2_PACKAGE_NONEXISTENT=y" not in config
    assert "BR2_PACKAGE_PYTHON3=y" in config
