"""Build steps run in a scratch dir; a failure leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyupdate_host.image.errors import ToolError
from pyupdate_host.image.steps import Step, run_steps


def _writes(name: str):
    def run(d: Path) -> None:
        (d / name).write_text(name)

    return run


def test_products_are_moved_into_place_with_timings(tmp_path):
    out = tmp_path / "out"
    moved, timings = run_steps(
        [Step("a", _writes("a.img")), Step("b", _writes("b.img"))], out, ["a.img", "b.img"]
    )
    assert moved == [out / "a.img", out / "b.img"]
    assert [t.name for t in timings] == ["a", "b"]
    assert sorted(p.name for p in out.iterdir()) == ["a.img", "b.img"]


def test_failing_step_removes_partial_output(tmp_path):
    out = tmp_path / "out"

    def fail(d: Path) -> None:
        (d / "disk.img").write_bytes(b"half")
        raise ToolError("sfdisk: boom")

    with pytest.raises(ToolError, match="sfdisk: boom"):
        run_steps([Step("a", _writes("a.img")), Step("disk", fail)], out, ["a.img", "disk.img"])
    assert list(out.iterdir()) == []


def test_interrupt_also_cleans_up(tmp_path):
    out = tmp_path / "out"

    def interrupted(d: Path) -> None:
        (d / "disk.img").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_steps([Step("disk", interrupted)], out, ["disk.img"])
    assert list(out.iterdir()) == []
