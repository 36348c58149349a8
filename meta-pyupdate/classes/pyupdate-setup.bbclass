# pyupdate-setup.bbclass: every PYUPDATE_* variable, with its default, in one place.
#
# Pattern (meta-mender's mender-setup.bbclass): <name>_DEFAULT holds the
# default, <name> ??= "${<name>_DEFAULT}" lets local.conf, a distro or
# a machine config override it with a plain `=` or `?=`. The same list, with
# types and examples, is the table in docs/yocto.md; conf/pyupdate-vars.json
# holds the names, and any other PYUPDATE_* name stops the build (a typo would
# otherwise be ignored silently).
#
# Inherited by pyupdate-full; inherit it alone to get only the variables and
# the checks.

# --- features ---------------------------------------------------------------
# As meta-mender's MENDER_FEATURES_ENABLE/DISABLE: pyupdate-full appends every
# feature to PYUPDATE_FEATURES_ENABLE; take one out with
# PYUPDATE_FEATURES_DISABLE += "<feature>". The features, one line each, are in
# lib/pyupdate_layer/features.py and docs/yocto.md: pyupdate-agent,
# pyupdate-uboot, pyupdate-image, pyupdate-artifact, pyupdate-systemd.

# Features to turn on (pyupdate-full appends all of them).
PYUPDATE_FEATURES_ENABLE_DEFAULT = ""
PYUPDATE_FEATURES_ENABLE ??= "${PYUPDATE_FEATURES_ENABLE_DEFAULT}"

# Features to turn off again; wins over PYUPDATE_FEATURES_ENABLE.
PYUPDATE_FEATURES_DISABLE_DEFAULT = ""
PYUPDATE_FEATURES_DISABLE ??= "${PYUPDATE_FEATURES_DISABLE_DEFAULT}"

# What is on: ENABLE minus DISABLE. Read it, do not set it.
PYUPDATE_FEATURES = "${@pyupdate_layer.features.enabled(d.getVar)}"

# `yes` when the feature is on, else `no`: for ${@...} in classes and bbappends.
def pyupdate_feature(feature, yes, no, d):
    return yes if feature in (d.getVar('PYUPDATE_FEATURES') or '').split() else no

# --- device identity --------------------------------------------------------

# device_type written into /etc/pyupdate/device_type and into the artifact
# header. One word: Mender compares it byte for byte.
PYUPDATE_DEVICE_TYPE_DEFAULT = "${MACHINE}"
PYUPDATE_DEVICE_TYPE ??= "${PYUPDATE_DEVICE_TYPE_DEFAULT}"

# Device types the artifact may be installed on (artifact -t, repeated).
PYUPDATE_DEVICE_TYPES_COMPATIBLE_DEFAULT = "${PYUPDATE_DEVICE_TYPE}"
PYUPDATE_DEVICE_TYPES_COMPATIBLE ??= "${PYUPDATE_DEVICE_TYPES_COMPATIBLE_DEFAULT}"

# --- the artifact -----------------------------------------------------------

# Name of the artifact; also written into the image as the running artifact
# (/etc/pyupdate/artifact_info), so each release must get a new one.
PYUPDATE_ARTIFACT_NAME_DEFAULT = "${IMAGE_BASENAME}-${DISTRO_VERSION}"
PYUPDATE_ARTIFACT_NAME ??= "${PYUPDATE_ARTIFACT_NAME_DEFAULT}"

# Extra provides of the artifact (--provides KEY:VALUE), space-separated.
PYUPDATE_ARTIFACT_PROVIDES_DEFAULT = ""
PYUPDATE_ARTIFACT_PROVIDES ??= "${PYUPDATE_ARTIFACT_PROVIDES_DEFAULT}"

# Depends of the artifact (--depends KEY:VALUE): what the device must
# already provide, e.g. rootfs-image.version:1.2 for a delta.
PYUPDATE_ARTIFACT_DEPENDS_DEFAULT = ""
PYUPDATE_ARTIFACT_DEPENDS ??= "${PYUPDATE_ARTIFACT_DEPENDS_DEFAULT}"

# Payload compression: gzip (Mender's default), lzma, zstd or none.
PYUPDATE_ARTIFACT_COMPRESSION_DEFAULT = "gzip"
PYUPDATE_ARTIFACT_COMPRESSION ??= "${PYUPDATE_ARTIFACT_COMPRESSION_DEFAULT}"

# Anything else for `pyupdate-artifact write rootfs-image`.
PYUPDATE_ARTIFACT_EXTRA_ARGS_DEFAULT = ""
PYUPDATE_ARTIFACT_EXTRA_ARGS ??= "${PYUPDATE_ARTIFACT_EXTRA_ARGS_DEFAULT}"

# PEM private key (RSA or ECDSA) that signs the artifact; empty: unsigned.
# An absolute path on the build host; it is read, never copied into the image.
PYUPDATE_ARTIFACT_SIGNING_KEY_DEFAULT = ""
PYUPDATE_ARTIFACT_SIGNING_KEY ??= "${PYUPDATE_ARTIFACT_SIGNING_KEY_DEFAULT}"

# "1": a build without PYUPDATE_ARTIFACT_SIGNING_KEY stops at parse time.
# Set it in release builds so an unsigned artifact can never be shipped.
PYUPDATE_SIGNING_REQUIRED_DEFAULT = "0"
PYUPDATE_SIGNING_REQUIRED ??= "${PYUPDATE_SIGNING_REQUIRED_DEFAULT}"

# PEM public key installed as /etc/pyupdate/artifact-verify-key.pem; when set,
# the agent refuses unsigned artifacts.
PYUPDATE_ARTIFACT_VERIFY_KEY_DEFAULT = ""
PYUPDATE_ARTIFACT_VERIFY_KEY ??= "${PYUPDATE_ARTIFACT_VERIFY_KEY_DEFAULT}"

# --- the agent --------------------------------------------------------------

# Server the agent polls (ServerURL); empty: standalone mode (pyupdate install):
# the systemd unit is then installed but not enabled, since the daemon has
# nothing to poll.
PYUPDATE_SERVER_URL_DEFAULT = ""
PYUPDATE_SERVER_URL ??= "${PYUPDATE_SERVER_URL_DEFAULT}"

# PEM certificate (or CA) of the server, for a self-signed https server;
# installed as /etc/pyupdate/server.crt (ServerCertificate). Empty: the
# system's CA store.
PYUPDATE_SERVER_CERT_DEFAULT = ""
PYUPDATE_SERVER_CERT ??= "${PYUPDATE_SERVER_CERT_DEFAULT}"

# TenantToken sent with the auth request (Mender's hosted servers); empty: none.
PYUPDATE_TENANT_TOKEN_DEFAULT = ""
PYUPDATE_TENANT_TOKEN ??= "${PYUPDATE_TENANT_TOKEN_DEFAULT}"

# Seconds between update checks (managed mode).
PYUPDATE_UPDATE_POLL_INTERVAL_DEFAULT = "1800"
PYUPDATE_UPDATE_POLL_INTERVAL ??= "${PYUPDATE_UPDATE_POLL_INTERVAL_DEFAULT}"

# Seconds between inventory uploads.
PYUPDATE_INVENTORY_POLL_INTERVAL_DEFAULT = "28800"
PYUPDATE_INVENTORY_POLL_INTERVAL ??= "${PYUPDATE_INVENTORY_POLL_INTERVAL_DEFAULT}"

# --- images -----------------------------------------------------------------

# "1" in an image recipe (or PYUPDATE_UPDATABLE_IMAGE:pn-<image> = "1" in
# local.conf): this image gets the A/B disk and the artifact. Same as
# `inherit pyupdate-image` in the recipe. Never set it for an initramfs.
PYUPDATE_UPDATABLE_IMAGE_DEFAULT = "0"
PYUPDATE_UPDATABLE_IMAGE ??= "${PYUPDATE_UPDATABLE_IMAGE_DEFAULT}"

# The wks of the A/B disk. A BSP's own WKS_FILE describes a disk without
# slots, so updatable images use this one; the BSP's boot files
# (IMAGE_BOOT_FILES) still go into its boot partition. Your own wks must keep
# the partition numbers 1 boot, 2 rootfs A, 3 rootfs B, 4 data.
PYUPDATE_WKS_FILE_DEFAULT = "pyupdate-ab.wks.in"
PYUPDATE_WKS_FILE ??= "${PYUPDATE_WKS_FILE_DEFAULT}"

# --- storage and partitions -------------------------------------------------

# The whole disk as Linux names it. Partitions are fixed: 1 boot, 2 rootfs A,
# 3 rootfs B, 4 data.
PYUPDATE_STORAGE_DEVICE_DEFAULT = "/dev/vda"
PYUPDATE_STORAGE_DEVICE ??= "${PYUPDATE_STORAGE_DEVICE_DEFAULT}"

# Between the disk and a partition number: "p" for /dev/mmcblk0p2.
PYUPDATE_STORAGE_PART_SEPARATOR_DEFAULT = ""
PYUPDATE_STORAGE_PART_SEPARATOR ??= "${PYUPDATE_STORAGE_PART_SEPARATOR_DEFAULT}"

# Size of the storage the disk image must fit, in MiB.
PYUPDATE_STORAGE_TOTAL_SIZE_MB_DEFAULT = "1024"
PYUPDATE_STORAGE_TOTAL_SIZE_MB ??= "${PYUPDATE_STORAGE_TOTAL_SIZE_MB_DEFAULT}"

# Every partition starts on this boundary (MiB); 1 suits eMMC and SD cards.
PYUPDATE_PARTITION_ALIGNMENT_MB_DEFAULT = "1"
PYUPDATE_PARTITION_ALIGNMENT_MB ??= "${PYUPDATE_PARTITION_ALIGNMENT_MB_DEFAULT}"

# Boot partition (FAT): boot.scr and the two env files.
PYUPDATE_BOOT_PART_SIZE_MB_DEFAULT = "32"
PYUPDATE_BOOT_PART_SIZE_MB ??= "${PYUPDATE_BOOT_PART_SIZE_MB_DEFAULT}"

# Data partition: survives updates (/data).
PYUPDATE_DATA_PART_SIZE_MB_DEFAULT = "128"
PYUPDATE_DATA_PART_SIZE_MB ??= "${PYUPDATE_DATA_PART_SIZE_MB_DEFAULT}"

# Each rootfs slot: by default what is left of the storage, split in two.
PYUPDATE_ROOTFS_PART_SIZE_MB_DEFAULT = "${@pyupdate_layer.checks.default_rootfs_size(d.getVar)}"
PYUPDATE_ROOTFS_PART_SIZE_MB ??= "${PYUPDATE_ROOTFS_PART_SIZE_MB_DEFAULT}"

# Where Linux mounts the boot partition: the env files live there, and
# fw_env.config points there.
PYUPDATE_BOOT_MOUNT_POINT_DEFAULT = "/boot/uboot"
PYUPDATE_BOOT_MOUNT_POINT ??= "${PYUPDATE_BOOT_MOUNT_POINT_DEFAULT}"

# Where Linux mounts the data partition (LABEL=data in fstab).
PYUPDATE_DATA_MOUNT_POINT_DEFAULT = "/data"
PYUPDATE_DATA_MOUNT_POINT ??= "${PYUPDATE_DATA_MOUNT_POINT_DEFAULT}"

# --- U-Boot environment -----------------------------------------------------

# Size each env copy's CRC covers; must equal U-Boot's CONFIG_ENV_SIZE and
# the size in fw_env.config, or both sides silently fall back to defaults.
PYUPDATE_UBOOT_ENV_SIZE_DEFAULT = "0x4000"
PYUPDATE_UBOOT_ENV_SIZE ??= "${PYUPDATE_UBOOT_ENV_SIZE_DEFAULT}"

# The two redundant env copies: files on the boot partition.
PYUPDATE_UBOOT_ENV_FILES_DEFAULT = "uboot.env uboot-redund.env"
PYUPDATE_UBOOT_ENV_FILES ??= "${PYUPDATE_UBOOT_ENV_FILES_DEFAULT}"

# Offset of each env copy inside its file.
PYUPDATE_UBOOT_ENV_OFFSETS_DEFAULT = "0x0 0x0"
PYUPDATE_UBOOT_ENV_OFFSETS ??= "${PYUPDATE_UBOOT_ENV_OFFSETS_DEFAULT}"

# Variables besides Mender's the boot script writes back after a trial boot
# (it exports a fixed list; a variable Linux sets must be named here).
PYUPDATE_UBOOT_ENV_PERSIST_DEFAULT = ""
PYUPDATE_UBOOT_ENV_PERSIST ??= "${PYUPDATE_UBOOT_ENV_PERSIST_DEFAULT}"

# Trial boots of a new slot before U-Boot falls back to the old one.
PYUPDATE_UBOOT_BOOTLIMIT_DEFAULT = "1"
PYUPDATE_UBOOT_BOOTLIMIT ??= "${PYUPDATE_UBOOT_BOOTLIMIT_DEFAULT}"

# Your own fw_env.config (absolute path); empty: generated by pyupdate-image
# from the PYUPDATE_UBOOT_ENV_* variables. Either way the libubootenv
# bbappend checks it against them (pyupdate-image check-fw-env).
PYUPDATE_FW_ENV_CONFIG_DEFAULT = ""
PYUPDATE_FW_ENV_CONFIG ??= "${PYUPDATE_FW_ENV_CONFIG_DEFAULT}"

# --- U-Boot and the kernel, per architecture --------------------------------
# The values proven under QEMU (artifact_tool's shipped boards). A real board
# sets these in its machine config.

# U-Boot block interface of the storage (virtio, mmc, scsi...).
PYUPDATE_UBOOT_INTERFACE_DEFAULT = "virtio"
PYUPDATE_UBOOT_INTERFACE ??= "${PYUPDATE_UBOOT_INTERFACE_DEFAULT}"

# U-Boot device number of the storage on that interface.
PYUPDATE_UBOOT_DEVICE_DEFAULT = "0"
PYUPDATE_UBOOT_DEVICE ??= "${PYUPDATE_UBOOT_DEVICE_DEFAULT}"

# How U-Boot starts the kernel: zboot (x86), booti (arm64), bootz (arm).
PYUPDATE_UBOOT_BOOT_COMMAND_DEFAULT = "bootz"
PYUPDATE_UBOOT_BOOT_COMMAND_DEFAULT:x86-64 = "zboot"
PYUPDATE_UBOOT_BOOT_COMMAND_DEFAULT:aarch64 = "booti"
PYUPDATE_UBOOT_BOOT_COMMAND ??= "${PYUPDATE_UBOOT_BOOT_COMMAND_DEFAULT}"

# mkimage -A for boot.scr, U-Boot's name for TARGET_ARCH (x86_64 -> x86,
# aarch64 -> arm64), mapped as kernel-arch.bbclass maps UBOOT_ARCH. Not
# ${UBOOT_ARCH} itself: only recipes that inherit kernel-arch define it, and
# libubootenv does not. An unknown TARGET_ARCH stops the build at parse time.
PYUPDATE_UBOOT_MKIMAGE_ARCH_DEFAULT = "${@pyupdate_layer.board.mkimage_arch(d.getVar('TARGET_ARCH') or '')}"
PYUPDATE_UBOOT_MKIMAGE_ARCH ??= "${PYUPDATE_UBOOT_MKIMAGE_ARCH_DEFAULT}"

# kernel_addr_r; empty: U-Boot's own.
PYUPDATE_UBOOT_KERNEL_ADDR_DEFAULT = ""
PYUPDATE_UBOOT_KERNEL_ADDR_DEFAULT:aarch64 = "0x40400000"
PYUPDATE_UBOOT_KERNEL_ADDR ??= "${PYUPDATE_UBOOT_KERNEL_ADDR_DEFAULT}"

# ramdisk_addr_r: where an initramfs would be loaded.
PYUPDATE_UBOOT_RAMDISK_ADDR_DEFAULT = "0x10000000"
PYUPDATE_UBOOT_RAMDISK_ADDR_DEFAULT:aarch64 = "0x44000000"
PYUPDATE_UBOOT_RAMDISK_ADDR ??= "${PYUPDATE_UBOOT_RAMDISK_ADDR_DEFAULT}"

# RAM the boot script uses for its env buffers (4 x env size).
PYUPDATE_UBOOT_SCRATCH_ADDR_DEFAULT = "0x7100000"
PYUPDATE_UBOOT_SCRATCH_ADDR_DEFAULT:aarch64 = "0x4f000000"
PYUPDATE_UBOOT_SCRATCH_ADDR ??= "${PYUPDATE_UBOOT_SCRATCH_ADDR_DEFAULT}"

# The kernel inside each rootfs slot (kernel-image installs it in /boot).
PYUPDATE_KERNEL_IMAGE_DEFAULT = "/boot/${KERNEL_IMAGETYPE}"
PYUPDATE_KERNEL_IMAGE ??= "${PYUPDATE_KERNEL_IMAGE_DEFAULT}"

# Kernel command line after the root= the boot script adds; the console
# comes from the first SERIAL_CONSOLES entry.
PYUPDATE_KERNEL_BOOTARGS_DEFAULT = "rw ${@pyupdate_layer.board.console_bootarg(d.getVar('SERIAL_CONSOLES') or '')} panic=5"
PYUPDATE_KERNEL_BOOTARGS ??= "${PYUPDATE_KERNEL_BOOTARGS_DEFAULT}"

# --- internal ---------------------------------------------------------------

# This repo's checkout: the recipes build agent/ and artifact_tool/ from it.
# Default: the directory that holds meta-pyupdate/. Point it elsewhere to
# build from another checkout (it is a file:// SRC_URI, so nothing is fetched).
PYUPDATE_SRC_DIR_DEFAULT = "${@os.path.dirname(d.getVar('PYUPDATE_LAYERDIR'))}"
PYUPDATE_SRC_DIR ??= "${PYUPDATE_SRC_DIR_DEFAULT}"

# The pyupdate-image board config written from the variables above, per recipe.
PYUPDATE_BOARD_FILE = "${WORKDIR}/pyupdate-board.json"

# What the u-boot bbappend deploys for the boot partition (IMAGE_BOOT_FILES).
PYUPDATE_IMAGE_BOOT_FILES = "boot.scr ${PYUPDATE_UBOOT_ENV_FILES}"

# Write the board config; tasks that run pyupdate-image list this in prefuncs.
python pyupdate_write_board() {
    import pyupdate_layer.board
    pyupdate_layer.board.write_board(d.getVar, d.getVar('PYUPDATE_BOARD_FILE'))
}
pyupdate_write_board[vardeps] += "${@' '.join(sorted(pyupdate_layer.checks.known_variables(d.expand('${PYUPDATE_LAYERDIR}/conf/pyupdate-vars.json'))))}"
pyupdate_write_board[vardepsexclude] += "PYUPDATE_BOARD_FILE PYUPDATE_LAYERDIR PYUPDATE_SRC_DIR"

# The u-boot bbappend's do_compile prefunc: U-Boot's resolved .config (one per
# UBOOT_CONFIG entry) against
# PYUPDATE_UBOOT_ENV_SIZE: a BSP U-Boot that still keeps its own env must use
# the same size, or U-Boot and fw_setenv each see the other's env as corrupt.
python pyupdate_check_uboot_config() {
    import glob
    import pyupdate_layer.checks
    builddir = d.getVar('B')
    for config in sorted(glob.glob(os.path.join(builddir, '.config')) + glob.glob(os.path.join(builddir, '*', '.config'))):
        with open(config, encoding='utf-8', errors='replace') as f:
            problem = pyupdate_layer.checks.uboot_config_problem(f.read(), d.getVar('PYUPDATE_UBOOT_ENV_SIZE'), os.path.relpath(config, builddir))
        if problem:
            bb.fatal("meta-pyupdate: " + problem)
}

# Check the configuration once, when it is parsed: one line naming the
# variable, before any recipe is parsed or task runs.
addhandler pyupdate_check_config
pyupdate_check_config[eventmask] = "bb.event.ConfigParsed"
python pyupdate_check_config() {
    import pyupdate_layer.checks as checks
    data = e.data
    known = checks.known_variables(data.expand('${PYUPDATE_LAYERDIR}/conf/pyupdate-vars.json'))
    problem = checks.check(data.getVar, known, data.keys())
    if problem:
        bb.fatal("meta-pyupdate: " + problem)
    if 'pyupdate-systemd' in data.getVar('PYUPDATE_FEATURES').split() and not data.getVar('PYUPDATE_SERVER_URL'):
        bb.note("meta-pyupdate: PYUPDATE_SERVER_URL is empty: standalone mode, pyupdate.service "
                "is installed but not enabled (set PYUPDATE_SERVER_URL for managed mode)")
}
