SUMMARY = "Mender Artifact v3 reader: order, hashes, signatures"
DESCRIPTION = "The artifact reader the agent uses on the device: streaming \
checks of order, hashes and signatures, provides and depends. No writer and \
no command-line tools: those are the build host's (pyupdate-host-native), \
which is why this recipe is also built native."
HOMEPAGE = "https://github.com/pyupdate/pyupdate"
LICENSE = "Apache-2.0"
# artifact_tool/reader/LICENSE: the package's copy of the repository's LICENSE, also
# in its wheel (tests/integrations/test_license_files.py keeps them equal).
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# Built from this repo's checkout (PYUPDATE_SRC_DIR), never fetched: the layer
# and the code it builds are one version.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.fileextrapathsop,oelint.vars.outofcontext - the source is this repo, outside the layer; `=` not `:=` so a PYUPDATE_SRC_DIR set in local.conf wins
FILESEXTRAPATHS:prepend = "${PYUPDATE_SRC_DIR}:"
SRC_URI = "file://artifact_tool/reader"
S = "${UNPACKDIR}/artifact_tool/reader"

inherit pyupdate-setup pyupdate-checkout-python

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
RDEPENDS:${PN}:class-native = ""

BBCLASSEXTEND = "native"
