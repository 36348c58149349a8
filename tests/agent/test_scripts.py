"""scripts.py: discovery, order, retry-later (21), timeouts, Error scripts, output."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from pyupdate_agent.errors import ScriptError
from pyupdate_agent.log import deployment_log
from pyupdate_agent.scripts import ScriptRunner, ScriptSettings, store_artifact_scripts


def script(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    etc, art, out = tmp_path / "etc", tmp_path / "art", tmp_path / "out"
    etc.mkdir()
    (etc / "version").write_text("3")
    art.mkdir()
    return etc, art, out


def runner(dirs, **settings) -> ScriptRunner:
    etc, art, _ = dirs
    return ScriptRunner([etc], art, ScriptSettings(**{"retry_interval": 0, **settings}))


def test_scripts_run_in_file_name_order(dirs):
    etc, _, out = dirs
    for name in ("Download_Enter_10_b", "Download_Enter_02", "Download_Enter_10_a"):
        script(etc, name, f"echo {name} >> {out}")
    script(etc, "Download_Leave_01", f"echo leave >> {out}")
    runner(dirs).run("Download", "Enter")
    assert out.read_text().split() == [
        "Download_Enter_02",
        "Download_Enter_10_a",
        "Download_Enter_10_b",
    ]


def test_artifact_states_come_only_from_the_artifact(dirs):
    etc, art, out = dirs
    script(etc, "ArtifactInstall_Enter_01", f"echo etc >> {out}")
    store_artifact_scripts(
        art, {"ArtifactInstall_Enter_01": f"#!/bin/sh\necho art >> {out}\n".encode()}
    )
    runner(dirs).run("ArtifactInstall", "Enter")
    assert out.read_text().split() == ["art"]
    assert (art / "version").read_text() == "3"


def test_bad_names_are_skipped(dirs):
    etc, _, out = dirs
    script(etc, "Download_Enter_1", f"echo bad >> {out}")
    script(etc, "Download_Enter_01_ok", f"echo ok >> {out}")
    runner(dirs).run("Download", "Enter")
    assert out.read_text().split() == ["ok"]


def test_missing_version_file_fails(dirs):
    etc, _, _ = dirs
    (etc / "version").unlink()
    script(etc, "Download_Enter_01", "true")
    with pytest.raises(ScriptError, match="no version file"):
        runner(dirs).run("Download", "Enter")


def test_exit_21_retries_until_success(dirs):
    etc, _, out = dirs
    counter = etc.parent / "n"
    script(
        etc,
        "Download_Enter_01",
        f"""
n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}
echo try >> {out}
[ $n -ge 3 ] || exit 21
""",
    )
    runner(dirs).run("Download", "Enter")
    assert out.read_text().split() == ["try"] * 3


def test_exit_21_gives_up_after_retry_timeout(dirs):
    etc, _, _ = dirs
    script(etc, "Download_Enter_01", "exit 21")
    with pytest.raises(ScriptError, match="retry later"):
        runner(dirs, retry_interval=0.2, retry_timeout=0.5).run("Download", "Enter")


def test_hanging_script_is_killed_with_its_group(dirs):
    etc, _, out = dirs
    script(etc, "Download_Enter_01", f"(sleep 30; echo child >> {out}) & sleep 30")
    start = time.monotonic()
    with pytest.raises(ScriptError, match="timed out after 1 s"):
        runner(dirs, timeout=1).run("Download", "Enter")
    assert time.monotonic() - start < 20
    assert not out.exists()


def test_failure_stops_and_names_the_script(dirs):
    etc, _, out = dirs
    script(etc, "Download_Enter_01", "exit 3")
    script(etc, "Download_Enter_02", f"echo second >> {out}")
    with pytest.raises(ScriptError, match="Download_Enter_01 failed with exit code 3"):
        runner(dirs).run("Download", "Enter")
    assert not out.exists()


def test_error_scripts_ignore_failures(dirs):
    etc, _, out = dirs
    script(etc, "Download_Error_01", "exit 3")
    script(etc, "Download_Error_02", f"echo second >> {out}")
    runner(dirs).run("Download", "Error", ignore_errors=True)
    assert out.read_text().split() == ["second"]


def test_non_executable_script_fails(dirs):
    etc, _, _ = dirs
    script(etc, "Download_Enter_01", "true").chmod(0o644)
    with pytest.raises(ScriptError, match="not executable"):
        runner(dirs).run("Download", "Enter")


def test_output_lands_in_the_deployment_log(dirs, tmp_path):
    etc, _, _ = dirs
    script(etc, "Download_Enter_01", "echo to-out; echo to-err >&2")
    log = tmp_path / "deployments.0000.x.log"
    with deployment_log(log):
        runner(dirs).run("Download", "Enter")
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    got = {(e["message"], e.get("stream")) for e in entries if e.get("script")}
    assert {("to-out", "stdout"), ("to-err", "stderr")} <= got
    logging.getLogger("pyupdate_agent")


@pytest.mark.parametrize("start", ["", "setsid "], ids=["same-group", "setsid"])
def test_a_background_child_holding_the_output_is_not_waited_for(dirs, monkeypatch, start):
    """The script's exit is its end (process.py): a daemon it started that keeps stdout
    open neither holds the agent until the timeout nor turns into a timeout failure,
    also when it left the script's process group with setsid (issue 16)."""
    monkeypatch.setattr("pyupdate_agent.process.PUMP_JOIN", 0.2)
    etc, _, out = dirs
    script(etc, "Download_Enter_01", f"{start}sh -c 'sleep 3; echo late >> {out}' & echo started")
    start = time.monotonic()
    runner(dirs, timeout=30).run("Download", "Enter")
    assert time.monotonic() - start < 2


def test_output_past_10_kib_is_dropped_not_blocking(dirs, tmp_path):
    etc, _, _ = dirs
    # 1 MiB on stdout: far more than a pipe holds, so the script blocks unless it is read
    script(etc, "Download_Enter_01", "head -c 1048576 /dev/zero | tr '\\0' 'x' | fold -w 1000")
    log = tmp_path / "deployments.0000.x.log"
    with deployment_log(log):
        runner(dirs, timeout=10).run("Download", "Enter")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    output = [e["message"] for e in lines if e.get("stream") == "stdout"]
    assert sum(len(m) + 1 for m in output) <= 10 * 1024 + 1
    assert len(output) >= 10
