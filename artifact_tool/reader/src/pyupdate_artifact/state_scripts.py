"""State-script names, the one rule the writer, the reader and the agent share.

`<STATE>_<Enter|Leave|Error>_<NN>[_<description>]` (docs/state-scripts.md);
only the `Artifact*` states may travel in an artifact: Idle, Sync and Download
scripts live on the device.
"""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^([A-Za-z]+)_(Enter|Leave|Error)_[0-9][0-9](_\S+)?$")
ARTIFACT_STATES = frozenset(
    {
        "ArtifactInstall",
        "ArtifactReboot",
        "ArtifactCommit",
        "ArtifactRollback",
        "ArtifactRollbackReboot",
        "ArtifactFailure",
    }
)
