# pyupdate-full.bbclass: the one-line opt-in.
#
#   INHERIT += "pyupdate-full"     (in local.conf or a distro config)
# or add "pyupdate" to DISTRO_FEATURES, which sanity-meta-pyupdate turns into
# the same inherit.
#
# What it turns on, each piece gated so that a build without the opt-in is
# untouched:
#   - the agent (pyupdate-agent) and its systemd unit in every image;
#   - /etc/fw_env.config through the libubootenv bbappend;
#   - boot.scr and the initial redundant env through the u-boot bbappend, both
#     rendered by pyupdate-image-native from artifact_tool's templates;
#   - an A/B disk image: wic with wic/pyupdate-ab.wks.in (boot, rootfs A,
#     rootfs B, data), the kernel installed in /boot of each slot;
#   - the signed artifact as the IMAGE_FSTYPES entry "pyupdate"
#     (pyupdate-artifact.bbclass, written by pyupdate-artifact-native).
# Variables: pyupdate-setup.bbclass and docs/yocto.md.

inherit pyupdate-setup

# The bbappends look for this feature; INHERIT alone sets it too.
# nooelint: oelint.vars.outofcontext - pyupdate-full is itself distro-level config (INHERIT)
DISTRO_FEATURES:append = " pyupdate"

# U-Boot is the bootloader of the A/B scheme; the kernel lives in each slot.
EXTRA_IMAGEDEPENDS:append = " u-boot"
IMAGE_INSTALL:append = " pyupdate-agent kernel-image"
IMAGE_CLASSES:append = " pyupdate-artifact"

# The disk image and the artifact.
IMAGE_FSTYPES:append = " wic pyupdate"
WKS_FILE = "pyupdate-ab.wks.in"
WKS_FILE_DEPENDS:append = " u-boot"
IMAGE_BOOT_FILES = "${PYUPDATE_IMAGE_BOOT_FILES}"

# runqemu: boot the wic disk through U-Boot, not a -kernel direct boot. The
# disk is virtio (/dev/vda, PYUPDATE_STORAGE_DEVICE) and the console the first
# serial port, as in tests/qemu.
QB_DEFAULT_KERNEL:qemuall = "none"
QB_DEFAULT_FSTYPE:qemuall = "wic"
QB_DRIVE_TYPE:qemuall = "/dev/vd"
QB_DEFAULT_BIOS:qemuarm64 = "u-boot.bin"

# qemux86-64: U-Boot's 32-bit qemu-x86 build, the u-boot.rom tests/qemu boots
# (artifact_tool's qemu-x86_64 board). oe-core's default, qemu-x86_64_defconfig,
# triple-faults in zboot. The `?=` lets local.conf set the same overrides.
UBOOT_MACHINE:qemux86-64 ?= "qemu-x86_defconfig"
UBOOT_BINARY:qemux86-64 ?= "u-boot.rom"
QB_DEFAULT_BIOS:qemux86-64 = "${UBOOT_BINARY}"
# i440fx (-machine pc), the board qemu-x86's device tree describes and the one
# tests/qemu uses. oe-core's q35 boots too, but U-Boot scans its AHCI ports
# first (+3 s with U-Boot 2026.01, +11 s with 2023.01) and finds no MAC for
# q35's e1000e; docs/layer-checks.md has the measurements. The CPU stays
# oe-core's: the userland is built for x86-64-v3.
QB_MACHINE:qemux86-64 ?= "-machine pc"
QB_CPU:qemux86-64 ?= "-cpu Skylake-Client"
QB_CPU_KVM:qemux86-64 ?= "-cpu Skylake-Client"
# qemu-x86_defconfig has CONFIG_MAX_CPUS=2. With oe-core's -smp 4, U-Boot
# 2026.01 said "MP init failure" and reset at "Starting kernel" in 4 of 12
# boots; during a trial boot that reset counts as a failed boot.
QB_SMP:qemux86-64 ?= "-smp 2"

# The ext4 the artifact carries is exactly one slot, as in the disk image, so
# an update can grow into the whole slot; the artifact class stops the build
# when the rootfs does not fit (naming PYUPDATE_ROOTFS_PART_SIZE_MB).
IMAGE_ROOTFS_SIZE = "${@int(d.getVar('PYUPDATE_ROOTFS_PART_SIZE_MB')) * 1024}"
IMAGE_ROOTFS_EXTRA_SPACE = "0"
IMAGE_OVERHEAD_FACTOR = "1.0"
