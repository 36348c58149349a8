SUMMARY = "Mender Artifact v3 library and tools: pyupdate-artifact, pyupdate-image"
DESCRIPTION = "The artifact reader the agent uses on the device, and on the \
build host (pyupdate-artifact-native) the tools that write and sign artifacts \
and render the U-Boot boot script, env and fw_env.config from one board config."
HOMEPAGE = "https://github.com/pyupdate/pyupdate"
LICENSE = "Apache-2.0"
# artifact_tool/LICENSE: the package's copy of the repository's LICENSE, also in its
# wheel (tests/integrations/test_license_files.py keeps them equal).
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# pyupdate-image (build host only) renders templates and runs the U-Boot and
# filesystem tools; the native package pulls them into the recipe sysroot.
# Signatures go through OpenSSL's libcrypto (openssl-native), board configs
# are checked without jsonschema: neither python3-cryptography nor
# python3-jsonschema (python3-rpds-py) is here, since both build Rust.
PYUPDATE_NATIVE_TOOLS = " \
    dosfstools-native \
    e2fsprogs-native \
    libubootenv-native \
    mtools-native \
    openssl-native \
    python3-jinja2-native \
    u-boot-tools-native \
    util-linux-native \
"
DEPENDS:append:class-native = " ${PYUPDATE_NATIVE_TOOLS}"

# Built from this repo's checkout (PYUPDATE_SRC_DIR), never fetched: the layer
# and the code it builds are one version.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.fileextrapathsop,oelint.vars.outofcontext - the source is this repo, outside the layer; `=` not `:=` so a PYUPDATE_SRC_DIR set in local.conf wins
FILESEXTRAPATHS:prepend = "${PYUPDATE_SRC_DIR}:"
SRC_URI = "file://artifact_tool"
S = "${UNPACKDIR}/artifact_tool"

inherit pyupdate-setup python_setuptools_build_meta

# What the artifact reader imports on the device (python3-manifest.json):
#   core (collections, contextlib, dataclasses, functools, lzma, os, pathlib,
#   re, struct, threading, typing, zlib), crypt (hashlib), ctypes and libcrypto
#   (signatures through OpenSSL, loaded by soname), io (ssl), json,
#   netclient (base64), threading (queue). The agent adds its own on top.
RDEPENDS:${PN} = " \
    libcrypto \
    python3-core \
    python3-crypt \
    python3-ctypes \
    python3-io \
    python3-json \
    python3-netclient \
    python3-threading \
"
RDEPENDS:${PN}:class-native = "${PYUPDATE_NATIVE_TOOLS}"

BBCLASSEXTEND = "native"
