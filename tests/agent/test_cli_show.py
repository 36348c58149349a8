"""`pyupdate show-artifact | show-provides` print what artifacts named, with control
characters escaped, never raw to the terminal (issue 16; docs/agent.md)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pyupdate_agent.cli import main
from pyupdate_agent.store import STORE_NAME, Store

ESC = "\x1b]0;pwned\x07\x1b[2J"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    Store.open(data).close()  # type: ignore[union-attr]
    provides = {"artifact_name": f"r1{ESC}", f"key{ESC}": f"value{ESC}\u202e"}
    with sqlite3.connect(data / STORE_NAME) as db:
        db.execute("INSERT INTO current (id, provides) VALUES (1, ?)", (json.dumps(provides),))
    db.close()
    (tmp_path / "pyupdate.conf").write_text("{}")
    return data


def _run(data: Path, verb: str, capsys) -> str:
    capsys.readouterr()
    assert main(["-c", str(data.parent / "pyupdate.conf"), "-d", str(data), verb]) == 0
    return capsys.readouterr().out


def test_show_artifact_escapes_control_characters(data: Path, capsys):
    assert _run(data, "show-artifact", capsys) == "r1\\x1b]0;pwned\\x07\\x1b[2J\n"


def test_show_provides_escapes_keys_and_values(data: Path, capsys):
    out = _run(data, "show-provides", capsys)
    assert "\x1b" not in out and "\u202e" not in out
    assert "key\\x1b]0;pwned\\x07\\x1b[2J=value\\x1b]0;pwned\\x07\\x1b[2J\\u202e\n" in out
