################################################################################
#
# pyupdate-host
#
################################################################################

PYUPDATE_HOST_VERSION = 0.1.0
# Built from the checkout this external tree lives in (see pyupdate-artifact).
PYUPDATE_HOST_SITE = $(BR2_EXTERNAL_PYUPDATE_PATH)/../artifact_tool/host
PYUPDATE_HOST_SITE_METHOD = local
PYUPDATE_HOST_SETUP_TYPE = setuptools
PYUPDATE_HOST_LICENSE = Apache-2.0
PYUPDATE_HOST_LICENSE_FILES = LICENSE
HOST_PYUPDATE_HOST_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = $(PYUPDATE_LOCAL_RSYNC_EXCLUSIONS)

# The writer and the CLIs import the reader (host-pyupdate-artifact).
# pyupdate-image renders templates (jinja2), validates board configs
# (a small validator of its own: jsonschema pulls Rust) and runs mkimage,
# mkenvimage, mkfs.ext4, debugfs, mkfs.vfat and mcopy; the artifact writer
# signs with OpenSSL's libcrypto (ctypes).
HOST_PYUPDATE_HOST_DEPENDENCIES = \
	host-dosfstools \
	host-e2fsprogs \
	host-mtools \
	host-openssl \
	host-pyupdate-artifact \
	host-python-jinja2 \
	host-uboot-tools

$(eval $(host-python-package))
