#!/bin/sh
# mmdebstrap --customize-hook for the QEMU test rootfs. Runs on the host with the
# rootfs at "$1"; it never chroots, so it also works for a foreign architecture.
# Usage: customize-rootfs.sh ROOTFS CONSOLE (ttyS0 or ttyAMA0)
set -eu
root=$1
console=$2

echo pyupdate > "$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 pyupdate\n' > "$root/etc/hosts"

# Serial autologin: the harness talks to a root shell on the console.
mkdir -p "$root/etc/systemd/system/serial-getty@.service.d"
cat > "$root/etc/systemd/system/serial-getty@.service.d/autologin.conf" <<EOT
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %I \$TERM
EOT
ln -sf /lib/systemd/system/serial-getty@.service \
    "$root/etc/systemd/system/getty.target.wants/serial-getty@$console.service"

# Nothing periodic and nothing that waits for the network: boots stay short and repeatable.
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer dpkg-db-backup.timer systemd-timesyncd.service man-db.timer \
    systemd-networkd-wait-online.service getty@tty1.service systemd-journal-flush.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done

# QEMU user networking, static: the host is 10.0.2.2, no DHCP wait.
mkdir -p "$root/etc/systemd/network" "$root/etc/systemd/system/multi-user.target.wants"
cat > "$root/etc/systemd/network/10-qemu.network" <<EOT
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
EOT
ln -sf /lib/systemd/system/systemd-networkd.service \
    "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"

# Mount points for the env (FAT) and data partitions; the agent's state lives on
# the data partition so it survives a slot switch (as Mender's /var/lib/mender -> /data/mender).
mkdir -p "$root/boot/uboot" "$root/data" "$root/var/lib"
rm -rf "$root/var/lib/pyupdate"
ln -s /data/pyupdate "$root/var/lib/pyupdate"

# A plain prompt without bracketed paste escapes for pexpect.
cat >> "$root/root/.bashrc" <<'EOT'
bind 'set enable-bracketed-paste off' 2>/dev/null
PS1='root@pyupdate:\w# '
EOT
