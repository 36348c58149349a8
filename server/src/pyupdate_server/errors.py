"""Server errors: each one line, each with an HTTP status and a CLI exit code."""

from __future__ import annotations

import errno


class ServerError(Exception):
    """Base: `str()` is the one line shown to the user or put in the JSON body."""

    status_code = 500
    exit_code = 1


class ConfigError(ServerError):
    exit_code = 2


class BadRequest(ServerError):
    status_code = 400
    exit_code = 2


class Unauthorized(ServerError):
    status_code = 401
    exit_code = 2


class Forbidden(ServerError):
    status_code = 403
    exit_code = 2


class NotFound(ServerError):
    status_code = 404
    exit_code = 2


class Conflict(ServerError):
    status_code = 409
    exit_code = 2


class TooLarge(ServerError):
    status_code = 413
    exit_code = 2


class Unprocessable(ServerError):
    status_code = 422
    exit_code = 2


class InsufficientStorage(ServerError):
    """The server's disk (or quota) is full: the request was fine, the server cannot keep it."""

    status_code = 507


def storage_full(exc: BaseException) -> bool:
    """A write failed for want of space: ENOSPC/EDQUOT, or SQLite's SQLITE_FULL."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return "database or disk is full" in str(exc)
