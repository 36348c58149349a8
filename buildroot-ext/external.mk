include $(sort $(wildcard $(BR2_EXTERNAL_PYUPDATE_PATH)/package/*/*.mk))
