"""Bad input never changes the running system (docs/agent.md, "Bad input").

Each case: one line on stderr, a non-zero exit, a failure in the store's
history, the boot env byte-for-byte unchanged and slot A untouched.
"""

from __future__ import annotations

import subprocess

import pytest

from pyupdate_agent.store import Store
from pyupdate_testing.host_device import DEVICE_TYPE, HostDevice, sha256

pytestmark = pytest.mark.uboot


def env_bytes(host: HostDevice) -> bytes:
    return (host.root / "env.a").read_bytes() + (host.root / "env.b").read_bytes()


def assert_refused(
    host: HostDevice,
    capsys,
    argv: list[str],
    words: str,
    code: int,
    inactive_untouched: bool = False,
) -> None:
    """`code`: the exit code (exitcodes.py). `inactive_untouched`: the refusal comes before
    the payload (signature, header): slot B must be byte-for-byte what it was, not merely
    never marked bootable."""
    env_before = env_bytes(host)
    a_before = sha256(host.slot_a)
    b_before = host.slot_b.read_bytes() if inactive_untouched else None
    capsys.readouterr()
    rc = host.cli(*argv)
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err
    assert "Traceback" not in err
    assert env_bytes(host) == env_before
    assert sha256(host.slot_a) == a_before
    if inactive_untouched:
        assert host.slot_b.read_bytes() == b_before, "the inactive slot was written"
    store = Store.open(host.data, create=False)
    if store is not None:
        assert store.inflight() is None
        assert store.history()[-1].result == "failure"
        store.close()


def test_corrupt_payload_is_refused(host, rootfs_artifact, capsys, tmp_path):
    art = rootfs_artifact("release-1", sign=False)
    data = bytearray(art.read_bytes())
    data[-3000] ^= 0xFF  # inside the compressed payload
    bad = tmp_path / "bad.mender"
    bad.write_bytes(bytes(data))
    assert_refused(host, capsys, ["install", str(bad)], "", 6)


def test_truncated_artifact_is_refused(host, rootfs_artifact, capsys, tmp_path):
    art = rootfs_artifact("release-1", sign=False)
    bad = tmp_path / "short.mender"
    bad.write_bytes(art.read_bytes()[: art.stat().st_size // 2])
    assert_refused(host, capsys, ["install", str(bad)], "", 6)


def test_unsigned_artifact_refused_when_key_configured(host, rootfs_artifact, keys, capsys):
    host.write_config(ArtifactVerifyKey=str(keys.public))
    art = rootfs_artifact("release-1", sign=False)
    assert_refused(host, capsys, ["install", str(art)], "not signed", 7, inactive_untouched=True)


def test_artifact_signed_with_other_key_is_refused(host, rootfs_artifact, keys, capsys):
    host.write_config(ArtifactVerifyKey=str(keys.other_public))
    art = rootfs_artifact("release-1")
    assert_refused(host, capsys, ["install", str(art)], "", 7, inactive_untouched=True)


def test_signed_artifact_installs_with_key(host, rootfs_artifact, keys):
    host.write_config(ArtifactVerifyKeys=[str(keys.other_public), str(keys.public)])
    assert host.cli("install", str(rootfs_artifact("release-1"))) == 0


def test_wrong_device_type_is_refused(host, rootfs_artifact, capsys):
    art = rootfs_artifact("release-1", device_type="other-board")
    assert_refused(host, capsys, ["install", str(art)], DEVICE_TYPE, 8)


def test_unmet_depends_is_refused(host, rootfs_artifact, capsys):
    art = rootfs_artifact("release-1", extra=("--artifact-name-depends", "release-0"))
    assert_refused(host, capsys, ["install", str(art)], "release-0", 8)


def test_met_depends_installs(host, rootfs_artifact):
    (host.root / "artifact_info").write_text("artifact_name=release-0\n")
    art = rootfs_artifact("release-1", extra=("--artifact-name-depends", "release-0"))
    assert host.cli("install", str(art)) == 0


def test_missing_slot_is_refused(host, rootfs_artifact, capsys):
    host.slot_b.unlink()
    assert_refused(host, capsys, ["install", str(rootfs_artifact("release-1"))], "rootfs3", 1)
    assert not host.slot_b.exists()


def test_image_larger_than_slot_is_refused(host, rootfs_artifact, capsys):
    with open(host.slot_b, "r+b") as f:
        f.truncate(512 << 10)
    assert_refused(host, capsys, ["install", str(rootfs_artifact("release-1"))], "does not fit", 1)


def test_unreadable_env_is_refused(host, rootfs_artifact, capsys):
    host.write_config(FwEnvConfig=str(host.root / "missing.config"))
    assert_refused(host, capsys, ["install", str(rootfs_artifact("release-1"))], "uboot", 1)


def test_corrupt_env_is_refused(host, rootfs_artifact, capsys):
    for copy in ("env.a", "env.b"):
        (host.root / copy).write_bytes(b"\0" * 0x4000)
    rc = host.cli("install", str(rootfs_artifact("release-1")))
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: uboot") and err.count("\n") == 1
    assert sha256(host.slot_b) == sha256_of_ff(host)


def sha256_of_ff(host: HostDevice) -> str:
    import hashlib

    return hashlib.sha256(b"\xff" * host.slot_b.stat().st_size).hexdigest()


def test_not_an_artifact_is_refused(host, capsys, tmp_path):
    junk = tmp_path / "junk.mender"
    junk.write_bytes(b"hello" * 1000)
    assert_refused(host, capsys, ["install", str(junk)], "", 6)


def test_missing_file_is_refused(host, capsys, tmp_path):
    assert_refused(host, capsys, ["install", str(tmp_path / "nope.mender")], "nope.mender", 5)


def test_bad_config_names_the_key(host, rootfs_artifact, capsys):
    host.write_config(ModuleTimeoutSeconds="soon")
    rc = host.cli("install", str(rootfs_artifact("release-1")))
    err = capsys.readouterr().err
    assert rc == 3 and "ModuleTimeoutSeconds" in err and err.count("\n") == 1


def test_url_install_streams_from_http(host, rootfs_artifact, tmp_path):
    art = rootfs_artifact("release-1")
    server = subprocess.Popen(
        ["python3", "-m", "http.server", "0", "--bind", "127.0.0.1", "-d", str(art.parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()  # "Serving HTTP on 127.0.0.1 port N ..."
        port = int(line.split(" port ")[1].split()[0])
        assert host.cli("install", f"http://127.0.0.1:{port}/{art.name}") == 0
    finally:
        server.terminate()
        server.wait()
