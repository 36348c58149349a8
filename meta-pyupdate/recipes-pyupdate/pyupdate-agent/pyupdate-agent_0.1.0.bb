SUMMARY = "pyupdate device agent: A/B rootfs updates, Mender-compatible"
DESCRIPTION = "Installs Mender Artifact v3 updates into the inactive rootfs \
slot, switches U-Boot to it for a trial boot, commits when healthy and \
records the rollback otherwise. Standalone (pyupdate install) or managed \
(polls a Mender-compatible server)."
HOMEPAGE = "https://github.com/pyupdate/pyupdate"
LICENSE = "Apache-2.0"
# agent/LICENSE: the package's copy of the repository's LICENSE, also in its
# wheel (tests/integrations/test_license_files.py keeps them equal).
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

inherit pyupdate-setup python_setuptools_build_meta systemd

# Built from this repo's checkout (PYUPDATE_SRC_DIR, default: the directory
# holding meta-pyupdate/); file:// only, so it builds with BB_NO_NETWORK.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.fileextrapathsop,oelint.vars.outofcontext - the source is this repo, outside the layer; `=` not `:=` so a PYUPDATE_SRC_DIR set in local.conf wins
FILESEXTRAPATHS:prepend = "${PYUPDATE_SRC_DIR}:"
# The systemd unit is the agent's own (agent/systemd/pyupdate.service).
SRC_URI = "file://agent"
S = "${UNPACKDIR}/agent"

SYSTEMD_SERVICE:${PN} = "pyupdate.service"

FILES:${PN} += "${localstatedir}/lib/pyupdate \
    ${nonarch_libdir}/tmpfiles.d/pyupdate.conf \
    ${systemd_system_unitdir}/pyupdate.service"
CONFFILES:${PN} = "${sysconfdir}/pyupdate/pyupdate.conf"

# fw_printenv/fw_setenv switch the slots; the libubootenv bbappend installs
# the matching /etc/fw_env.config.
RDEPENDS:${PN} = " \
    libubootenv-bin \
    python3-core \
    python3-json \
    python3-logging \
    python3-sqlite3 \
    pyupdate-artifact \
"

do_install:append() {
    install -d ${D}${systemd_system_unitdir} ${D}${sysconfdir}/pyupdate
    install -m 0644 ${S}/systemd/pyupdate.service ${D}${systemd_system_unitdir}/pyupdate.service
    # The agent's state must survive a slot switch: it lives on the data
    # partition (as Mender's /var/lib/mender -> /data/mender), created at boot.
    install -d ${D}${localstatedir}/lib ${D}${nonarch_libdir}/tmpfiles.d
    ln -s ${PYUPDATE_DATA_MOUNT_POINT}/pyupdate ${D}${localstatedir}/lib/pyupdate
    printf 'd %s/pyupdate 0700 root root -\n' '${PYUPDATE_DATA_MOUNT_POINT}' > ${D}${nonarch_libdir}/tmpfiles.d/pyupdate.conf
    cat > ${D}${sysconfdir}/pyupdate/pyupdate.conf <<PYUPDATE_CONF
${@pyupdate_agent_conf(d)}
PYUPDATE_CONF
    if [ -n "${PYUPDATE_ARTIFACT_VERIFY_KEY}" ]; then
        install -m 0644 ${PYUPDATE_ARTIFACT_VERIFY_KEY} ${D}${sysconfdir}/pyupdate/artifact-verify-key.pem
    fi
}

def pyupdate_agent_conf(d):
    import json
    import pyupdate_layer.board
    return json.dumps(pyupdate_layer.board.agent_config(d.getVar), indent=2)

do_install[file-checksums] += "${@'${PYUPDATE_ARTIFACT_VERIFY_KEY}:True' if d.getVar('PYUPDATE_ARTIFACT_VERIFY_KEY') else ''}"

