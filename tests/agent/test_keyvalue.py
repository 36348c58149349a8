"""keyvalue.py: the one KEY=VALUE reader (device_type, artifact_info, identity, inventory)."""

from __future__ import annotations

from pyupdate_agent import keyvalue

TEXT = (
    "\n# a comment\n  device_type = board-a  \nmac=00:11:22:33:44:55\nmac=66:77\n"
    "no equals sign\n=no key\nurl=http://x/?a=b\n"
)


def test_lines_split_at_the_first_equals_comments_and_blanks_skipped() -> None:
    lines = keyvalue.parse(TEXT)
    assert lines.pairs == (
        ("device_type", "board-a"),
        ("mac", "00:11:22:33:44:55"),
        ("mac", "66:77"),
        ("url", "http://x/?a=b"),
    )
    assert lines.bad == ("no equals sign", "=no key")


def test_untrimmed_keeps_key_and_value_as_printed() -> None:
    assert keyvalue.parse("a = b \n", trim=False).pairs == (("a ", " b"),)
