"""The state-script name rule (pyupdate_artifact/state_scripts.py, docs/state-scripts.md):
one home, used by the writer's CLI, the reader and the agent."""

from __future__ import annotations

import pytest

from pyupdate_artifact.state_scripts import ARTIFACT_STATES, NAME_RE


@pytest.mark.parametrize(
    "name",
    [
        "ArtifactInstall_Enter_00",
        "Download_Leave_99_wifi-check",
        "Idle_Error_10_a.b",
        "Sync_Enter_01",
    ],
)
def test_name_rule_accepts(name: str):
    assert NAME_RE.match(name)


@pytest.mark.parametrize(
    "name",
    ["ArtifactInstall_Enter_0", "ArtifactInstall_Enter_000", "ArtifactInstall_Start_01",
     "Artifact-Install_Enter_01", "ArtifactInstall_Enter_01_", "ArtifactInstall_Enter_01_a b"],
)  # fmt: skip
def test_name_rule_rejects(name: str):
    assert not NAME_RE.match(name)


def test_only_artifact_states_travel_in_an_artifact():
    assert "ArtifactInstall" in ARTIFACT_STATES
    assert not {"Idle", "Sync", "Download"} & ARTIFACT_STATES


def test_writer_cli_and_agent_share_the_one_rule():
    from pyupdate_agent import scripts
    from pyupdate_host.cli import options

    assert options.NAME_RE is scripts.NAME_RE is NAME_RE
    assert options.ARTIFACT_STATES is scripts.ARTIFACT_STATES is ARTIFACT_STATES
