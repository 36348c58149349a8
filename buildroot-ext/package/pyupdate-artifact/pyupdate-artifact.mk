################################################################################
#
# pyupdate-artifact
#
################################################################################

PYUPDATE_ARTIFACT_VERSION = 0.1.0
# Built from the checkout this external tree lives in: the tree and the
# code it builds are one version, and nothing is downloaded.
PYUPDATE_ARTIFACT_SITE = $(BR2_EXTERNAL_PYUPDATE_PATH)/../artifact_tool
PYUPDATE_ARTIFACT_SITE_METHOD = local
PYUPDATE_ARTIFACT_SETUP_TYPE = setuptools
PYUPDATE_ARTIFACT_LICENSE = Apache-2.0
PYUPDATE_ARTIFACT_LICENSE_FILES = LICENSE

# pyupdate-image renders templates (jinja2), validates board configs
# (a small validator of its own: jsonschema pulls Rust) and runs mkimage, mkenvimage, mkfs.ext4, debugfs, mkfs.vfat
# and mcopy; the artifact writer signs with OpenSSL's libcrypto (ctypes).
HOST_PYUPDATE_ARTIFACT_DEPENDENCIES = \
	host-dosfstools \
	host-e2fsprogs \
	host-mtools \
	host-openssl \
	host-python-jinja2 \
	host-uboot-tools

$(eval $(python-package))
$(eval $(host-python-package))
