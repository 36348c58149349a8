# Global class added by meta-pyupdate's layer.conf.
#
# - DISTRO_FEATURES:append = " pyupdate" is the second way to opt in; it pulls
#   in pyupdate-full exactly like INHERIT += "pyupdate-full".
# - Without either (no PYUPDATE_FEATURES at all), warn once: the layer's bbappends stay inactive, which is
#   what a user who added the layer by mistake wants, but rarely what one who
#   forgot the opt-in wants.

# nooelint: oelint.var.inherit.inherit_defer - a global (INHERIT) class: inherit_defer is for recipes
inherit ${@bb.utils.contains('DISTRO_FEATURES', 'pyupdate', 'pyupdate-full', '', d)}

addhandler pyupdate_sanity_optin
pyupdate_sanity_optin[eventmask] = "bb.event.SanityCheck"
python pyupdate_sanity_optin() {
    if e.data.getVar('SKIP_META_PYUPDATE_SANITY_CHECK') == "1":
        return
    if not e.data.getVar('PYUPDATE_FEATURES'):
        bb.warn("meta-pyupdate is in BBLAYERS but not enabled: add INHERIT += \"pyupdate-full\" "
                "(or DISTRO_FEATURES:append = \" pyupdate\") to local.conf, or set "
                "SKIP_META_PYUPDATE_SANITY_CHECK = \"1\". See meta-pyupdate/README.md.")
}
