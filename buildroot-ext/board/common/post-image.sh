#!/bin/sh
# pyupdate post-image: A/B disk image and signed artifact from a rootfs.
#
#   post-image.sh BINARIES_DIR BOARD_DIR
#
# Buildroot calls it through board/<board>/post-image.sh; the QEMU tests call
# the same script on a Debian-built rootfs, so what a Buildroot user runs is
# what CI boots. The boot logic is not here: pyupdate-image renders boot.scr,
# the env and fw_env.config from artifact_tool's templates and writes the slot
# image; genimage only lays out the disk; pyupdate-artifact writes and signs.
#
# Settings: the environment wins over the Buildroot config ($BR2_CONFIG).
#   PYUPDATE_BOARD           board config (.json, or .json.in with @BINARIES_DIR@
#                            and @DEVICE_TYPE@); default BOARD_DIR/pyupdate-board.json.in
#   PYUPDATE_ROOTFS          rootfs: directory, tarball or ext4; default BINARIES_DIR/rootfs.tar
#   PYUPDATE_ARTIFACT_NAME   BR2_PYUPDATE_ARTIFACT_NAME
#   PYUPDATE_DEVICE_TYPE     BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE
#   PYUPDATE_SIGNING_KEY     BR2_PYUPDATE_ARTIFACT_SIGNING_KEY (empty: unsigned)
#   PYUPDATE_SIGNING_REQUIRED BR2_PYUPDATE_SIGNING_REQUIRED (y: refuse unsigned)
#   GENIMAGE_CFG             default BOARD_DIR/genimage.cfg
# Output in BINARIES_DIR: disk.img, <name>.mender, pyupdate/ (boot.scr, env
# images, fw_env.config, rootfs.ext4, the board config used).
set -eu

die() {
	echo "post-image.sh: $*" >&2
	exit 2
}

[ "$#" -ge 2 ] || die "usage: post-image.sh BINARIES_DIR BOARD_DIR"
BINARIES_DIR=$1
BOARD_DIR=$2
[ -d "$BINARIES_DIR" ] || die "BINARIES_DIR: $BINARIES_DIR: not a directory"
[ -d "$BOARD_DIR" ] || die "BOARD_DIR: $BOARD_DIR: not a directory"

# Buildroot's .config is shell syntax; read the options this script uses.
br_option() {
	[ -n "${BR2_CONFIG:-}" ] && [ -r "$BR2_CONFIG" ] || return 0
	sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}\$/\1/p" "$BR2_CONFIG"
}

board=${PYUPDATE_BOARD:-$BOARD_DIR/pyupdate-board.json.in}
rootfs=${PYUPDATE_ROOTFS:-$BINARIES_DIR/rootfs.tar}
name=${PYUPDATE_ARTIFACT_NAME:-$(br_option BR2_PYUPDATE_ARTIFACT_NAME)}
device_type=${PYUPDATE_DEVICE_TYPE:-$(br_option BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE)}
key=${PYUPDATE_SIGNING_KEY:-$(br_option BR2_PYUPDATE_ARTIFACT_SIGNING_KEY)}
signing_required=${PYUPDATE_SIGNING_REQUIRED:-$(br_option BR2_PYUPDATE_SIGNING_REQUIRED)}
genimage_cfg=${GENIMAGE_CFG:-$BOARD_DIR/genimage.cfg}
out=$BINARIES_DIR/pyupdate

case "$name" in
	"" | *[[:space:]]*) die "PYUPDATE_ARTIFACT_NAME: '$name' must be one word, without spaces" ;;
esac
if [ -n "$key" ] && [ ! -f "$key" ]; then
	die "PYUPDATE_SIGNING_KEY: $key: file not found"
fi
if [ -z "$key" ] && [ "$signing_required" = "y" ]; then
	die "PYUPDATE_SIGNING_KEY: not set, and signing is required (BR2_PYUPDATE_SIGNING_REQUIRED)"
fi
[ -f "$board" ] || die "PYUPDATE_BOARD: $board: file not found"
[ -f "$genimage_cfg" ] || die "GENIMAGE_CFG: $genimage_cfg: file not found"
[ -e "$rootfs" ] || die "PYUPDATE_ROOTFS: $rootfs: not found (enable BR2_TARGET_ROOTFS_TAR)"

rm -rf "$out"
mkdir -p "$out"

# The board config: a template gets this build's paths and device type.
case "$board" in
	*.in)
		case "$device_type" in
			"" | *[[:space:]]*) die "PYUPDATE_DEVICE_TYPE: '$device_type' must be one word, without spaces" ;;
		esac
		sed -e "s|@BINARIES_DIR@|$BINARIES_DIR|g" -e "s|@DEVICE_TYPE@|$device_type|g" \
			"$board" > "$out/board.json"
		;;
	*) cp "$board" "$out/board.json" ;;
esac
board=$out/board.json
pyupdate-image check-board --board "$board" > /dev/null

# Everything genimage.cfg needs from the board config, so the disk layout
# cannot drift from what pyupdate-image and the boot script expect.
board_value() {
	python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
v = c
for k in sys.argv[2].split("."):
    v = v.get(k, {}) if isinstance(v, dict) else {}
print(v if v != {} else sys.argv[3])' "$board" "$1" "$2"
}
device_type=$(board_value device_type "")
PYUPDATE_ALIGN_MIB=$(board_value partitions.align_mib 1)
PYUPDATE_BOOT_MIB=$(board_value partitions.boot_mib 32)
PYUPDATE_DATA_MIB=$(board_value partitions.data_mib 64)
PYUPDATE_DATA_LABEL=$(board_value data.label data)
export PYUPDATE_ALIGN_MIB PYUPDATE_BOOT_MIB PYUPDATE_DATA_MIB PYUPDATE_DATA_LABEL

pyupdate-image boot-script --board "$board" --out "$out" > /dev/null
pyupdate-image env-image --board "$board" --out "$out" > /dev/null
pyupdate-image slot --board "$board" --rootfs "$rootfs" --name "$name" \
	--out "$out/rootfs.ext4" > /dev/null

tmp=$(mktemp -d "$BINARIES_DIR/.genimage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The only content genimage takes from its root: the data partition's
# pyupdate/ (the agent's data dir, /var/lib/pyupdate -> /data/pyupdate).
mkdir -p "$tmp/root/data/pyupdate"
chmod 0700 "$tmp/root/data/pyupdate"
# The bootstrap artifact: the agent's first start records its provides, the slot
# image's checksum among them, so a delta can be the device's first update.
set -- write bootstrap-artifact -n "$name" -t "$device_type" \
	-p "rootfs-image.version:$name" \
	-p "rootfs-image.checksum:$(sha256sum "$out/rootfs.ext4" | cut -d' ' -f1)" \
	-o "$tmp/root/data/pyupdate/bootstrap.mender" --quiet
if [ -n "$key" ]; then
	set -- "$@" -k "$key"
fi
pyupdate-artifact "$@"
rm -f "$BINARIES_DIR/disk.img"
genimage --rootpath "$tmp/root" --tmppath "$tmp/genimage" --inputpath "$out" \
	--outputpath "$out" --config "$genimage_cfg" 2> "$tmp/genimage.log" || {
	tail -n 1 "$tmp/genimage.log" >&2
	die "genimage failed with $genimage_cfg"
}
mv "$out/disk.img" "$BINARIES_DIR/disk.img"

set -- write rootfs-image -f "$out/rootfs.ext4" -n "$name" -t "$device_type" \
	-o "$BINARIES_DIR/$name.mender.tmp" --quiet
if [ -n "$key" ]; then
	set -- "$@" -k "$key"
fi
pyupdate-artifact "$@"
mv "$BINARIES_DIR/$name.mender.tmp" "$BINARIES_DIR/$name.mender"
echo "$BINARIES_DIR/disk.img"
echo "$BINARIES_DIR/$name.mender"
