# pyupdate-artifact.bbclass: the signed rootfs artifact as an image type.
#
#   IMAGE_FSTYPES += "pyupdate"    # pyupdate-image adds it (pyupdate-artifact feature)
#
# Writes ${IMAGE_NAME}.mender (and a ${IMAGE_LINK_NAME}.mender link) with
# `pyupdate-artifact write rootfs-image`, Mender Artifact v3, from the slot-sized
# ext4 of the same rootfs. Variables (pyupdate-setup.bbclass):
#   PYUPDATE_ARTIFACT_NAME             -n, also /etc/pyupdate/artifact_info
#   PYUPDATE_DEVICE_TYPES_COMPATIBLE   -t, one per word
#   PYUPDATE_ARTIFACT_SIGNING_KEY      -k (empty: unsigned)
#   PYUPDATE_ARTIFACT_PROVIDES/DEPENDS --provides/--depends KEY:VALUE
#   PYUPDATE_ARTIFACT_COMPRESSION      --compression
#   PYUPDATE_ARTIFACT_EXTRA_ARGS       anything else
# Before writing it checks what meta-mender's mender-artifactimg checks: the
# rootfs fits the slot (PYUPDATE_ROOTFS_PART_SIZE_MB), else it names the variable.

inherit pyupdate-setup

IMAGE_TYPES += "pyupdate"
# The artifact carries the ext4 of the same rootfs (":pyupdate" is the image type, not a machine).
# nooelint: oelint.vars.specific
IMAGE_TYPEDEP:pyupdate = "ext4"
do_image_pyupdate[depends] += "pyupdate-host-native:do_populate_sysroot"

# The running artifact's name, read by the agent (Mender's artifact_info).
ROOTFS_POSTPROCESS_COMMAND:append = " pyupdate_artifact_info"
pyupdate_artifact_info() {
    install -d ${IMAGE_ROOTFS}${sysconfdir}/pyupdate
    printf 'artifact_name=%s\n' '${PYUPDATE_ARTIFACT_NAME}' > ${IMAGE_ROOTFS}${sysconfdir}/pyupdate/artifact_info
    printf 'device_type=%s\n' '${PYUPDATE_DEVICE_TYPE}' > ${IMAGE_ROOTFS}${sysconfdir}/pyupdate/device_type
}

IMAGE_CMD:pyupdate() {
    rootfs="${IMGDEPLOYDIR}/${IMAGE_NAME}.ext4"
    slot_bytes=$(expr ${PYUPDATE_ROOTFS_PART_SIZE_MB} \* 1048576)
    size=$(stat -L -c %s "$rootfs")
    if [ "$size" -gt "$slot_bytes" ]; then
        bbfatal "PYUPDATE_ROOTFS_PART_SIZE_MB: the rootfs is $size bytes, the slot ${PYUPDATE_ROOTFS_PART_SIZE_MB} MiB; raise it (or PYUPDATE_STORAGE_TOTAL_SIZE_MB)"
    fi
    set -- write rootfs-image -f "$rootfs" -n "${PYUPDATE_ARTIFACT_NAME}" \
        -o "${IMGDEPLOYDIR}/${IMAGE_NAME}.mender" \
        --compression ${PYUPDATE_ARTIFACT_COMPRESSION}
    for t in ${PYUPDATE_DEVICE_TYPES_COMPATIBLE}; do set -- "$@" -t "$t"; done
    for p in ${PYUPDATE_ARTIFACT_PROVIDES}; do set -- "$@" --provides "$p"; done
    for p in ${PYUPDATE_ARTIFACT_DEPENDS}; do set -- "$@" --depends "$p"; done
    if [ -n "${PYUPDATE_ARTIFACT_SIGNING_KEY}" ]; then
        set -- "$@" -k "${PYUPDATE_ARTIFACT_SIGNING_KEY}"
    fi
    pyupdate-artifact "$@" --quiet ${PYUPDATE_ARTIFACT_EXTRA_ARGS}
    # The image type is "pyupdate" but the file keeps Mender's suffix, so the
    # generic per-type link would not find it: make the stable link here.
    ln -sf "${IMAGE_NAME}.mender" "${IMGDEPLOYDIR}/${IMAGE_LINK_NAME}.mender"
}
IMAGE_CMD:pyupdate[vardepsexclude] += "PYUPDATE_ARTIFACT_SIGNING_KEY"
do_image_pyupdate[file-checksums] += "${@'${PYUPDATE_ARTIFACT_SIGNING_KEY}:True' if d.getVar('PYUPDATE_ARTIFACT_SIGNING_KEY') else ''}"

# An artifact name with spaces would break the agent's artifact_info; say so
# when the image recipe is parsed.
# nooelint: oelint.task.noanonpython - the name check must stop parsing, before any task runs
python () {
    name = d.getVar('PYUPDATE_ARTIFACT_NAME') or ''
    if 'pyupdate' in (d.getVar('IMAGE_FSTYPES') or '').split() and (not name or any(c.isspace() for c in name)):
        bb.fatal("meta-pyupdate: PYUPDATE_ARTIFACT_NAME: %r must be one word, without spaces" % name)
}
