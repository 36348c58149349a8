SUMMARY = "Mender Artifact v3 library and tools: pyupdate-artifact, pyupdate-image"
DESCRIPTION = "The artifact reader the agent uses on the device, and on the \
build host (pyupdate-artifact-native) the tools that write and sign artifacts \
and render the U-Boot boot script, env and fw_env.config from one board config."
HOMEPAGE = "https://github.com/pyupdate/pyupdate"
# No LICENSE file at the repo root yet: pyproject.toml declares Apache-2.0.
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

inherit pyupdate-setup python_setuptools_build_meta

# Built from this repo's checkout (PYUPDATE_SRC_DIR), never fetched: the layer
# and the code it builds are one version.
FILESEXTRAPATHS:prepend = "${PYUPDATE_SRC_DIR}:"
SRC_URI = "file://artifact_tool"
S = "${UNPACKDIR}/artifact_tool"

RDEPENDS:${PN} = "python3-core python3-json python3-compression python3-cryptography"

# pyupdate-image (build host only) renders templates and runs the U-Boot and
# filesystem tools; the native package pulls them into the recipe sysroot.
RDEPENDS:${PN}:class-native = " \
    python3-jinja2-native \
    python3-jsonschema-native \
    python3-cryptography-native \
    u-boot-tools-native \
    libubootenv-native \
    e2fsprogs-native \
    dosfstools-native \
    mtools-native \
    util-linux-native \
"
DEPENDS:append:class-native = " ${RDEPENDS:${PN}:class-native}"

BBCLASSEXTEND = "native"
