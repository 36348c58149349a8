#!/bin/busybox sh
# shellcheck shell=dash
# PID 1 of the tiny (no systemd) test rootfs, used where the rootfs is unpacked
# from Debian packages without running them (arm64 here: no binfmt, so no
# maintainer scripts). It does what the systemd image's units do for the tests:
# mounts, loopback and the QEMU user network, then a root shell on the serial
# console, started again whenever it exits. PID 1 must never exit: that panics.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/run/busybox
export HOME=/root TERM=vt100
# The prompt the harness waits for (pyupdate_host/qemutest/machine.py LOGIN_PROMPT), as in the systemd image.
export PS1='root@pyupdate:\w# '
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
# the initramfs moved its devtmpfs here; mount one only when booted without it
$bb grep -q " /dev devtmpfs " /proc/mounts || $bb mount -t devtmpfs devtmpfs /dev
$bb mkdir -p /dev/pts && $bb mount -t devpts devpts /dev/pts
$bb mount -t tmpfs -o mode=0755 tmpfs /run
$bb mount -t tmpfs -o mode=1777 tmpfs /tmp
# Applets go to a tmpfs so the slot's filesystem stays as the image tool made it;
# the packages' own tools (findmnt, mount, fw_printenv) come first on PATH.
$bb mkdir -p /run/busybox && $bb --install -s /run/busybox
$bb hostname -F /etc/hostname
# /etc/fstab (written by pyupdate-image): the env partition and /data.
mount -a || echo "tiny-init: mount -a failed" >/dev/console
mkdir -p /data/pyupdate
$bb ip link set lo up
# QEMU user networking, static as in the systemd image: the host is 10.0.2.2.
if [ -e /sys/class/net/eth0 ]; then
    $bb ip link set eth0 up
    $bb ip addr add 10.0.2.15/24 dev eth0
    $bb ip route add default via 10.0.2.2
fi
console=$($bb sed -n 's/.*console=\([^, ]*\).*/\1/p' /proc/cmdline)
console=/dev/${console:-console}
# busybox's reboot applet (which its shell runs in preference to /usr/local/sbin/reboot)
# asks PID 1 with SIGTERM, as with sysvinit: do the clean reset here.
trap 'exec /usr/local/sbin/reboot' TERM
echo "tiny-init: up, shell on $console"
while :; do
    # setsid + open the tty: the shell gets it as its controlling terminal (job control, stty).
    # In the background, so that `wait` returns for the trap as soon as SIGTERM comes.
    $bb setsid $bb sh -c "exec $bb sh -i <$console >$console 2>&1" &
    wait $!
    $bb sleep 1
done
