#!/bin/busybox sh
# Tiny initramfs /init: load the few modules the cloud kernel lacks, mount root=,
# switch_root. If the root cannot be mounted, exiting makes the kernel panic and
# panic=5 resets the machine, which is what drives U-Boot's bootcount.
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do modprobe "$m" 2>/dev/null; done
root=$(sed -n 's/.*root=\([^ ]*\).*/\1/p' /proc/cmdline)
i=0
while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
# `ro` and `rootflags=` as the kernel takes them when it mounts the root itself. A delta
# update needs the slot bit-identical to its image: an ext4 mounted rw rewrites its
# superblock, and even read-only, loading the journal changes the journal's superblock in
# the page cache, where the agent reads its base (hence `ro rootflags=noload`).
opts=rw
for word in $(cat /proc/cmdline); do
    case $word in
        ro) opts=ro${opts#rw} ;;
        rootflags=*) opts=$opts,${word#rootflags=} ;;
    esac
done
echo "initramfs: mounting $root $opts"
# /sbin/init is an absolute symlink into the new root: test the link, not its target here.
if mount -t ext4 -o "$opts" "$root" /newroot && { [ -L /newroot/sbin/init ] || [ -x /newroot/sbin/init ]; }; then
    umount /proc /sys
    mount --move /dev /newroot/dev
    exec switch_root /newroot /sbin/init
fi
echo "initramfs: cannot boot $root"
exit 1
