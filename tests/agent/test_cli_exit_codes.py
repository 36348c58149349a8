"""exitcodes.py: one table per command, Mender's codes kept, docs/agent.md rendered from it,
and the daemon's config error a code systemd does not restart on.

After changing the table, rewrite the doc: `.venv/bin/python tests/agent/test_cli_exit_codes.py`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyupdate_agent.cli import VERBS, main
from pyupdate_agent.errors import (
    ArtifactRefused,
    ConfigError,
    ModuleError,
    NothingInProgress,
    ServerError,
)
from pyupdate_agent.exitcodes import ERRORS, TABLE, USAGE, Exit, exit_code
from pyupdate_artifact import errors as artifact

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "agent.md"
UNIT = ROOT / "agent" / "systemd" / "pyupdate.service"
BEGIN = "<!-- exit codes: rendered from TABLE (agent/src/pyupdate_agent/exitcodes.py) by tests/agent/test_cli_exit_codes.py -->"
END = "<!-- end of exit codes -->"


def render() -> str:
    """One table per command; commands that share a table share its heading."""
    groups: list[tuple[list[str], dict[Exit, str]]] = []
    for command, table in TABLE.items():
        same = next((names for names, t in groups if t is table), None)
        if same is None:
            groups.append(([command], table))
        else:
            same.append(command)
    out = [BEGIN]
    for names, table in groups:
        out += ["", ", ".join(f"`{n}`" for n in names) + ":", ""]
        out += ["| code | meaning |", "|---|---|"]
        out += [f"| {int(code)} | {meaning} |" for code, meaning in sorted(table.items())]
    return "\n".join([*out, "", END])


def _section(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_docs_exit_codes_are_the_table() -> None:
    assert _section(DOC.read_text(encoding="utf-8")) == render(), (
        "docs/agent.md is out of date: run .venv/bin/python tests/agent/test_cli_exit_codes.py"
    )


def test_every_command_has_a_table() -> None:
    assert set(TABLE) == set(VERBS)
    for table in TABLE.values():
        assert Exit.FAILED in table and table[Exit.NOTHING_IN_PROGRESS]


def test_menders_codes_keep_their_meaning() -> None:
    assert (Exit.OK, Exit.FAILED, Exit.NOTHING_IN_PROGRESS, Exit.REBOOT_NEEDED) == (0, 1, 2, 4)
    assert "reboot" in TABLE["install"][Exit.REBOOT_NEEDED]
    for command in ("commit", "rollback"):
        assert "no update in progress" in TABLE[command][Exit.NOTHING_IN_PROGRESS]
    assert USAGE == Exit.NOTHING_IN_PROGRESS  # argparse's usage errors, as mender's CLI


def test_every_error_code_is_some_commands_code() -> None:
    listed = {code for table in TABLE.values() for code in table}
    assert {code for _, code in ERRORS} <= listed


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (ArtifactRefused(artifact.SignatureError("manifest.sig does not verify")), 7),
        (ArtifactRefused(artifact.CompatibilityError("not for device type x")), 8),
        (ArtifactRefused(artifact.ChecksumError("data/0000.tar: sha256 differs")), 6),
        (ArtifactRefused(artifact.FormatError("not a tar")), 6),
        (ArtifactRefused(artifact.InputError("cannot read artifact")), 5),
        (ArtifactRefused(artifact.KeyFileError("key.pem: not a PEM public key")), 3),
        (ServerError("download failed after 10 resumes"), 5),
        (ConfigError("c.conf: PollJitter: must be a number"), 3),
        (ModuleError("update module x: ArtifactInstall failed"), 1),
        (KeyboardInterrupt(), 130),
    ],
)
def test_install_gives_each_kind_of_error_its_code(err: BaseException, code: int) -> None:
    assert exit_code("install", err) == code


def test_a_code_the_command_does_not_list_is_failed() -> None:
    assert exit_code("daemon", ServerError("GET /x: connection refused")) == Exit.FAILED
    assert exit_code("show-artifact", ArtifactRefused(artifact.FormatError("x"))) == Exit.FAILED
    assert exit_code("commit", NothingInProgress("x")) == Exit.NOTHING_IN_PROGRESS


def test_a_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["install"])
    assert exc.value.code == USAGE


def test_daemon_config_error_exits_3_before_and_after_the_exec(tmp_path: Path, capsys) -> None:
    """A bad key fails in `pyupdate daemon` itself; a missing ServerURL in the daemon's
    lean entry: both with the code systemd is told not to restart on."""
    bad = tmp_path / "bad.conf"
    bad.write_text('{"PollJitter": 2}')
    assert main(["--config", str(bad), "--data", str(tmp_path), "daemon"]) == Exit.CONFIG
    assert capsys.readouterr().err.count("\n") == 1
    empty = tmp_path / "empty.conf"
    empty.write_text("{}")
    argv = ["--config", str(empty), "--data", str(tmp_path / "data")]
    run = subprocess.run(
        [sys.executable, "-m", "pyupdate_agent.daemon", *argv], capture_output=True, text=True
    )
    assert run.returncode == Exit.CONFIG, run.stderr
    assert run.stderr == f"error: {empty}: ServerURL: must be set to run the daemon\n"


def test_the_unit_does_not_restart_a_daemon_with_a_bad_config() -> None:
    lines = UNIT.read_text().splitlines()
    assert "Restart=on-failure" in lines
    assert f"RestartPreventExitStatus={int(Exit.CONFIG)}" in lines


if __name__ == "__main__":
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(_section(text), render()), encoding="utf-8")
    sys.exit(0)
