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


class TooManyRequests(ServerError):
    """A rate limit or a ceiling was reached; `retry_after` seconds is when to try again."""

    status_code = 429
    exit_code = 2

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class ServiceUnavailable(ServerError):
    """The database or the artifact store is unreachable for now: the client should try
    again after `retry_after` seconds; nothing of the request was kept."""

    status_code = 503
    exit_code = 3

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached or refused us, at start or while serving."""


class StorageUnavailable(ServiceUnavailable):
    """The artifact store (an S3 endpoint, or the artifacts directory) cannot be reached
    or refused us, at start or while serving."""


class Unprocessable(ServerError):
    status_code = 422
    exit_code = 2


class InsufficientStorage(ServerError):
    """The server's disk (or quota) is full: the request was fine, the server cannot keep it."""

    status_code = 507


def storage_full(exc: BaseException) -> bool:
    """A write failed for want of space: ENOSPC/EDQUOT, SQLite's SQLITE_FULL, or
    PostgreSQL's disk_full."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    # PostgreSQL's disk_full (SQLSTATE 53100) reaches us as the driver error's sqlstate
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == "53100":
        return True
    return "database or disk is full" in str(exc)
