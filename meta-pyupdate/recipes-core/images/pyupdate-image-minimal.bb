SUMMARY = "Minimal A/B image with the pyupdate agent"
DESCRIPTION = "core-image-minimal plus the pyupdate agent: with \
INHERIT += \"pyupdate-full\" every build gives a wic disk (boot, rootfs A, \
rootfs B, data) that boots with U-Boot, and a signed .mender artifact of the \
same rootfs."
HOMEPAGE = "https://github.com/pyupdate/pyupdate"
LICENSE = "MIT"

# pyupdate-image: the agent, the A/B disk and the artifact (per feature).
inherit core-image pyupdate-image

# Without the opt-in this image would be a plain one that cannot be updated:
# skip it, with the reason `bitbake pyupdate-image-minimal` then prints.
# nooelint: oelint.task.noanonpython - SkipRecipe can only be raised at parse time
python () {
    if 'pyupdate-image' not in (d.getVar('PYUPDATE_FEATURES') or '').split():
        raise bb.parse.SkipRecipe('meta-pyupdate is not enabled: add INHERIT += "pyupdate-full" to local.conf '
                                  '(or PYUPDATE_FEATURES_ENABLE += "pyupdate-image")')
}
