"""Errors of the image tool: one line each, naming the field, file or tool."""

from __future__ import annotations


class ImageError(Exception):
    """Base class; the CLI prints `error: <message>` and exits with `exit_code`."""

    exit_code = 2


class BoardConfigError(ImageError):
    """The board config is missing, unreadable or fails its schema."""


class ToolError(ImageError):
    """A build tool (mkimage, sfdisk, ...) is missing or failed."""

    exit_code = 3


class InputError(ImageError):
    """An input (rootfs, U-Boot binary, env file) is missing or unusable."""


class FitError(ImageError):
    """Something does not fit the space the board config gives it."""


class EnvConfigError(ImageError):
    """fw_env.config disagrees with the board's env layout."""
