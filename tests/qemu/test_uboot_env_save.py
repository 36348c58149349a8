"""Scenario 3d: power cuts while U-Boot itself saves the env (bootcount of a trial boot).

U-Boot writes the non-current copy first, then the current one (boot.cmd.j2),
so a cut during either write leaves one copy with a good CRC. The first cut is
made exact by tearing the non-current copy as a cut in its write leaves it; the
second is a real power cut the moment U-Boot announces the trial boot, when its
two fatwrites are running or about to.
"""

from __future__ import annotations

from qemu_device import Device

# A trial boot of the slot the device runs (part 2), so every boot lands in Linux,
# with room for two counted boots before a rollback.
TRIAL = "fw_setenv bootlimit 3 && fw_setenv bootcount 0 && fw_setenv upgrade_available 1"
ENV_FILES = "awk '!/^#/ && NF {print $1}' /etc/fw_env.config"


def _copies(device: Device) -> list[tuple[str, int]]:
    """(path, flags byte) of both env copies, as libubootenv lays them out."""
    paths = device.sh(ENV_FILES).split()
    assert len(paths) == 2, paths
    return [(p, int(device.sh(f"od -An -tu1 -j4 -N1 {p}").strip())) for p in paths]


def _crc_ok(device: Device, path: str) -> bool:
    check = (
        f"python3 -c \"import zlib; d = open('{path}', 'rb').read(); "
        "print(int.from_bytes(d[:4], 'little') == zlib.crc32(d[5:]))\""
    )
    return device.sh(check).strip() == "True"


def _noncurrent(copies: list[tuple[str, int]]) -> str:
    (first, f0), (second, f1) = copies
    newer_second = f1 == (f0 + 1) % 256
    return first if newer_second else second


def test_power_cut_during_uboot_env_save(device: Device):
    device.sh(TRIAL)
    torn = _noncurrent(_copies(device))
    # garbage over the start of the copy U-Boot writes first, as a cut inside that
    # fatwrite leaves it (old and new bytes mixed, CRC broken)
    device.sh(f"head -c 256 /dev/urandom | dd of={torn} bs=1 seek=5 conv=notrunc status=none")
    device.sh("sync")
    assert not _crc_ok(device, torn)

    device.strategy.reboot()
    imported = device.strategy.boot_log(r"AB: env copy [01] \(\S+\) imported")
    assert torn.rsplit("/", 1)[-1] not in imported, imported
    device.expect_boot("AB: trial boot of part 2, bootcount=1 bootlimit=3")
    # a real cut while U-Boot's two fatwrites run (or just before or after them)
    device.power_cut()

    device.strategy.power.on()
    index = device.strategy.power.expect(
        [r"AB: env copy [01] \(\S+\) imported", "AB: no valid env"]
    )
    assert index == 0, "a power cut during U-Boot's env save lost both copies"
    device.expect_boot("AB: trial boot of part 2, bootcount=[12] bootlimit=3")
    device.strategy.await_shell()
    env = device.env()
    assert env["upgrade_available"] == "1" and env["mender_boot_part"] == "2"
    assert env["bootcount"] in ("1", "2"), env
    # the boot that completed saved both copies whole again
    assert all(_crc_ok(device, path) for path, _ in _copies(device))
    device.sh("fw_setenv upgrade_available 0 && fw_setenv bootcount 0")
    assert device.env()["upgrade_available"] == "0"
