"""State scripts: discovery, order, retry-later (exit 21); each run by process.py (the
one child runner: process group, timeout, captured output).

Mender 3.4's rules (docs/state-scripts.md): `Download` (and the daemon's Idle,
Sync) scripts come from the rootfs dirs (/etc/pyupdate/scripts, then
/etc/mender/scripts); `Artifact*` scripts come from the artifact and are kept
in `<data>/scripts` for the life of the update, so commit, rollback and
recovery after a power cut run the same scripts the install did.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pyupdate_artifact.state_scripts import ARTIFACT_STATES, NAME_RE

from .errors import ScriptError
from .process import GroupProcess

log = logging.getLogger(__name__)

ROOTFS_STATES = frozenset({"Idle", "Sync", "Download"})
RETRY_LATER = 21
OUTPUT_LIMIT = 10 * 1024
SUPPORTED_VERSIONS = ("2", "3")


@dataclass(frozen=True, slots=True)
class ScriptSettings:
    """Args:
    timeout: seconds before a script's process group is killed (StateScriptTimeoutSeconds).
    retry_timeout: seconds since the first attempt after which exit 21 is a failure.
    retry_interval: seconds between attempts after exit 21.
    """

    timeout: float = 3600
    retry_timeout: float = 1800
    retry_interval: float = 60


def store_artifact_scripts(script_dir: Path, scripts: dict[str, bytes], version: int = 3) -> None:
    """Replace `script_dir` with the artifact's scripts (mode 0755) and a `version` file."""
    if script_dir.exists():
        shutil.rmtree(script_dir)
    script_dir.mkdir(mode=0o755, parents=True)
    for name, body in scripts.items():
        name = name.rsplit("/", 1)[-1]
        if not NAME_RE.match(name):
            log.warning("skipping artifact script with a bad name", extra={"script": name})
            continue
        path = script_dir / name
        path.write_bytes(body)
        path.chmod(0o755)
    (script_dir / "version").write_text(str(version))


class ScriptRunner:
    """Args:
    rootfs_dirs: dirs of rootfs scripts, earlier dirs win on equal names.
    artifact_dir: `<data>/scripts`, the current artifact's scripts.
    settings: timeouts and retry policy.
    """

    def __init__(
        self, rootfs_dirs: list[Path], artifact_dir: Path, settings: ScriptSettings
    ) -> None:
        self.rootfs_dirs = rootfs_dirs
        self.artifact_dir = artifact_dir
        self.settings = settings

    def find(self, state: str, action: str) -> list[Path]:
        """Scripts for `<state>_<action>`, in file-name order (the NN orders them)."""
        dirs = [self.artifact_dir] if state in ARTIFACT_STATES else self.rootfs_dirs
        found: dict[str, Path] = {}
        for directory in dirs:
            if not directory.is_dir():
                continue
            names = [p.name for p in directory.iterdir() if p.name != "version"]
            if not names:
                continue
            if directory != self.artifact_dir:
                _check_version(directory)
            for name in names:
                match = NAME_RE.match(name)
                if match is None:
                    log.warning("skipping script with a bad name", extra={"script": name})
                    continue
                if match.group(1) == state and match.group(2) == action:
                    found.setdefault(name, directory / name)
        return [found[name] for name in sorted(found)]

    def run(self, state: str, action: str, ignore_errors: bool = False) -> None:
        """Run every `<state>_<action>_NN` script; the first failure raises ScriptError.

        With `ignore_errors` (Error scripts, and those after the point of no
        return) failures are logged and the next script runs.
        """
        try:
            scripts = self.find(state, action)
        except ScriptError:
            if ignore_errors:
                return
            raise
        for script in scripts:
            try:
                self._run_with_retries(script)
            except ScriptError as err:
                if not ignore_errors:
                    raise
                log.warning("ignoring failed script: %s", err, extra={"script": script.name})

    def _run_with_retries(self, script: Path) -> None:
        first = time.monotonic()
        while True:
            code = self._run_once(script)
            if code == 0:
                return
            if code != RETRY_LATER:
                raise ScriptError(f"state script {script.name} failed with exit code {code}")
            waited = time.monotonic() - first
            if waited + self.settings.retry_interval > self.settings.retry_timeout:
                raise ScriptError(
                    f"state script {script.name} still asks to retry later (exit 21) after"
                    f" {self.settings.retry_timeout:g} s"
                )
            log.info("script asks to retry later", extra={"script": script.name})
            time.sleep(self.settings.retry_interval)

    def _run_once(self, script: Path) -> int:
        if not os.access(script, os.X_OK):
            raise ScriptError(f"state script {script} is not executable")
        log.info("running state script", extra={"script": script.name})

        def on_line(stream: str, line: str) -> None:
            log.info(line, extra={"script": script.name, "stream": stream})

        try:
            proc = GroupProcess(
                [str(script)],
                timeout=self.settings.timeout,
                on_line=on_line,
                output_limit=OUTPUT_LIMIT,
            )
        except OSError as err:
            raise ScriptError(f"state script {script.name} cannot run ({err.strerror})") from None
        code = proc.wait()
        if proc.timed_out:
            raise ScriptError(
                f"state script {script.name} timed out after {self.settings.timeout:g} s"
                " and was killed"
            )
        return code


def _check_version(directory: Path) -> None:
    version = directory / "version"
    try:
        text = version.read_text().strip()
    except OSError:
        raise ScriptError(
            f"{directory}: holds scripts but no version file (write 3 into {version})"
        ) from None
    if text not in SUPPORTED_VERSIONS:
        raise ScriptError(f"{version}: script version {text!r} is not 2 or 3")
