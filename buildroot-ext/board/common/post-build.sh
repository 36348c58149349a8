#!/bin/sh
# Mount points the slot's fstab uses (pyupdate-image adds the fstab lines),
# the agent's data dir on the data partition (its state must survive a slot
# switch, as Mender's /var/lib/mender -> /data/mender), and the artifact
# verify key with the agent config entry that enables it.
set -eu

mkdir -p "$TARGET_DIR/boot/uboot" "$TARGET_DIR/data" "$TARGET_DIR/var/lib"
rm -rf "$TARGET_DIR/var/lib/pyupdate"
ln -s /data/pyupdate "$TARGET_DIR/var/lib/pyupdate"

key=${PYUPDATE_VERIFY_KEY:-}
if [ -z "$key" ] && [ -r "${BR2_CONFIG:-}" ]; then
	key=$(sed -n 's/^BR2_PYUPDATE_ARTIFACT_VERIFY_KEY="\(.*\)"$/\1/p' "$BR2_CONFIG")
fi
conf=$TARGET_DIR/etc/pyupdate/pyupdate.conf
if [ -n "$key" ]; then
	[ -f "$key" ] || {
		echo "post-build.sh: BR2_PYUPDATE_ARTIFACT_VERIFY_KEY: $key: file not found" >&2
		exit 2
	}
	install -D -m 0644 "$key" "$TARGET_DIR/etc/pyupdate/artifact-verify-key.pem"
	if [ -f "$conf" ] && ! grep -q '"ArtifactVerifyKey"' "$conf"; then
		sed -i '1s|^{$|{\n  "ArtifactVerifyKey": "/etc/pyupdate/artifact-verify-key.pem",|' "$conf"
	fi
fi
