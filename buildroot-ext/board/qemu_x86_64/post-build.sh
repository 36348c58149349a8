#!/bin/sh
# Buildroot post-build script of this board: pyupdate's common script.
set -eu
exec "$(dirname "$0")/../common/post-build.sh" "$@"
