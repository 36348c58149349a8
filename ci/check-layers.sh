#!/bin/bash
# shellcheck disable=SC2317 # as_bb_user and bitbake_e are called through check()
# Local checks of meta-pyupdate and buildroot-ext with the real bitbake and
# Buildroot (docs/layer-checks.md). Not run in CI: they need snapshots of
# bitbake, openembedded-core and Buildroot, which this script never fetches.
#
#   ci/check-layers.sh SNAPSHOT_DIR [WORK_DIR]
#
# SNAPSHOT_DIR holds bitbake/, openembedded-core/ (real sibling dirs, the
# commits pinned in kas.yml) and buildroot/. bitbake refuses root: as root,
# the bitbake steps run as $BB_USER (default bbuser), which must exist and
# read the repo. Exit status: the number of failed checks. Logs: WORK_DIR/*.log.
set -u

SNAP=$(realpath "${1:?usage: ci/check-layers.sh SNAPSHOT_DIR [WORK_DIR]}")
WORK=$(realpath -m "${2:-/tmp/pyupdate-layer-checks}")
REPO=$(realpath "$(dirname "$0")/..")
BB_USER=${BB_USER:-bbuser}
failed=0

check() {
	local name=$1
	shift
	local start=$SECONDS
	if "$@" > "$WORK/$name.log" 2>&1; then
		echo "PASS $name ($((SECONDS - start)) s)"
	else
		echo "FAIL $name ($((SECONDS - start)) s): $(tail -n 1 "$WORK/$name.log")"
		failed=$((failed + 1))
	fi
}

as_bb_user() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u "$BB_USER" -- bash -c "$1"
	else
		bash -c "$1"
	fi
}

mkdir -p "$WORK"
[ "$(id -u)" -ne 0 ] || chown "$BB_USER" "$WORK"

# --- Yocto ------------------------------------------------------------------
bb_setup() {
	local dir=$1 mask=$2
	cat <<SH
set -e
. "$SNAP/openembedded-core/oe-init-build-env" "$dir" "$SNAP/bitbake" > /dev/null
printf '%s\n' 'MACHINE ?= "qemux86-64"' 'BB_NO_NETWORK = "1"' 'INIT_MANAGER = "systemd"' 'INHERIT += "pyupdate-full"' > conf/local.conf
[ -z "$mask" ] || printf 'BBMASK = "%s"\n' "$mask" >> conf/local.conf
printf 'BBPATH = "\${TOPDIR}"\nBBFILES ?= ""\nBBLAYERS = "%s/openembedded-core/meta %s/meta-pyupdate"\n' "$SNAP" "$REPO" > conf/bblayers.conf
SH
}

fast_mask="^$SNAP/openembedded-core/meta/recipes-[^/]+/[^/]+/(?!(?:u-boot|libubootenv)(?:_[^/]*)?\\\\.bb\$)"
check bitbake-fast-parse as_bb_user "$(bb_setup "$WORK/bb-fast" "$fast_mask"); bitbake -p"
bitbake_e() {
	local recipes r out
	recipes=$(find "$REPO/meta-pyupdate" -name '*.bb' | sort)
	recipes="$recipes $(find "$SNAP/openembedded-core/meta/recipes-bsp/u-boot" -name 'u-boot_*.bb' -o -name 'libubootenv_*.bb')"
	for r in $recipes; do
		out=$WORK/e-$(basename "$r").txt
		as_bb_user "$(bb_setup "$WORK/bb-fast" "$fast_mask"); bitbake -e -b '$r' > '$out'" || return 1
		# bitbake -e does not fail on an expansion error: it writes it into the output
		if grep 'threw' "$out" | grep -v 'IMAGE_CMD:multiubi'; then return 1; fi
	done
}
check bitbake-e bitbake_e
check bitbake-g as_bb_user "$(bb_setup "$WORK/bb-full" ""); bitbake -g pyupdate-image-minimal && grep -qx pyupdate-agent pn-buildlist"

# --- Buildroot --------------------------------------------------------------
# check-package imports python-magic and flake8 (PyPI) and calls shellcheck:
# CHECK_PACKAGE_PYTHON names a python that has both (default python3).
check check-package bash -c "cd '$REPO/buildroot-ext' && '${CHECK_PACKAGE_PYTHON:-python3}' '$SNAP/buildroot/utils/check-package' -b \$(git ls-files --cached --others --exclude-standard)"
for defconfig in "$REPO"/buildroot-ext/configs/*_defconfig; do
	name=$(basename "$defconfig")
	out=$WORK/br-$name
	check "defconfig-$name" bash -c "rm -rf '$out' && make -s -C '$SNAP/buildroot' BR2_EXTERNAL='$REPO/buildroot-ext' O='$out' BR2_DL_DIR='$WORK/dl' $name \
		&& ! grep -vxF -f '$out/.config' '$defconfig'"
	check "show-info-$name" bash -c "make -s -C '$out' show-info > '$out/show-info.json' && python3 -m json.tool '$out/show-info.json' > /dev/null"
done

exit "$failed"
