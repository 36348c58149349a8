# pyupdate-checkout-python.bbclass: a pyupdate Python package built from the
# checkout that holds this layer (SRC_URI file://, as the agent, the reader
# and the build-host tools are).
#
# The file:// fetcher copies the whole directory: a setuptools build/ or
# egg-info left in the checkout by a developer's own build would put stale
# modules into the wheel (Buildroot's packages exclude them from their rsync
# the same way: buildroot-ext/external.mk).

inherit python_setuptools_build_meta

do_configure:prepend() {
    rm -rf ${S}/build ${S}/src/*.egg-info
}
