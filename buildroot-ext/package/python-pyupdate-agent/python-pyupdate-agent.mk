################################################################################
#
# python-pyupdate-agent
#
################################################################################

PYTHON_PYUPDATE_AGENT_VERSION = 0.1.0
# Built from the checkout this external tree lives in (see pyupdate-artifact).
PYTHON_PYUPDATE_AGENT_SITE = $(BR2_EXTERNAL_PYUPDATE_PATH)/../agent
PYTHON_PYUPDATE_AGENT_SITE_METHOD = local
PYTHON_PYUPDATE_AGENT_SETUP_TYPE = setuptools
PYTHON_PYUPDATE_AGENT_LICENSE = Apache-2.0
PYTHON_PYUPDATE_AGENT_LICENSE_FILES = LICENSE

PYTHON_PYUPDATE_AGENT_SERVER_URL = $(call qstrip,$(BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_SERVER_URL))
PYTHON_PYUPDATE_AGENT_SERVER_CERT = $(call qstrip,$(BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_SERVER_CERT))

PYTHON_PYUPDATE_AGENT_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = $(PYUPDATE_LOCAL_RSYNC_EXCLUSIONS)

# The server URL and certificate go in only when set, so an image without
# them is a standalone device whose init script does not start the daemon.
# (make conditionals, not $(if): the JSON lines carry commas.)
ifneq ($(PYTHON_PYUPDATE_AGENT_SERVER_URL),)
define PYTHON_PYUPDATE_AGENT_CONF_SERVER_URL
	$(SED) '1s|^{$$|{\n  "ServerURL": "$(PYTHON_PYUPDATE_AGENT_SERVER_URL)",|' \
		$(TARGET_DIR)/etc/pyupdate/pyupdate.conf
endef
endif
ifneq ($(PYTHON_PYUPDATE_AGENT_SERVER_CERT),)
define PYTHON_PYUPDATE_AGENT_CONF_SERVER_CERT
	$(INSTALL) -D -m 0644 $(PYTHON_PYUPDATE_AGENT_SERVER_CERT) \
		$(TARGET_DIR)/etc/pyupdate/server.crt
	$(SED) '1s|^{$$|{\n  "ServerCertificate": "/etc/pyupdate/server.crt",|' \
		$(TARGET_DIR)/etc/pyupdate/pyupdate.conf
endef
endif

# The config and the device type in one hook (as package/mender).
define PYTHON_PYUPDATE_AGENT_INSTALL_CONF
	$(INSTALL) -D -m 0644 $(PYTHON_PYUPDATE_AGENT_PKGDIR)/pyupdate.conf \
		$(TARGET_DIR)/etc/pyupdate/pyupdate.conf
	$(PYTHON_PYUPDATE_AGENT_CONF_SERVER_URL)
	$(PYTHON_PYUPDATE_AGENT_CONF_SERVER_CERT)
	echo "device_type=$(call qstrip,$(BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE))" \
		> $(TARGET_DIR)/etc/pyupdate/device_type
	$(INSTALL) -D -m 0755 $(@D)/support/identity/pyupdate-device-identity \
		$(TARGET_DIR)/usr/share/pyupdate/identity/pyupdate-device-identity
	$(INSTALL) -D -m 0755 $(@D)/support/inventory/pyupdate-inventory-os \
		$(TARGET_DIR)/usr/share/pyupdate/inventory/pyupdate-inventory-os
endef
PYTHON_PYUPDATE_AGENT_POST_INSTALL_TARGET_HOOKS += PYTHON_PYUPDATE_AGENT_INSTALL_CONF

# The unit is the agent's own (agent/systemd/pyupdate.service).
define PYTHON_PYUPDATE_AGENT_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/systemd/pyupdate.service \
		$(TARGET_DIR)/usr/lib/systemd/system/pyupdate.service
endef

define PYTHON_PYUPDATE_AGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(PYTHON_PYUPDATE_AGENT_PKGDIR)/S42pyupdate \
		$(TARGET_DIR)/etc/init.d/S42pyupdate
endef

$(eval $(python-package))
