"""Bad input from the server (issue 6): garbage, 5xx, slow-loris, a redirect loop, a
wrong-size or corrupt download, an artifact for another device type, an expired link.

Each case runs `pyupdate daemon` as a process against a LocalHTTP device API that
misbehaves in one place (pyupdate_testing.fake_device_api.FakeDeviceAPI) and checks the same four things:
one clear log line and no traceback, the failure reported when there is a deployment
to report it on, backoff (spacing between the failing requests, not a spin), and the
device keeps its system (env, slot A and `show-artifact` unchanged, no reboot).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.daemon_device import DaemonDevice, make_daemon_device
from pyupdate_testing.fake_device_api import FakeDeviceAPI, Seen
from pyupdate_testing.host_device import needs_tools, sha256
from pyupdate_testing.wait import wait_for

pytestmark = [pytest.mark.uboot, needs_tools]

RETRY = 4  # RetryPollIntervalSeconds: backoff 1, 2, 4 s (±10 %)


class Snapshot:
    """What "the device keeps its current system" means here."""

    def __init__(self, dev: DaemonDevice) -> None:
        self.env = dev.host.env()
        self.slot_a = sha256(dev.host.slot_a)
        self.artifact = dev.show_artifact()

    def assert_kept(self, dev: DaemonDevice) -> None:
        assert dev.host.env() == self.env
        assert sha256(dev.host.slot_a) == self.slot_a
        assert dev.show_artifact() == self.artifact == "release-0"
        assert dev.reboots == []
        assert dev.machine_state() is None


@pytest.fixture
def device(tmp_path: Path) -> Iterator[list[DaemonDevice]]:
    made: list[DaemonDevice] = []
    yield made
    for dev in made:
        dev.stop()


def _start(
    tmp_path: Path, api: FakeDeviceAPI, made: list[DaemonDevice], **config: object
) -> tuple[DaemonDevice, Snapshot]:
    settings: dict[str, object] = {"RetryPollIntervalSeconds": RETRY, "RequestTimeoutSeconds": 2}
    dev = make_daemon_device(
        tmp_path / "dev", api, server_url=api.url, preauthorize=False, **(settings | config)
    )  # type: ignore[arg-type]
    made.append(dev)
    before = Snapshot(dev)
    dev.start()
    return dev, before


def _log(dev: DaemonDevice) -> str:
    return dev.log.read_text()


def _clear_lines(dev: DaemonDevice, pattern: str) -> list[str]:
    """The lines matching `pattern` (one per failed attempt); no traceback anywhere."""
    text = _log(dev)
    assert "Traceback" not in text, text[-3000:]
    hits = [line for line in text.splitlines() if re.search(pattern, line)]
    assert hits, f"no line matches {pattern!r}:\n{text[-3000:]}"
    return hits


def _assert_backs_off(requests: list[Seen], minimum: float) -> None:
    """The failing requests are spaced by the backoff: 1 s, then 2 s (each -10 % jitter)."""
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    assert gaps and all(g >= 0.85 for g in gaps), gaps
    assert requests[-1].at - requests[0].at >= minimum, gaps


# -- the deployment check misbehaves: nothing to report on, the device waits ---------


def _check_fails(
    tmp_path: Path, made: list[DaemonDevice], answer, pattern: str, checks: int = 3, **config
) -> tuple[DaemonDevice, FakeDeviceAPI]:
    api = FakeDeviceAPI(check=answer)
    try:
        dev, before = _start(tmp_path, api, made, **config)
        wait_for(f"{checks} deployment checks", lambda: len(api.checks()) >= checks, 30, [dev.log])
        assert dev.proc is not None and dev.proc.poll() is None, _log(dev)
        assert len(_clear_lines(dev, pattern)) >= checks - 1
        _assert_backs_off(api.checks()[:checks], 0.9 + (1.8 if checks >= 3 else 0))
        assert api.statuses == [] and api.downloads() == []
        dev.stop()
        before.assert_kept(dev)
    finally:
        api.close()
    return dev, api


@pytest.mark.parametrize(
    "body",
    [b"<html>502 from some proxy</html>", b'{"id": "x"}'],
    ids=["not-json", "wrong-shape"],  # more shapes: test_daemon_client.py
)
def test_garbage_deployment_check_is_one_warning_and_backoff(
    tmp_path: Path, device: list[DaemonDevice], body: bytes
) -> None:
    _check_fails(
        tmp_path,
        device,
        lambda h, seen: h.reply(200, body, {"Content-Type": "application/json"}),
        r"^warning: deployment check: malformed answer from the server \(retry_in=",
    )


def test_server_error_on_the_deployment_check_backs_off(
    tmp_path: Path, device: list[DaemonDevice]
) -> None:
    status = 503
    _check_fails(
        tmp_path,
        device,
        lambda h, seen: h.reply(status, b'{"error":"database is down"}'),
        rf"^warning: POST /v2/deployments/device/deployments/next: unexpected {status}"
        r" \(database is down\)",
    )


def test_slow_loris_deployment_check_is_cut_by_the_request_watchdog(
    tmp_path: Path, device: list[DaemonDevice]
) -> None:
    """Headers, then one byte now and then: every read is in time, the whole answer never is."""

    def drip(h, seen: Seen) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "4096")
        h.end_headers()
        h.wfile.flush()
        for _ in range(200):
            h.wfile.write(b" ")
            h.wfile.flush()
            time.sleep(0.25)

    # RequestTimeoutSeconds 1: each read waits at most 1 s, the whole request 2 s
    _dev, api = _check_fails(
        tmp_path,
        device,
        drip,
        r"^warning: POST http://127\.0\.0\.1:\d+/api/devices/v2/deployments/device/deployments"
        r"/next: (no full answer within 2 s|response too slow) \(retry_in=",
        checks=2,
        RequestTimeoutSeconds=1,
    )
    # 2 s watchdog + 1 s backoff (-10 %) between the first two checks
    assert api.checks()[1].at - api.checks()[0].at >= 2.8


def test_headers_then_silence_times_out_per_read(
    tmp_path: Path, device: list[DaemonDevice]
) -> None:
    def silence(h, seen: Seen) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        h.wfile.flush()
        time.sleep(20)

    _check_fails(
        tmp_path,
        device,
        silence,
        r"^warning: POST http://127\.0\.0\.1:\d+/api/devices/v2/deployments/device/deployments"
        r"/next: (timed out|no full answer within 2 s) \(retry_in=",
        checks=2,
        RequestTimeoutSeconds=1,
    )


# -- the download misbehaves: the deployment fails, is reported, the system stays ------


def _download_fails(
    tmp_path: Path,
    made: list[DaemonDevice],
    api: FakeDeviceAPI,
    pattern: str,
    max_downloads: int,
    **config: object,
) -> DaemonDevice:
    try:
        dev, before = _start(tmp_path, api, made, **config)
        wait_for("the failure report", lambda: api.logs, 60, [dev.log])
        assert "failure" in api.statuses and "success" not in api.statuses, api.statuses
        reason = api.logs[0]["messages"][-1]
        assert reason["level"] == "error" and re.search(pattern, reason["message"]), reason
        [line] = _clear_lines(dev, r"^error: deployment failed: ")  # one line, once
        assert re.search(pattern, line), line
        downloads = len(api.downloads())
        assert 1 <= downloads <= max_downloads, [s.path for s in api.downloads()]
        # afterwards the device polls again (204 now) and does not fetch the artifact again
        seen = len(api.checks())
        wait_for("the next check", lambda: len(api.checks()) > seen, 30, [dev.log])
        assert len(api.downloads()) == downloads
        assert dev.proc is not None and dev.proc.poll() is None, _log(dev)
        dev.stop()
        before.assert_kept(dev)
    finally:
        api.close()
    return dev


@pytest.mark.parametrize("status", [403, 404, 410])
def test_expired_download_link_fails_the_deployment(
    tmp_path: Path, device: list[DaemonDevice], status: int
) -> None:
    api = FakeDeviceAPI(download=lambda h, seen: h.reply(status, b"link expired"))
    _download_fails(
        tmp_path, device, api, rf"download: server answered {status} .*\(expired link\?\)", 1
    )


def test_redirect_loop_on_the_download_link_is_bounded(
    tmp_path: Path, device: list[DaemonDevice]
) -> None:
    """Every hop is a new URL, so only the redirect limit (10) can stop it."""

    def hop(h, seen: Seen) -> None:
        n = int(seen.path.rsplit("=", 1)[1]) if "=" in seen.path else 0
        h.reply(302, headers={"Location": f"/download/dep-1?hop={n + 1}", "Content-Length": "0"})

    api = FakeDeviceAPI(download=hop)
    _download_fails(tmp_path, device, api, r"download: server answered 302", 11)


def _serve(artifact: bytes, length: int | None = None, body_end: int | None = None):
    """Serve `artifact` claiming `length` bytes but sending only up to `body_end`;
    a Range request gets an honest 206 of what there is."""
    end = len(artifact) if body_end is None else body_end
    total = len(artifact) if length is None else length

    def handle(h, seen: Seen) -> None:
        rng = seen.headers.get("range")
        if rng is None:
            h.reply(200, artifact[:end], {"Content-Length": str(total)})
            return
        start = int(rng.removeprefix("bytes=").rstrip("-"))
        h.reply(206, artifact[start:end], {
            "Content-Length": str(total - start),
            "Content-Range": f"bytes {start}-{total - 1}/{total}",
        })  # fmt: skip

    return handle


def test_download_shorter_than_content_length_fails_after_bounded_resumes(
    tmp_path: Path, device: list[DaemonDevice], rootfs_artifact
) -> None:
    data = rootfs_artifact("release-bad").read_bytes()
    api = FakeDeviceAPI(download=_serve(data, length=len(data), body_end=len(data) // 2))
    _download_fails(
        tmp_path,
        device,
        api,
        r"download failed after 2 resumes: connection closed at byte \d+ of \d+",
        3,
        DownloadMaxResumes=2,
    )


def test_download_longer_than_content_length_fails(
    tmp_path: Path, device: list[DaemonDevice], rootfs_artifact
) -> None:
    """Content-Length cuts the artifact short: the reader finds it truncated."""
    data = rootfs_artifact("release-bad").read_bytes()
    api = FakeDeviceAPI(download=_serve(data, length=len(data) // 2, body_end=len(data) // 2))
    _download_fails(tmp_path, device, api, r"unexpected end of data \(truncated artifact\?\)", 1)


def test_corrupt_payload_fails_its_checksum_before_the_env_is_touched(
    tmp_path: Path, device: list[DaemonDevice], rootfs_artifact
) -> None:
    art = rootfs_artifact("release-bad", size=256 << 10, extra=("--compression", "none"))
    data = bytearray(art.read_bytes())
    pattern = hashlib.sha256(b"release-bad").digest() * 64  # the image is this, repeated
    at = data.index(pattern) + len(pattern) // 2
    data[at] ^= 0xFF
    api = FakeDeviceAPI(download=_serve(bytes(data)))
    _download_fails(tmp_path, device, api, r"img\d+\.ext4 does not match its manifest checksum", 1)


@pytest.mark.parametrize("announced", [("other-device",), ("test-device",)])
def test_artifact_for_another_device_type_is_refused(
    tmp_path: Path, device: list[DaemonDevice], rootfs_artifact, announced: tuple[str, ...]
) -> None:
    """Whether the server names the artifact's type or (wrongly) the device's."""
    data = rootfs_artifact("release-bad", device_type="other-device").read_bytes()
    api = FakeDeviceAPI(download=_serve(data), device_types=announced)
    _download_fails(tmp_path, device, api, r"(not for device type|this device is) test-device", 1)
