"""The delta worker: one asyncio task per server process (started by app.py) that makes
the deltas services/delta_jobs.py queues, one at a time per host.

It never holds up a request: it looks for a due job with one cheap read every few
seconds, and does the rest in a worker thread. Jobs are claimed once across processes
and hosts (delta_jobs.claim); on one host, the processes of every `serve` sharing the
data dir also take an exclusive `flock` on `<data_dir>/delta-jobs.lock` before they
claim, so the host makes one delta at a time whatever its number of workers. The
delta itself is made by a child process (delta_generate.py) that runs `nice`d, with
its address space capped (delta_memory) and killed at delta_timeout. Whatever fails,
the job keeps one line saying why, the log gets the same line, and the devices get the
full artifact: nothing here answers a request, so nothing here is ever a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Artifact, utcnow
from pyupdate_server.delta_generate import NOT_SMALLER
from pyupdate_server.errors import ServerError
from pyupdate_server.services import artifacts, delta_jobs
from pyupdate_server.services.artifacts import ArtifactValidator
from pyupdate_server.services.delta_jobs import Claim
from pyupdate_server.settings import Settings
from pyupdate_server.storage.base import BlobStore

log = logging.getLogger(__name__)

POLL = 2.0  # seconds between two looks for a due job
LOCK_FILE = "delta-jobs.lock"


class JobFailed(Exception):
    """One line for the job's record: why no delta was made."""


class DeltaWorker:
    """Args:
    db, store, validator: the process's own (ServerState).
    settings: the delta_* settings, and data_dir for the host lock.
    tmp_dir: this `serve`'s temp dir: inputs fetched from S3, the delta being made.
    """

    def __init__(
        self,
        db: Database,
        store: BlobStore,
        validator: ArtifactValidator,
        settings: Settings,
        tmp_dir: Path,
    ) -> None:
        self.db = db
        self.store = store
        self.validator = validator
        self.settings = settings
        self.tmp_dir = tmp_dir
        self.lock_path = settings.data_dir / LOCK_FILE
        self._failing = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False

    async def run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            self.stop()
            raise

    def stop(self) -> None:
        """The server stops: the delta being made is killed and its job queued again
        (in its thread, see _work), so the stop never waits for a delta."""
        self._stopping = True
        proc = self._proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _loop(self) -> None:
        while True:
            busy = False
            try:
                now = utcnow()
                param = now.strftime("%Y-%m-%d %H:%M:%S.%f") if self.db.is_sqlite else now
                if await self.db.aquick(delta_jobs.DUE_SQL, {"now": param}) is not None:
                    busy = await asyncio.to_thread(self.run_one)
                self._failing = False
            except Exception as exc:  # the database went away: try again later
                if not self._failing:
                    log.warning("delta jobs paused: %s", str(exc).splitlines()[0][:300])
                self._failing = True
            await asyncio.sleep(0.05 if busy else POLL)

    def run_one(self) -> bool:
        """Claim and make one job, if this host is not making one already; True if one ran."""
        with self._host_lock() as held:
            if not held:
                return False
            with self.db.write() as session:
                claim = delta_jobs.claim(session, self.settings.delta_timeout)
            if claim is None:
                return False
            self._work(claim)
            return True

    @contextlib.contextmanager
    def _host_lock(self) -> Iterator[bool]:
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing drops the lock

    def _work(self, claim: Claim) -> None:
        try:
            self._make(claim)
        except Exception as exc:
            if self._stopping:  # killed by stop(): not the job's fault, another process makes it
                with self.db.write() as session:
                    delta_jobs.release(session, claim)
                return
            if isinstance(exc, JobFailed):
                why = str(exc)
            else:  # a bug or an outage: the job says so, and the server goes on
                lines = str(exc).strip().splitlines()
                why = f"{type(exc).__name__}: {lines[0] if lines else ''}"
            self._finish(claim, "failed", why)

    def _finish(
        self,
        claim: Claim,
        status: str,
        error: str,
        *,
        old_artifact_id: str | None = None,
        delta: Artifact | None = None,
    ) -> bool:
        with self.db.write() as session:
            kept = delta_jobs.finish(
                session, claim, status, error=error, old_artifact_id=old_artifact_id, delta=delta
            )
        level = logging.INFO if status == "done" else logging.WARNING
        log.log(
            level,
            "delta job %s: %s",
            status,
            error or "made",
            extra={"job": claim.id, "artifact": claim.new_artifact_id},
        )
        return kept

    def _make(self, claim: Claim) -> None:
        with self.db.read() as session:
            new = session.get(Artifact, claim.new_artifact_id)
            if new is None:
                raise JobFailed("the new artifact was deleted")
            existing = delta_jobs.existing_delta(session, new, claim.old_checksum)
            old = delta_jobs.base_for(session, new, claim.old_checksum)
            session.expunge_all()
        if not delta_jobs.is_rootfs(new):
            self._finish(claim, "skipped", f"{new.name} is not one rootfs-image payload")
            return
        if existing is not None:  # uploaded by CI (or made before): used as it is
            self._finish(claim, "done", "", delta=existing)
            return
        if old is None:
            self._finish(claim, "skipped", f"no artifact holds image {claim.old_checksum[:12]}")
            return
        key = self.settings.delta_signing_key
        if new.signed and key is None:
            self._finish(
                claim,
                "skipped",
                f"{new.name} is signed and no delta_signing_key is set",
                old_artifact_id=old.id,
            )
            return
        with tempfile.TemporaryDirectory(prefix="delta-", dir=self.tmp_dir) as scratch:
            work = Path(scratch)
            old_path = self._local(old, work / "old.mender")
            new_path = self._local(new, work / "new.mender")
            out = work / "delta.mender"
            code, why = self._generate(old_path, new_path, out, key)
            if code == NOT_SMALLER:
                self._finish(claim, "not_smaller", why, old_artifact_id=old.id)
                return
            if code != 0 or not out.exists():
                raise JobFailed(why or f"the generator exited with {code}")
            self._store(claim, new, old, out)

    def _local(self, artifact: Artifact, target: Path) -> Path:
        path = self.store.local_path(artifact.blob)
        if path is not None:
            return path
        self.store.fetch_file(artifact.blob, target)
        return target

    def _generate(self, old: Path, new: Path, out: Path, key: Path | None) -> tuple[int, str]:
        s = self.settings
        cmd = [sys.executable, "-m", "pyupdate_server.delta_generate", str(old), str(new)]
        cmd += [str(out), "--nice", str(s.delta_nice), "--memory", str(s.delta_memory)]
        if key is not None:
            cmd += ["--key", str(key)]
        # its own session: a timeout kills it and anything it started
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        self._proc = proc
        try:
            _, err = proc.communicate(timeout=s.delta_timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return 1, f"not done within delta_timeout ({s.delta_timeout} s)"
        finally:
            self._proc = None
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        return proc.returncode, (lines[-1] if lines else "")

    def _store(self, claim: Claim, new: Artifact, old: Artifact, out: Path) -> None:
        try:  # the same checks as an upload: structure, checksums, signature policy
            header = self.validator.read_header(out)
        except ServerError as exc:
            raise JobFailed(f"the delta made is refused: {exc}") from None
        size, sha256 = _size_and_sha256(out)
        artifact_id, blob = artifacts.new_blob()
        self.store.put_file(blob, out)
        evicted: list[str] = []
        try:
            with self.db.write() as session:
                delta = artifacts.store_artifact(
                    session,
                    artifact_id,
                    blob,
                    header,
                    size,
                    sha256,
                    f"delta from {old.name} ({claim.old_checksum[:12]}), made by the server",
                )
                delta.generated = True
                if not delta_jobs.finish(
                    session, claim, "done", old_artifact_id=old.id, delta=delta
                ):
                    raise JobFailed("the job was taken over meanwhile")
                evicted = delta_jobs.evict(session, self.settings.delta_cache_size, keep=delta.id)
        except BaseException:
            with contextlib.suppress(Exception):
                self.store.delete(blob)  # no file without its record
            raise
        for gone in evicted:
            with contextlib.suppress(Exception):
                self.store.delete(gone)
        log.info(
            "delta made: %d bytes (full %d)",
            size,
            new.size,
            extra={"job": claim.id, "artifact": artifact_id, "evicted": len(evicted)},
        )


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
