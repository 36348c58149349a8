"""Update Module v3 runner: exactly the protocol of docs/update-module.md (mender 3.4).

`<module> <STATE> <tree>`: two arguments, cwd = the file tree, run by the one
child runner (process.py): a new process group, stdin unused, SIGTERM to the
group at ModuleTimeoutSeconds and SIGKILL `kill_grace` later, which also
unblocks a stream write to a module that stopped reading. Query states answer
on stdout; for the others stdout and stderr go line by line into the
deployment log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModuleError
from ..process import GroupProcess

log = logging.getLogger(__name__)

POLL = 0.005


@dataclass(frozen=True, slots=True)
class ModuleContext:
    """What the file tree tells the module (docs/update-module.md, "File tree")."""

    current_artifact_name: str
    current_artifact_group: str
    current_device_type: str
    artifact_name: str
    artifact_group: str
    payload_type: str
    header_info: dict[str, object]
    type_info: dict[str, object]
    meta_data: dict[str, object] | None


def find_module(payload_type: str, dirs: tuple[str, ...]) -> Path:
    """The first executable `<dir>/<payload_type>`; directories are skipped, like mender."""
    if "/" in payload_type or payload_type in ("", ".", ".."):
        raise ModuleError(f"payload type {payload_type!r} cannot name an update module")
    for directory in dirs:
        path = Path(directory) / payload_type
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ModuleError(f"no update module for payload type {payload_type!r} in {', '.join(dirs)}")


def module_names(dirs: tuple[str, ...]) -> list[str]:
    """The payload types the modules in `dirs` install (find_module's rule), sorted: the
    inventory's `update_modules`, as mender 3.x sends it."""
    names: set[str] = set()
    for directory in dirs:
        with contextlib.suppress(OSError):
            names.update(
                path.name
                for path in Path(directory).iterdir()
                if path.is_file() and os.access(path, os.X_OK)
            )
    return sorted(names)


def write_tree(tree: Path, ctx: ModuleContext) -> None:
    """Create the file tree fresh: dirs 0700, files 0600, no trailing newlines."""
    if tree.parent.exists():
        shutil.rmtree(tree.parent)
    tree.mkdir(mode=0o700, parents=True)
    header = tree / "header"
    header.mkdir(mode=0o700)
    (tree / "tmp").mkdir(mode=0o700)
    files = {
        tree / "version": "3",
        tree / "current_artifact_name": ctx.current_artifact_name,
        tree / "current_artifact_group": ctx.current_artifact_group,
        tree / "current_device_type": ctx.current_device_type,
        header / "artifact_name": ctx.artifact_name,
        header / "artifact_group": ctx.artifact_group,
        header / "payload_type": ctx.payload_type,
        header / "header-info": json.dumps(ctx.header_info, indent=2),
        header / "type-info": json.dumps(ctx.type_info, indent=2),
        header / "meta-data": json.dumps(ctx.meta_data, indent=2),
    }
    for path, text in files.items():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)


class _Call:
    """One module call: its process (process.py), output and query answer."""

    def __init__(self, module: Path, state: str, tree: Path, timeout: float, grace: float):
        self.state = state
        self.name = module.name
        self.answer: list[str] = []
        query = state in ("SupportsRollback", "NeedsArtifactReboot")

        def on_line(stream: str, line: str) -> None:
            if query and stream == "stdout":
                self.answer.append(line)
            else:
                log.info(line, extra={"update_module": self.name, "state": state, "stream": stream})

        try:
            self._process = GroupProcess(
                [str(module), state, str(tree)],
                cwd=tree,
                timeout=timeout,
                grace=grace,
                on_line=on_line,
            )
        except OSError as err:
            raise ModuleError(f"update module {module}: cannot run ({err.strerror})") from None

    def kill(self) -> None:
        self._process.kill()

    def expire(self) -> None:
        self._process.expire()

    def alive(self) -> bool:
        return self._process.alive()

    def wait(self) -> int:
        return self._process.wait()

    def check(self) -> None:
        code = self.wait()
        if self._process.timed_out:
            raise ModuleError(f"update module {self.name}: {self.state} timed out and was killed")
        if code != 0:
            raise ModuleError(
                f"update module {self.name}: {self.state} failed with exit code {code}"
            )


class _FileWriter:
    """A payload file into `files/<name>` (the "Mender downloader" case)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            # a full data partition is the likely cause: say so in the one line, and
            # give the room back now rather than at the next command's cleanup
            os.close(self._fd)
            self._fd = -1
            self._path.unlink(missing_ok=True)
            raise ModuleError(f"writing payload file {self._path.name}: {err.strerror}") from None

    def finish(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


class _StreamWriter:
    """A payload file into the FIFO `streams/<name>` the module is reading."""

    def __init__(self, fd: int, module: str, name: str) -> None:
        self._fd = fd
        self._module = module
        self._name = name

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            raise ModuleError(
                f"update module {self._module}: stopped reading streams/{self._name}"
                f" ({err.strerror})"
            ) from None

    def finish(self) -> None:
        os.close(self._fd)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


class ModuleInstaller:
    """Runs one update module over one payload.

    Args:
        module: the module executable.
        tree: `<data>/modules/v3/payloads/0000/tree`.
        timeout: ModuleTimeoutSeconds, per call.
        kill_grace: seconds between SIGTERM and SIGKILL (mender: 60).
    """

    def __init__(self, module: Path, tree: Path, timeout: float, kill_grace: float = 60) -> None:
        self.module = module
        self.tree = tree
        self.timeout = timeout
        self.kill_grace = kill_grace
        self._download: _Call | None = None
        self._mode: str | None = None  # "streams" or "files"
        self._next_fd: int | None = None

    def _call(self, state: str) -> _Call:
        log.info("calling update module", extra={"update_module": self.module.name, "state": state})
        return _Call(self.module, state, self.tree, self.timeout, self.kill_grace)

    def _run(self, state: str) -> list[str]:
        if not self.tree.is_dir():
            # interrupted before the tree was made: the module never saw this update
            log.info("no file tree; not calling the module", extra={"state": state})
            return []
        call = self._call(state)
        call.check()
        return call.answer

    # Download: the module runs while the reader streams the payload
    def begin_download(self) -> ModuleInstaller:
        os.mkfifo(self.tree / "stream-next", 0o600)
        (self.tree / "streams").mkdir(mode=0o700)
        self._download = self._call("Download")
        self._deadline = time.monotonic() + self.timeout
        return self

    def _open_for_module(self, path: Path) -> int | None:
        """Open FIFO `path` for writing once the module opens it; None if it exits first."""
        assert self._download is not None
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as err:
                if err.errno != errno.ENXIO:
                    raise ModuleError(
                        f"update module: cannot open {path} ({err.strerror})"
                    ) from None
            else:
                os.set_blocking(fd, True)
                return fd
            if not self._download.alive():
                return None
            if time.monotonic() > self._deadline:
                self._download.expire()
                self._download.check()
            time.sleep(POLL)

    def _decide_mode(self) -> None:
        if self._mode is not None:
            return
        fd = self._open_for_module(self.tree / "stream-next")
        if fd is None:
            self._download.check()  # type: ignore[union-attr]
            # the module did not read stream-next: store the files for it
            (self.tree / "stream-next").unlink()
            shutil.rmtree(self.tree / "streams")
            (self.tree / "files").mkdir(mode=0o700)
            self._mode = "files"
        else:
            self._mode = "streams"
            self._next_fd = fd

    def open_file(self, payload: object, name: str, size: int) -> _FileWriter | _StreamWriter:
        if "/" in name or name in ("", ".", ".."):
            raise ModuleError(f"payload file name {name!r} is not a plain file name")
        self._decide_mode()
        if self._mode == "files":
            return _FileWriter(self.tree / "files" / name)
        fd = (
            self._next_fd
            if self._next_fd is not None
            else self._open_for_module(self.tree / "stream-next")
        )
        self._next_fd = None
        if fd is None:
            self._download.check()  # type: ignore[union-attr]
            raise ModuleError(f"update module {self.module.name}: exited before reading {name}")
        os.mkfifo(self.tree / "streams" / name, 0o600)
        try:
            os.write(fd, f"streams/{name}\n".encode())
        finally:
            os.close(fd)
        stream = self._open_for_module(self.tree / "streams" / name)
        if stream is None:
            self._download.check()  # type: ignore[union-attr]
            raise ModuleError(
                f"update module {self.module.name}: exited before reading streams/{name}"
            )
        return _StreamWriter(stream, self.module.name, name)

    def end_download(self) -> None:
        self._decide_mode()
        if self._mode == "streams":
            # an empty read of stream-next tells the module there are no more files
            fd = (
                self._next_fd
                if self._next_fd is not None
                else self._open_for_module(self.tree / "stream-next")
            )
            self._next_fd = None
            if fd is not None:
                os.close(fd)
        self._download.check()  # type: ignore[union-attr]
        if self._mode == "files":
            dirfd = os.open(self.tree / "files", os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)

    def abort_download(self) -> None:
        if self._next_fd is not None:
            os.close(self._next_fd)
            self._next_fd = None
        if self._download is not None and self._download.alive():
            self._download.kill()
        if self._download is not None:
            self._download.wait()

    # the other states
    def supports_rollback(self) -> bool:
        answer = "\n".join(self._run("SupportsRollback")).strip()
        if answer in ("", "No"):
            return False
        if answer == "Yes":
            return True
        raise ModuleError(
            f"update module {self.module.name}: SupportsRollback answered {answer!r}, not Yes or No"
        )

    def needs_reboot(self) -> str:
        answer = "\n".join(self._run("NeedsArtifactReboot")).strip()
        if answer in ("", "No"):
            return "No"
        if answer in ("Yes", "Automatic"):
            return answer
        raise ModuleError(
            f"update module {self.module.name}: NeedsArtifactReboot answered {answer!r},"
            " not Yes, No or Automatic"
        )

    def install(self) -> None:
        self._run("ArtifactInstall")

    # daemon only (mender 3.4 never calls these from the command line)
    def reboot(self) -> None:
        self._run("ArtifactReboot")

    def verify_reboot(self) -> None:
        self._run("ArtifactVerifyReboot")

    def rollback_reboot(self) -> None:
        self._run("ArtifactRollbackReboot")

    def verify_rollback_reboot(self) -> None:
        self._run("ArtifactVerifyRollbackReboot")

    def commit(self) -> None:
        self._run("ArtifactCommit")

    def rollback(self) -> None:
        self._run("ArtifactRollback")

    def failure(self) -> None:
        self._run("ArtifactFailure")

    def cleanup(self) -> None:
        try:
            self._run("Cleanup")
        finally:
            shutil.rmtree(self.tree.parent, ignore_errors=True)
