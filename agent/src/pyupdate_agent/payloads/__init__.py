"""Payload installers: the built-in rootfs-image one and the Update Module v3 runner."""
