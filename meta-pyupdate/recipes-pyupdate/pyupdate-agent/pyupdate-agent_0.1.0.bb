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

inherit pyupdate-setup pyupdate-checkout-python systemd

# Built from this repo's checkout (PYUPDATE_SRC_DIR, default: the directory
# holding meta-pyupdate/); file:// only, so it builds with BB_NO_NETWORK.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.fileextrapathsop,oelint.vars.outofcontext - the source is this repo, outside the layer; `=` not `:=` so a PYUPDATE_SRC_DIR set in local.conf wins
FILESEXTRAPATHS:prepend = "${PYUPDATE_SRC_DIR}:"
# The systemd unit is the agent's own (agent/systemd/pyupdate.service).
SRC_URI = "file://agent"
S = "${UNPACKDIR}/agent"

# The unit is always installed with pyupdate-systemd, but enabled only with a
# server to poll: without PYUPDATE_SERVER_URL the daemon would exit and be
# restarted every 10 s forever. Standalone devices run `pyupdate install`.
SYSTEMD_SERVICE:${PN} = "${@pyupdate_feature('pyupdate-systemd', 'pyupdate.service', '', d)}"
SYSTEMD_AUTO_ENABLE:${PN} = "${@'enable' if d.getVar('PYUPDATE_SERVER_URL') else 'disable'}"

FILES:${PN} += "${localstatedir}/lib/pyupdate \
    ${datadir}/pyupdate \
    ${sysconfdir}/pyupdate/scripts/version \
    ${nonarch_libdir}/tmpfiles.d/pyupdate.conf \
    ${systemd_system_unitdir}/pyupdate.service"
CONFFILES:${PN} = "${sysconfdir}/pyupdate/pyupdate.conf"

# What the agent imports on the device, mapped through oe-core's
# python3-manifest.json (tests/integrations/test_runtime_closure.py keeps the
# two in step), never through what another package happens to pull in:
#   core        argparse, collections, contextlib, dataclasses, enum, fcntl,
#               functools, lzma, os, pathlib, re, shutil, signal, stat, struct,
#               subprocess, threading, time, typing, zlib
#   asyncio     concurrent.futures
#   crypt       hashlib
#   ctypes      ctypes (OpenSSL's libcrypto for signatures and the device key)
#   fcntl       fcntl (in python3-core today; named so a manifest move cannot drop it)
#   io          socket, ssl
#   json, logging, sqlite3 (the update record), shell (shlex)
#   math        random
#   netclient   base64, http.client, urllib.request, uuid
#   threading   queue
# libcrypto: loaded by soname (libcrypto.so.3) through ctypes, so no shlibdeps
# sees it. fw_printenv/fw_setenv switch the slots; the libubootenv bbappend
# installs the matching /etc/fw_env.config. pyupdate-artifact: the reader.
RDEPENDS:${PN} = " \
    libcrypto \
    libubootenv-bin \
    python3-asyncio \
    python3-core \
    python3-crypt \
    python3-ctypes \
    python3-fcntl \
    python3-io \
    python3-json \
    python3-logging \
    python3-math \
    python3-netclient \
    python3-shell \
    python3-sqlite3 \
    python3-threading \
    pyupdate-artifact \
"

do_install:append() {
    install -d ${D}${sysconfdir}/pyupdate ${D}${sysconfdir}/pyupdate/scripts
    # The agent refuses a scripts dir without `version` (Mender's format 3).
    # Owned here, once, so any number of pyupdate-state-scripts recipes can
    # add scripts to the same dir without two packages shipping the same file.
    printf '3\n' > ${D}${sysconfdir}/pyupdate/scripts/version
    # The device's identity (MAC of the first interface) and basic inventory,
    # the agent's own scripts; a board adds or replaces them in these dirs.
    install -D -m 0755 ${S}/support/identity/pyupdate-device-identity \
        ${D}${datadir}/pyupdate/identity/pyupdate-device-identity
    install -D -m 0755 ${S}/support/inventory/pyupdate-inventory-os \
        ${D}${datadir}/pyupdate/inventory/pyupdate-inventory-os
    if [ -n "${@pyupdate_feature('pyupdate-systemd', '1', '', d)}" ]; then
        install -d ${D}${systemd_system_unitdir}
        install -m 0644 ${S}/systemd/pyupdate.service ${D}${systemd_system_unitdir}/pyupdate.service
    fi
    # The agent's state must survive a slot switch: it lives on the data
    # partition (as Mender's /var/lib/mender -> /data/mender), created at boot.
    install -d ${D}${localstatedir}/lib ${D}${nonarch_libdir}/tmpfiles.d
    ln -sfn ${PYUPDATE_DATA_MOUNT_POINT}/pyupdate ${D}${localstatedir}/lib/pyupdate
    printf 'd %s/pyupdate 0700 root root -\n' '${PYUPDATE_DATA_MOUNT_POINT}' > ${D}${nonarch_libdir}/tmpfiles.d/pyupdate.conf
    cat > ${D}${sysconfdir}/pyupdate/pyupdate.conf <<PYUPDATE_CONF
${@pyupdate_agent_conf(d)}
PYUPDATE_CONF
    if [ -n "${PYUPDATE_ARTIFACT_VERIFY_KEY}" ]; then
        install -m 0644 ${PYUPDATE_ARTIFACT_VERIFY_KEY} ${D}${sysconfdir}/pyupdate/artifact-verify-key.pem
    fi
    if [ -n "${PYUPDATE_SERVER_CERT}" ]; then
        install -m 0644 ${PYUPDATE_SERVER_CERT} ${D}${sysconfdir}/pyupdate/server.crt
    fi
}

def pyupdate_agent_conf(d):
    import json
    import pyupdate_layer.board
    return json.dumps(pyupdate_layer.board.agent_config(d.getVar), indent=2)

do_install[file-checksums] += "${@'${PYUPDATE_ARTIFACT_VERIFY_KEY}:True' if d.getVar('PYUPDATE_ARTIFACT_VERIFY_KEY') else ''}"
do_install[file-checksums] += "${@'${PYUPDATE_SERVER_CERT}:True' if d.getVar('PYUPDATE_SERVER_CERT') else ''}"

