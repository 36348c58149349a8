# The pyupdate packages build from this checkout (SITE_METHOD local): a
# setuptools build/ or egg-info left in it would put stale modules into the
# wheels, so only the sources are copied into Buildroot's build directory.
PYUPDATE_LOCAL_RSYNC_EXCLUSIONS = --exclude build --exclude '*.egg-info' --exclude __pycache__

include $(sort $(wildcard $(BR2_EXTERNAL_PYUPDATE_PATH)/package/*/*.mk))

# Bad settings stop `make` at once with one line naming the option, not
# after an hour of building in the post-image script.
ifeq ($(BR2_HAVE_DOT_CONFIG),y)
PYUPDATE_CHECK_SIGNING_KEY := $(call qstrip,$(BR2_PYUPDATE_ARTIFACT_SIGNING_KEY))
PYUPDATE_CHECK_VERIFY_KEY := $(call qstrip,$(BR2_PYUPDATE_ARTIFACT_VERIFY_KEY))
PYUPDATE_CHECK_NAME := $(call qstrip,$(BR2_PYUPDATE_ARTIFACT_NAME))
PYUPDATE_CHECK_DEVICE_TYPE := $(call qstrip,$(BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE))
ifeq ($(BR2_PYUPDATE_SIGNING_REQUIRED):$(PYUPDATE_CHECK_SIGNING_KEY),y:)
$(error BR2_PYUPDATE_ARTIFACT_SIGNING_KEY: not set, and BR2_PYUPDATE_SIGNING_REQUIRED is: set a PEM private key or drop the requirement)
endif
ifneq ($(PYUPDATE_CHECK_SIGNING_KEY),)
ifeq ($(wildcard $(PYUPDATE_CHECK_SIGNING_KEY)),)
$(error BR2_PYUPDATE_ARTIFACT_SIGNING_KEY: $(PYUPDATE_CHECK_SIGNING_KEY): file not found)
endif
endif
ifneq ($(PYUPDATE_CHECK_VERIFY_KEY),)
ifeq ($(wildcard $(PYUPDATE_CHECK_VERIFY_KEY)),)
$(error BR2_PYUPDATE_ARTIFACT_VERIFY_KEY: $(PYUPDATE_CHECK_VERIFY_KEY): file not found)
endif
endif
ifneq ($(words $(PYUPDATE_CHECK_NAME)),1)
$(error BR2_PYUPDATE_ARTIFACT_NAME: '$(PYUPDATE_CHECK_NAME)' must be one word, without spaces)
endif
ifeq ($(BR2_PACKAGE_PYTHON_PYUPDATE_AGENT),y)
ifneq ($(words $(PYUPDATE_CHECK_DEVICE_TYPE)),1)
$(error BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE: '$(PYUPDATE_CHECK_DEVICE_TYPE)' must be one word, without spaces)
endif
endif
endif
