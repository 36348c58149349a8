#!/bin/bash
# Build buildroot-ext's defconfig for one board with the real Buildroot,
# offline: sources come from the package registries (fill_downloads.py).
#
#   ci/buildroot/build.sh BOARD BUILDROOT_DIR [WORK_DIR]
#
# BOARD is qemu-x86_64 or qemu-aarch64; BUILDROOT_DIR a Buildroot 2026.05.x
# tree (never written to); WORK_DIR (default build/buildroot) gets dl/, the
# substituted sources, BOARD/ (the O= dir) and BOARD.log. Progress: one line
# per package step on a terminal, the whole log in WORK_DIR/BOARD.log.
# Output: WORK_DIR/BOARD-release-1/ (disk.img, U-Boot, the board config, the
# signed artifact and its key pair), WORK_DIR/BOARD-release-2/ (the next
# release's artifact and slot image) and WORK_DIR/BOARD-summary.txt (build
# time, sizes). make buildroot-test runs pyupdate-qemu-test on them.
set -euo pipefail

die() {
	echo "build.sh: $*" >&2
	exit 2
}

[ "$#" -ge 2 ] || die "usage: ci/buildroot/build.sh BOARD BUILDROOT_DIR [WORK_DIR]"
board=$1
buildroot=$(realpath "$2")
repo=$(realpath "$(dirname "$0")/../..")
work=$(realpath -m "${3:-$repo/build/buildroot}")
defconfig=pyupdate_${board//-/_}_defconfig
[ -f "$repo/buildroot-ext/configs/$defconfig" ] ||
	die "BOARD: $board: no buildroot-ext/configs/$defconfig"
if [ ! -f "$buildroot/Makefile" ] || [ ! -d "$buildroot/package" ]; then
	die "BUILDROOT_DIR: $buildroot: not a Buildroot tree"
fi

out=$work/$board
log=$work/$board.log
mkdir -p "$work/dl" "$work/src"
export BR2_DL_DIR=$work/dl
# Buildroot runs as root here (CI containers); GNU tar's configure refuses that.
export FORCE_UNSAFE_CONFIGURE=1
for tool in rsync patch make gcc g++ bzip2 unzip bc cpio file autoreconf; do
	command -v "$tool" > /dev/null || die "host tool missing: $tool (Debian: apt-get install rsync autoconf automake libtool autopoint)"
done
start=$SECONDS
# Buildroot keeps finished packages: a rerun's time is only what was left to build.
if [ -d "$out/build" ]; then build_kind="resumed: only what an earlier run had not finished"; else build_kind="from nothing but the download dir"; fi

echo "configuring $defconfig in $out"
make -s -C "$buildroot" BR2_EXTERNAL="$repo/buildroot-ext" O="$out" "$defconfig" > /dev/null
# Buildroot drops an unknown or unmet option silently: every line must survive.
if dropped=$(grep -vxF -f "$out/.config" "$repo/buildroot-ext/configs/$defconfig"); then
	die "$defconfig: options dropped by Buildroot: $(echo "$dropped" | tr '\n' ' ')"
fi

# A throw-away signing key pair, as a release pipeline would hold its own: the
# device image gets the verify key and refuses unsigned artifacts.
keys=$work/keys
if [ ! -f "$keys/signing-key.pem" ]; then
	mkdir -p "$keys"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/signing-key.pem" 2> /dev/null
	openssl pkey -in "$keys/signing-key.pem" -pubout -out "$keys/verify-key.pem"
fi
set_option() {
	sed -i "/^$1=/d; /^# $1 is not set/d" "$out/.config"
	echo "$1=$2" >> "$out/.config"
}
set_option BR2_PYUPDATE_ARTIFACT_SIGNING_KEY "\"$keys/signing-key.pem\""
set_option BR2_PYUPDATE_ARTIFACT_VERIFY_KEY "\"$keys/verify-key.pem\""
set_option BR2_PYUPDATE_SIGNING_REQUIRED y
set_option BR2_PYUPDATE_ARTIFACT_NAME '"pyupdate-buildroot-1"'

# show-info must list Buildroot's own versions, not a previous run's overrides
rm -f "$out/local.mk"
echo "filling $BR2_DL_DIR (PyPI, Debian sources; substitutes in $work/src)"
python3 "$repo/ci/buildroot/fill_downloads.py" --buildroot "$buildroot" --output "$out" \
	--dl "$BR2_DL_DIR" --work "$work/apt" --substitute "$work/src" > "$work/$board-sources.txt" ||
	die "sources missing: see $work/$board-sources.txt"
cp "$work/src/local.mk" "$out/local.mk"
grep -c '^SUBST' "$work/$board-sources.txt" | sed 's/$/ packages built from substituted sources (see docs\/buildroot.md)/'

build() {
	local rc
	set +e
	if [ -t 1 ]; then
		make -C "$out" 2>&1 | tee -a "$log" | grep --line-buffered '^>>> '
		rc=${PIPESTATUS[0]}
	else
		make -C "$out" >> "$log" 2>&1
		rc=$?
	fi
	set -e
	[ "$rc" -eq 0 ] || die "make failed (rc $rc): $(grep -E 'Error [0-9]|error:' "$log" | tail -n 1 | head -c 300); see $log"
}

echo "building release 1 (log: $log)"
: > "$log"
build
images=$out/images
build_seconds=$((SECONDS - start))
# Release 1 is what the device is flashed with; release 2 is the same build
# with the next artifact name, as the next CI run would make it.
rm -rf "$work/$board-release-1" "$work/$board-release-2"
# release-1/ keeps the layout of output/images/ that pyupdate-qemu-test --images reads.
mkdir -p "$work/$board-release-1/pyupdate" "$work/$board-release-2"
cp --sparse=always "$images/disk.img" "$work/$board-release-1/"
cp "$images"/u-boot.* "$images/pyupdate-buildroot-1.mender" "$work/$board-release-1/"
cp "$images/pyupdate/board.json" "$work/$board-release-1/pyupdate/"
echo "building release 2"
set_option BR2_PYUPDATE_ARTIFACT_NAME '"pyupdate-buildroot-2"'
build
cp "$images/pyupdate-buildroot-2.mender" "$images/pyupdate/rootfs.ext4" "$work/$board-release-2/"
cp "$keys"/*.pem "$work/$board-release-1/"

{
	echo "board: $board"
	echo "build time (release 1, $build_kind): $((build_seconds / 60)) min $((build_seconds % 60)) s"
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo)"
	for f in "$images"/disk.img "$images"/*.mender "$images"/rootfs.tar "$images"/pyupdate/rootfs.ext4 "$images"/u-boot.rom "$images"/bzImage "$images"/Image; do
		[ -e "$f" ] && echo "$(basename "$f"): $(du -k --apparent-size "$f" | cut -f1) KiB"
	done
	echo "target rootfs (du): $(du -sk "$out/target" | cut -f1) KiB"
} > "$work/$board-summary.txt"
cat "$work/$board-summary.txt"
