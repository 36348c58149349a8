# pyupdate-full.bbclass: the one-line opt-in.
#
#   INHERIT += "pyupdate-full"     (in local.conf or a distro config)
# or add "pyupdate" to DISTRO_FEATURES, which sanity-meta-pyupdate turns into
# the same inherit.
#
# It turns on every feature (PYUPDATE_FEATURES_ENABLE, as meta-mender's
# mender-full does); take one out with PYUPDATE_FEATURES_DISABLE:
#   pyupdate-agent     the agent and its config in updatable images
#   pyupdate-uboot     boot.scr and the redundant env (u-boot bbappend),
#                      /etc/fw_env.config (libubootenv bbappend)
#   pyupdate-image     the A/B wic disk (boot, rootfs A, rootfs B, data), the
#                      fstab lines for boot and data, the kernel in /boot
#   pyupdate-artifact  the signed artifact, IMAGE_FSTYPES "pyupdate"
#   pyupdate-systemd   the agent's unit (enabled with PYUPDATE_SERVER_URL)
# Only images meant to be updated get the disk and the artifact: those that
# `inherit pyupdate-image` (pyupdate-image-minimal does) or set
# PYUPDATE_UPDATABLE_IMAGE = "1" (e.g. PYUPDATE_UPDATABLE_IMAGE:pn-core-image-minimal
# in local.conf). Other images, initramfs ones included, are untouched.
# Variables: pyupdate-setup.bbclass and docs/yocto.md.

inherit pyupdate-setup

PYUPDATE_FEATURES_ENABLE:append = " pyupdate-agent pyupdate-uboot pyupdate-image pyupdate-artifact pyupdate-systemd"

# The bbappends and the image recipe look for this feature; INHERIT alone sets it too.
# nooelint: oelint.vars.outofcontext - pyupdate-full is itself distro-level config (INHERIT)
DISTRO_FEATURES:append = " pyupdate"

# Per image: pyupdate-image.bbclass for the images meant to be updated.
IMAGE_CLASSES:append = " ${@'pyupdate-image' if d.getVar('PYUPDATE_UPDATABLE_IMAGE') == '1' else ''}"

# runqemu: boot the wic disk through U-Boot, not a -kernel direct boot. The
# disk is virtio (/dev/vda, PYUPDATE_STORAGE_DEVICE) and the console the first
# serial port, as in tests/qemu. QEMU machines only; a real board sets nothing here.
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
