"""`storage` URLs: empty for local files, `s3://bucket/prefix` for an S3-compatible store."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyupdate_server.errors import ConfigError

# S3's rules for bucket names (3-63 characters, lower case, digits, dots, hyphens)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class S3Location:
    """Args:
    bucket: the bucket, which must exist (the server never creates one).
    prefix: keys are `<prefix>/<artifact id>.mender`; empty for the bucket's root.
    """

    bucket: str
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_storage_url(url: str) -> S3Location:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != "s3":
        raise ConfigError(
            f"storage {url!r}: expected s3://bucket/prefix (or empty for local files)"
        )
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigError(f"storage {url!r}: {bucket!r} is not a valid S3 bucket name")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"storage {url!r}: the prefix has an empty, '.' or '..' part")
    return S3Location(bucket, prefix)
