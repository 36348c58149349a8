SUMMARY = "pyupdate build-host tools: pyupdate-artifact, pyupdate-image"
DESCRIPTION = "The build host's half of pyupdate: the tools that write and \
sign artifacts (pyupdate-artifact) and render the U-Boot boot script, env \
and fw_env.config from one board config (pyupdate-image). Native only: the \
device gets the reader alone (pyupdate-artifact)."
HOMEPAGE = "https://github.com/pyupdate/pyupdate"
LICENSE = "Apache-2.0"
# artifact_tool/host/LICENSE: the package's copy of the repository's LICENSE, also
# in its wheel (tests/integrations/test_license_files.py keeps them equal).
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# The writer and the CLIs import the reader (pyupdate-artifact-native).
# pyupdate-image renders templates and runs the U-Boot and filesystem tools;
# they come into the recipe sysroot with it. Signatures go through OpenSSL's
# libcrypto (openssl-native), board configs are checked without jsonschema:
# neither python3-cryptography nor python3-jsonschema (python3-rpds-py) is
# here, since both build Rust.
PYUPDATE_NATIVE_TOOLS = " \
    dosfstools-native \
    e2fsprogs-native \
    libubootenv-native \
    mtools-native \
    openssl-native \
    python3-jinja2-native \
    pyupdate-artifact-native \
    u-boot-tools-native \
    util-linux-native \
"
# nooelint: oelint.vars.dependsclass - every name in PYUPDATE_NATIVE_TOOLS ends in -native; oelint does not expand it
DEPENDS += "${PYUPDATE_NATIVE_TOOLS}"

# Built from this repo's checkout (PYUPDATE_SRC_DIR), never fetched: the layer
# and the code it builds are one version.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.fileextrapathsop,oelint.vars.outofcontext - the source is this repo, outside the layer; `=` not `:=` so a PYUPDATE_SRC_DIR set in local.conf wins
FILESEXTRAPATHS:prepend = "${PYUPDATE_SRC_DIR}:"
SRC_URI = "file://artifact_tool/host"
S = "${UNPACKDIR}/artifact_tool/host"

inherit pyupdate-setup pyupdate-checkout-python

RDEPENDS:${PN} = "${PYUPDATE_NATIVE_TOOLS}"

inherit_defer native
