"""Progress bar (progress.py): drawn only on a terminal and without --quiet."""

from __future__ import annotations

import io

from pyupdate_host import progress
from pyupdate_host.progress import Bar, bar_if_terminal


def test_no_bar_when_quiet_or_not_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())
    assert bar_if_terminal(100, "writing", quiet=False) is None
    monkeypatch.setattr(progress.sys, "stderr", Tty())
    assert bar_if_terminal(100, "writing", quiet=True) is None
    assert isinstance(bar_if_terminal(100, "writing", quiet=False), Bar)


def test_bar_draws_share_and_ends_the_line():
    stream = io.StringIO()
    bar = Bar(1 << 20, "validating", stream)
    bar(1 << 19)
    bar(1 << 19)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\rvalidating [")
    assert "100%" in text
    assert text.endswith("\n")
