# Gated: nothing changes unless the build turned on the pyupdate-uboot feature
# (INHERIT += "pyupdate-full" does; PYUPDATE_FEATURES_DISABLE can take it out).
require ${@bb.utils.contains('PYUPDATE_FEATURES', 'pyupdate-uboot', 'libubootenv-pyupdate.inc', '', d)}
