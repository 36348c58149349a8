"""config.py's key table: every key complete, every value kind refusing bad values with the
key's one line, and docs/agent.md's key reference rendered from the table.

After changing the table, rewrite the reference: `.venv/bin/python tests/agent/test_config_keys.py`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from pyupdate_agent.cli import main
from pyupdate_agent.config import KEYS, Config, Key, parse_config
from pyupdate_agent.config_schema import (
    BOOTLOADER,
    COMMAND,
    COUNT,
    DAEMON_ONLY,
    FILE,
    FLAG,
    JITTER,
    KEY_TYPE,
    MAX_SECONDS,
    MENDER,
    OURS,
    PATH,
    PATHS,
    SECONDS,
    SECONDS_OR_ZERO,
    TEXT,
    TIMEOUT,
    TOKEN,
    WINDOW,
)
from pyupdate_agent.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "agent.md"
BEGIN = "<!-- config keys: rendered from KEYS (agent/src/pyupdate_agent/config.py) by tests/agent/test_config_keys.py -->"
END = "<!-- end of config keys -->"

# Bad JSON values for each kind; a kind missing here fails the completeness test.
BAD: dict[object, list[object]] = {
    TEXT: [1, ["x"], True, {}],
    TOKEN: [1, ["t"], {}],
    PATH: [1, ["/x"], False, {}],
    FILE: ["", "  ", None, 1, {}],
    COMMAND: ["", "  ", None, ["reboot"], {}],
    PATHS: ["/x", [1], None, {}],
    FLAG: ["yes", 1, None, {}],
    SECONDS: [0, -1, 1.5, "60", True, None, MAX_SECONDS + 1, {}],
    SECONDS_OR_ZERO: [-1, 1.5, "60", True, None, {}],
    COUNT: [0, -1, 1.5, "10", True, {}],
    TIMEOUT: [0, -1, "30", True, None, float("nan"), float("inf"), {}],
    JITTER: [-0.01, 0.51, 1, "0.1", True, None, float("nan"), {}],
    BOOTLOADER: ["lilo", "UBOOT", 1, None, {}],
    KEY_TYPE: ["dsa", 3, None, {}],
    WINDOW: [
        "02:00-02:00",
        "2:00-4:00",
        "24:00-01:00",
        "02:60-03:00",
        "02:00",
        "02:00-",
        "02:00-03:00-04:00",
        1,
        ["02:00-03:00"],
        True,
        {},
    ],
}
ORIGINS = {MENDER, OURS, MENDER + DAEMON_ONLY, OURS + DAEMON_ONLY}


def _doc(key: Key, value: object) -> str:
    """`{"RootfsPartA": value}`, or `{"Security": {"AuthPrivateKey": value}}`."""
    group, _, member = key.name.partition(".")
    return json.dumps({group: {member: value}} if member else {group: value})


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name)
def test_every_key_has_a_mender_name_type_default_and_message(key: Key) -> None:
    assert re.fullmatch(r"[A-Z][A-Za-z]+(\.[A-Z][A-Za-z]+)?", key.name)
    assert key.kind in BAD, f"{key.name}: its kind has no bad values in this test"
    assert key.message and "\n" not in key.message
    assert key.doc and "\n" not in key.doc and "|" not in key.doc
    assert key.origin in ORIGINS
    assert key.kind.convert(key.default) == key.default, "the default passes its own check"
    assert key.under_data is None or key.default is None


def test_names_are_unique_ignoring_case() -> None:
    names = [key.name.lower() for key in KEYS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("key", "bad"),
    [(key, bad) for key in KEYS for bad in BAD[key.kind]],
    ids=lambda v: v.name if isinstance(v, Key) else json.dumps(v),
)
def test_a_bad_value_gives_the_keys_one_line(key: Key, bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_doc(key, bad), "pyupdate.conf")
    assert str(err.value) == f"pyupdate.conf: {key.name}: {key.message}"


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.name)
def test_the_default_written_out_reads_back_the_same(key: Key) -> None:
    default = list(key.default) if isinstance(key.default, tuple) else key.default
    assert getattr(parse_config(_doc(key, default)), key.attr) == key.default


def test_a_config_built_in_code_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"^Bootloader: must be one of uboot, grub$"):
        Config(bootloader="lilo")
    assert Config(scripts_dirs=["/a"]).scripts_dirs == ("/a",)  # type: ignore[arg-type]


def test_security_must_be_an_object() -> None:
    with pytest.raises(ConfigError, match=r"^c\.conf: Security: must be an object$"):
        parse_config('{"Security": "key.pem"}', "c.conf")


def test_a_bad_daemon_key_stops_standalone_commands_too(tmp_path: Path, capsys) -> None:
    conf = tmp_path / "pyupdate.conf"
    conf.write_text('{"PollJitter": 2}')
    assert main(["--config", str(conf), "--data", str(tmp_path), "show-artifact"]) == 3
    err = capsys.readouterr().err
    assert err == f"error: {conf}: PollJitter: must be a number between 0 and 0.5\n"


def _default(key: Key) -> str:
    value = key.default
    if key.under_data:
        return f"`<data>/{key.under_data}`"
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return ", ".join(f"`{v}`" for v in value) or "none"
    if isinstance(value, bool):
        return f"`{json.dumps(value)}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{json.dumps(value) if value == '' else value}`"


def render() -> str:
    rows = [
        "| key | from | default | value | meaning |",
        "|---|---|---|---|---|",
        *(
            f"| `{k.name}` | {k.origin} | {_default(k)} | {k.kind.accepts} | {k.doc} |"
            for k in KEYS
        ),
    ]
    return "\n".join([BEGIN, *rows, END])


def _section(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end]


def test_docs_key_reference_is_the_table() -> None:
    assert _section(DOC.read_text(encoding="utf-8")) == render(), (
        "docs/agent.md is out of date: run .venv/bin/python tests/agent/test_config_keys.py"
    )


if __name__ == "__main__":
    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(text.replace(_section(text), render()), encoding="utf-8")
    sys.exit(0)
