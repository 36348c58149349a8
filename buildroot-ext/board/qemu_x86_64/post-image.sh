#!/bin/sh
# Buildroot post-image script of this board: pyupdate's common script with
# this board's genimage.cfg and board config (pyupdate-board.json.in).
set -eu
BOARD_DIR=$(dirname "$0")
exec "$BOARD_DIR/../common/post-image.sh" "$1" "$BOARD_DIR"
