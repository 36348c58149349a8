# pyupdate-image.bbclass: an image meant to be updated.
#
#   inherit pyupdate-image        (in the image recipe)
# or, without editing the recipe, in local.conf:
#   PYUPDATE_UPDATABLE_IMAGE:pn-core-image-minimal = "1"
#
# With the features on (pyupdate-full), the image gets:
#   pyupdate-agent     the agent (IMAGE_INSTALL)
#   pyupdate-image     the A/B wic disk from PYUPDATE_WKS_FILE; /etc/fstab lines
#                      for the boot and data partitions in the rootfs itself
#                      (the artifact carries this rootfs: an updated slot must
#                      mount them too); the kernel in /boot of each slot; an
#                      ext4 exactly one slot big
#   pyupdate-uboot     U-Boot's boot.scr and env files added to IMAGE_BOOT_FILES
#                      (after the BSP's own: its firmware stays)
#   pyupdate-artifact  the artifact (IMAGE_FSTYPES "pyupdate")
# Never for an initramfs image: the build stops, naming the variable.

inherit pyupdate-setup pyupdate-artifact

PYUPDATE_UPDATABLE_IMAGE = "1"

IMAGE_INSTALL:append = " ${@pyupdate_feature('pyupdate-agent', 'pyupdate-agent', '', d)}"
IMAGE_INSTALL:append = " ${@pyupdate_feature('pyupdate-image', 'kernel-image', '', d)}"
IMAGE_FSTYPES:append = " ${@pyupdate_feature('pyupdate-image', 'wic', '', d)} ${@pyupdate_feature('pyupdate-artifact', 'pyupdate', '', d)}"

# U-Boot deploys boot.scr and the env files; the BSP's boot files stay first.
EXTRA_IMAGEDEPENDS:append = " ${@pyupdate_feature('pyupdate-uboot', 'u-boot', '', d)}"
IMAGE_BOOT_FILES:append = " ${@pyupdate_feature('pyupdate-uboot', '${PYUPDATE_IMAGE_BOOT_FILES}', '', d)}"

# Our wks uses bootimg_partition and rootfs only: none of oe-core's default
# bootloaders (syslinux, grub-efi, systemd-boot) is needed. `?=`: a BSP or
# local.conf that sets its own list keeps it.
WKS_FILE_DEPENDS ?= "wic-native e2fsprogs-native dosfstools-native mtools-native ${@pyupdate_feature('pyupdate-uboot', 'u-boot', '', d)}"

# The ext4 the artifact carries is exactly one slot, as in the disk image, so
# an update can grow into the whole slot. A bigger IMAGE_ROOTFS_SIZE (e.g. from
# a :pn- override) stops the parse; a rootfs that outgrows the slot stops
# do_image, before wic or the artifact, naming PYUPDATE_ROOTFS_PART_SIZE_MB.
IMAGE_ROOTFS_SIZE = "${@int(d.getVar('PYUPDATE_ROOTFS_PART_SIZE_MB')) * 1024}"
IMAGE_ROOTFS_EXTRA_SPACE = "0"
IMAGE_OVERHEAD_FACTOR = "1.0"

ROOTFS_POSTPROCESS_COMMAND:append = " ${@pyupdate_feature('pyupdate-image', 'pyupdate_rootfs_layout', '', d)}"
# The rootfs has its fstab lines already: wic must not add a second copy to
# its copy of slot A (the imager-wide switch; wic ignores the per-part one).
WIC_CREATE_EXTRA_ARGS:append = " ${@pyupdate_feature('pyupdate-image', '--no-fstab-update', '', d)}"
IMAGE_PREPROCESS_COMMAND:append = " ${@pyupdate_feature('pyupdate-image', 'pyupdate_check_rootfs_fits', '', d)}"

# The boot and data partitions in the rootfs's own /etc/fstab (meta-mender
# writes the same lines through its base-files bbappend): wic adds them only to
# its copy of the partition, never to the ext4 the artifact is made from.
# A line the BSP or base-files already has for the same mount point is
# replaced, not duplicated.
pyupdate_rootfs_layout() {
    fstab=${IMAGE_ROOTFS}${sysconfdir}/fstab
    touch "$fstab"
    for mnt in ${PYUPDATE_BOOT_MOUNT_POINT} ${PYUPDATE_DATA_MOUNT_POINT}; do
        awk -v m="$mnt" '$2 != m' "$fstab" > "$fstab.pyupdate"
        mv "$fstab.pyupdate" "$fstab"
        install -d ${IMAGE_ROOTFS}$mnt
    done
    cat >> "$fstab" <<'PYUPDATE_FSTAB'
${@pyupdate_layer.board.fstab_text(d.getVar)}
PYUPDATE_FSTAB
}

pyupdate_check_rootfs_fits() {
    used=$(du -ks ${IMAGE_ROOTFS} | cut -f1)
    slot=$(expr ${PYUPDATE_ROOTFS_PART_SIZE_MB} \* 1024)
    if [ "$used" -gt "$slot" ]; then
        bbfatal "PYUPDATE_ROOTFS_PART_SIZE_MB: the rootfs holds $used KiB, a slot is $slot KiB (raise PYUPDATE_ROOTFS_PART_SIZE_MB or PYUPDATE_STORAGE_TOTAL_SIZE_MB, or make the image smaller)"
    fi
}

# nooelint: oelint.task.noanonpython - the image checks must stop parsing, before any task runs
python () {
    import pyupdate_layer.checks
    if not d.getVar('PYUPDATE_FEATURES'):
        return
    problem = pyupdate_layer.checks.image_problem(d.getVar)
    if problem:
        bb.fatal("meta-pyupdate: " + problem)
    # A BSP's WKS_FILE (e.g. sdimage-raspberrypi.wks) has no A/B slots: this
    # image uses PYUPDATE_WKS_FILE instead; the BSP's IMAGE_BOOT_FILES stay.
    if 'pyupdate-image' in d.getVar('PYUPDATE_FEATURES').split():
        d.setVar('WKS_FILE', '${PYUPDATE_WKS_FILE}')
        d.setVar('WKS_FILES', '${PYUPDATE_WKS_FILE}')
}
