# pyupdate-state-scripts.bbclass: ship Mender state scripts from a recipe.
#
#   inherit pyupdate-state-scripts
#   SRC_URI += "file://ArtifactInstall_Leave_50_check-space"
#   PYUPDATE_STATE_SCRIPTS = "ArtifactInstall_Leave_50_check-space"   # nooelint
#
# Root-filesystem state scripts (Idle, Sync, Download and the Artifact*
# states, see docs/state-scripts.md) are installed in /etc/pyupdate/scripts,
# where the agent runs them from. Scripts that travel inside an artifact are
# added to it with PYUPDATE_ARTIFACT_EXTRA_ARGS = "-s <file>". A name that does
# not follow <State>_<Enter|Leave|Error>_<NN>[_<text>]
# stops do_install with one line naming it. The `version` file the agent
# requires next to the scripts (Mender's "3") is pyupdate-agent's, so the
# package RDEPENDS on it.

PYUPDATE_STATE_SCRIPTS ?= ""
PYUPDATE_STATE_SCRIPTS_DIR = "${sysconfdir}/pyupdate/scripts"

FILES:${PN} += "${PYUPDATE_STATE_SCRIPTS_DIR}"
RDEPENDS:${PN} += "pyupdate-agent"

do_install:append() {
    install -d ${D}${PYUPDATE_STATE_SCRIPTS_DIR}
    for script in ${PYUPDATE_STATE_SCRIPTS}; do
        if ! printf '%s\n' "$script" | grep -Eq '^(Idle|Sync|Download|ArtifactInstall|ArtifactReboot|ArtifactCommit|ArtifactRollback|ArtifactRollbackReboot|ArtifactFailure)_(Enter|Leave|Error)_[0-9][0-9](_[A-Za-z0-9_-]+)?$'; then
            bbfatal "PYUPDATE_STATE_SCRIPTS: $script is not <State>_<Enter|Leave|Error>_<NN>[_<text>] (docs/state-scripts.md)"
        fi
        install -m 0755 ${UNPACKDIR}/$script ${D}${PYUPDATE_STATE_SCRIPTS_DIR}/$script
    done
}
