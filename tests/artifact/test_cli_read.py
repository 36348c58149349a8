"""`pyupdate-artifact read` prints what an artifact's author wrote, never raw control
characters (issue 16; docs/artifact-tool.md, "read, validate, sign")."""

from __future__ import annotations

import json
from pathlib import Path

from artifact_helpers import Parts

from pyupdate_artifact.printable import printable

ESC = "\x1b]0;pwned\x07\x1b[2J"  # retitle the terminal, then clear it


def _hostile(tmp_path: Path) -> Path:
    parts = Parts(
        header_info={
            "payloads": [{"type": "rootfs-image"}],
            "artifact_provides": {"artifact_name": f"r1{ESC}", "artifact_group": f"g{ESC}"},
            "artifact_depends": {
                "device_type": [f"dev{ESC}"],
                "artifact_name": [f"old{ESC}"],
                "artifact_group": [f"og{ESC}"],
            },
        },
        type_info={
            "type": "rootfs-image",
            "artifact_provides": {f"k{ESC}": f"v{ESC}\u202e"},
            "artifact_depends": {f"d{ESC}": f"x{ESC}", "list": [f"y{ESC}"]},
            "clears_artifact_provides": [f"c{ESC}"],
        },
        meta_data=json.dumps({f"m{ESC}": f"n{ESC}"}).encode(),
        scripts={f"ArtifactInstall_Enter_00_{ESC}": b"#!/bin/sh\n"},
    )
    path = tmp_path / "hostile.mender"
    path.write_bytes(parts.build())
    return path


def test_read_prints_control_characters_escaped(cli, tmp_path: Path):
    result = cli("read", _hostile(tmp_path))
    assert result.rc == 0, result
    assert "\x1b" not in result.out and "\x07" not in result.out and "\u202e" not in result.out
    for shown in (
        "Name: r1\\x1b]0;pwned\\x07\\x1b[2J",
        "Provides group: g\\x1b",
        "'[dev\\x1b]0;pwned",
        "[old\\x1b",
        "[og\\x1b",
        "ArtifactInstall_Enter_00_\\x1b",
        "\tk\\x1b]0;pwned\\x07\\x1b[2J: v\\x1b]0;pwned\\x07\\x1b[2J\\u202e",
        "\td\\x1b]0;pwned\\x07\\x1b[2J: x\\x1b",
        '"c\\x1b',
    ):
        assert shown in result.out, (shown, result.out)
    # ordinary lines are mender-artifact's, unchanged
    assert "  Format: mender\n" in result.out and "\n    Type:   rootfs-image\n" in result.out


def test_read_json_keeps_the_values_and_escapes_them_as_json(cli, tmp_path: Path):
    result = cli("read", "--json", _hostile(tmp_path))
    assert result.rc == 0, result
    assert "\x1b" not in result.out
    assert json.loads(result.out)["name"] == f"r1{ESC}"


def test_printable_escapes_controls_and_keeps_other_text():
    assert printable("release-1 ünïcode 版本 tab\tend") == "release-1 ünïcode 版本 tab\\x09end"
    assert printable("a\x00b\x7fc\x9bd\u2028e\U000e0001") == (
        "a\\x00b\\x7fc\\x9bd\\u2028e\\U000e0001"
    )
