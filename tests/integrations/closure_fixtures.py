"""Facts for the closure tests: live from PYUPDATE_SNAPSHOTS, else the committed record."""

from __future__ import annotations

import closure_facts
import pytest


@pytest.fixture(scope="session")
def oe_facts() -> dict[str, object]:
    snap = closure_facts.snapshots()
    return closure_facts.live_oe_core(snap) if snap else closure_facts.recorded("oe-core.json")


@pytest.fixture(scope="session")
def br_facts() -> dict[str, object]:
    snap = closure_facts.snapshots()
    return closure_facts.live_buildroot(snap) if snap else closure_facts.recorded("buildroot.json")
