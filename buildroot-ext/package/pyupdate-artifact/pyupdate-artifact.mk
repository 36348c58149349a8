################################################################################
#
# pyupdate-artifact
#
################################################################################

PYUPDATE_ARTIFACT_VERSION = 0.1.0
# Built from the checkout this external tree lives in: the tree and the
# code it builds are one version, and nothing is downloaded.
# The reader only (order, hashes, signatures; stdlib-only): the target gets
# it for the agent, the host for pyupdate-host, which holds the writer and
# the CLIs the post-image script runs.
PYUPDATE_ARTIFACT_SITE = $(BR2_EXTERNAL_PYUPDATE_PATH)/../artifact_tool/reader
PYUPDATE_ARTIFACT_SITE_METHOD = local
PYUPDATE_ARTIFACT_SETUP_TYPE = setuptools
PYUPDATE_ARTIFACT_LICENSE = Apache-2.0
PYUPDATE_ARTIFACT_LICENSE_FILES = LICENSE
PYUPDATE_ARTIFACT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = $(PYUPDATE_LOCAL_RSYNC_EXCLUSIONS)
HOST_PYUPDATE_ARTIFACT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = $(PYUPDATE_LOCAL_RSYNC_EXCLUSIONS)

$(eval $(python-package))
$(eval $(host-python-package))
