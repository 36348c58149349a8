"""shellcheck on every shell script of the integrations (Buildroot board scripts, init script, CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from integrations_helpers import BR_EXT, REPO, run

SCRIPTS = sorted(
    [
        *BR_EXT.glob("board/*/*.sh"),
        BR_EXT / "package" / "python-pyupdate-agent" / "S42pyupdate",
        REPO / "ci" / "check-layers.sh",
    ]
)


def test_the_script_list_is_complete():
    assert len(SCRIPTS) >= 6
    for path in SCRIPTS:
        assert path.read_text().startswith("#!/bin/sh") or path.read_text().startswith(
            "#!/bin/bash"
        )


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_is_clean(script: Path):
    result = run(["shellcheck", "--severity=style", str(script)])
    assert result.returncode == 0, result.stdout
