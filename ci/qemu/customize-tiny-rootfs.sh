#!/bin/sh
# mmdebstrap --extract-hook for the tiny test rootfs (extract variant: packages
# unpacked, none configured). Runs on the host with the rootfs at "$1" and never
# chroots or runs a target binary, so it works for any architecture.
# Usage: customize-tiny-rootfs.sh ROOTFS TINY_INIT REBOOT
set -eu
root=$1
init=$2
reboot=$3

echo pyupdate > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 pyupdate\n' > "$root/etc/hosts"
# What base-passwd's maintainer script would have made, root only.
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
mkdir -p "$root/root" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" \
    "$root/sbin" "$root/usr/local/sbin"
chmod 0700 "$root/root"
[ -e "$root/bin/sh" ] || ln -s busybox "$root/bin/sh"

# The initramfs switch_roots to /sbin/init.
rm -f "$root/sbin/init"
cp "$init" "$root/sbin/init"
chmod 0755 "$root/sbin/init"
cp "$reboot" "$root/usr/local/sbin/reboot"
chmod 0755 "$root/usr/local/sbin/reboot"

# Mount points for the env (FAT) and data partitions; agent state on /data (as the systemd image).
mkdir -p "$root/boot/uboot" "$root/data" "$root/var/lib"
rm -rf "$root/var/lib/pyupdate"
ln -s /data/pyupdate "$root/var/lib/pyupdate"

# Byte-compile what python3's maintainer scripts would have (py3compile), with the
# host's python3.11: .pyc files do not depend on the CPU, and without them every
# fresh disk pays the compile on its first run under TCG (seconds per command).
if [ -d "$root/usr/lib/python3.11" ]; then
    python3.11 -m compileall -q -j 2 -s "$root" -p / \
        "$root/usr/lib/python3.11" "$root/usr/lib/python3/dist-packages" >/dev/null
fi
