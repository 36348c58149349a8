# Gated: nothing changes unless the build opted in (pyupdate in DISTRO_FEATURES,
# set by INHERIT += "pyupdate-full").
require ${@bb.utils.contains('DISTRO_FEATURES', 'pyupdate', 'u-boot-pyupdate.inc', '', d)}
