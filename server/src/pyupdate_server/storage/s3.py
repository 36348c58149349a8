"""Blob store in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage, rclone).

Uploads go in as a multipart upload, one part in memory at a time, and are aborted on
any failure, so a failed upload leaves no object and no parts. Devices download
straight from the store through presigned GET URLs (download_url); the server never
streams artifact bytes itself. boto3 is the `s3` extra: it is imported only when a
store is configured.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pyupdate_server.errors import ConfigError, StorageUnavailable
from pyupdate_server.storage.url import S3Location

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # type: ignore[import-not-found]

PART_SIZE = 8 * 1024 * 1024  # S3 wants at least 5 MiB for every part but the last
# answers that mean "this configuration cannot work", as opposed to "not now"
_REFUSALS = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_MISSING_BUCKET = {"NoSuchBucket", "404"}


class S3BlobStore:
    """Args:
    location: bucket and key prefix (storage/url.py).
    endpoint_url: the store's URL; None for AWS (or AWS_ENDPOINT_URL[_S3]).
    region, access_key_id, secret_access_key: None to take boto3's usual sources.
    part_size: bytes per multipart part, the memory an upload holds.
    """

    name = "s3"

    def __init__(
        self,
        location: S3Location,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigError(
                f"storage {location}: boto3 is not installed (pip install 'pyupdate-server[s3]')"
            ) from None
        self.location = location
        self.endpoint_url = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        self.part_size = part_size
        config = Config(
            signature_version="s3v4",
            # a custom endpoint (MinIO, rclone, an IP address) has no bucket subdomains
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            # newer boto3 adds CRC checksums many S3-compatible stores do not know
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    def __str__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"object store {self.location}{where}"

    def _fail(self, exc: Exception, doing: str) -> Exception:
        """One line for a boto error: ConfigError for what retrying will not fix."""
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return ConfigError(
                f"{self}: no credentials (s3_access_key_id and s3_secret_access_key, "
                "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            # at start, a missing bucket or refused credentials are configuration errors;
            # while serving they are an outage like any other (503, nothing kept)
            kind = ConfigError if doing == "check" else StorageUnavailable
            if code in _MISSING_BUCKET:
                return kind(f"{self}: bucket {self.location.bucket!r} does not exist")
            if code in _REFUSALS:
                return kind(f"{self}: {doing}: access denied ({code}): check the credentials")
            if status and status < 500:
                return StorageUnavailable(f"{self}: {doing}: {code} {error.get('Message', '')}")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StorageUnavailable(f"{self}: {doing}: {reason}")

    def check(self) -> None:
        """At start and for readiness: the bucket exists and our credentials may use it."""
        try:
            self.client.head_bucket(Bucket=self.location.bucket)
        except Exception as exc:
            raise self._fail(exc, "check") from None

    def ping(self) -> None:
        try:
            self.check()
        except ConfigError as exc:  # a bucket removed while serving: not ready, not a bug
            raise StorageUnavailable(str(exc)) from None

    def open_upload(self, key: str) -> S3MultipartUpload:
        """A multipart upload to `key`, fed part by part (api/streaming.py)."""
        return S3MultipartUpload(self, key)

    def put_file(self, key: str, source: Path) -> None:
        upload = self.open_upload(key)
        try:
            with open(source, "rb") as fh:
                while data := fh.read(self.part_size):
                    upload.add_part(data)
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        source.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path | None:
        return None

    def download_url(self, key: str, ttl: int) -> str | None:
        """A presigned GET: computed locally (no request to the store), valid `ttl` s."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.location.bucket, "Key": self.location.key(key)},
            ExpiresIn=ttl,
        )

    def fetch_file(self, key: str, target: Path) -> None:
        try:
            self.client.download_file(self.location.bucket, self.location.key(key), str(target))
        except Exception as exc:
            if isinstance(exc, OSError):
                raise
            raise self._fail(exc, f"fetch {key}") from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.location.bucket, Key=self.location.key(key))
        except Exception as exc:
            raise self._fail(exc, f"delete {key}") from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.location.bucket, Key=self.location.key(key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise self._fail(exc, f"look up {key}") from None
        except Exception as exc:
            raise self._fail(exc, f"look up {key}") from None
        return True


class S3MultipartUpload:
    """One object being written as a multipart upload: all parts and `complete()`, or
    `abort()`, after which the store keeps nothing of it. Created on the first part, so
    making one costs no request."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self.store = store
        self.key = key
        self._name = store.location.key(key)
        self._id: str | None = None
        self._parts: list[dict[str, object]] = []

    def _call(self, doing: str, method: str, **kwargs: object) -> dict[str, object]:
        try:
            return getattr(self.store.client, method)(  # type: ignore[no-any-return]
                Bucket=self.store.location.bucket, Key=self._name, **kwargs
            )
        except Exception as exc:
            if isinstance(exc, OSError):
                raise
            raise self.store._fail(exc, f"{doing} {self.key}") from None

    def add_part(self, data: bytes) -> None:
        """Parts but the last must be at least 5 MiB (S3's rule)."""
        if self._id is None:
            answer = self._call(
                "upload", "create_multipart_upload", ContentType="application/vnd.mender-artifact"
            )
            self._id = str(answer["UploadId"])
        number = len(self._parts) + 1
        answer = self._call(
            "upload", "upload_part", UploadId=self._id, PartNumber=number, Body=data
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def complete(self) -> None:
        if self._id is None:
            self.add_part(b"")  # an empty object still needs one part
        self._call(
            "upload",
            "complete_multipart_upload",
            UploadId=self._id,
            MultipartUpload={"Parts": self._parts},
        )
        self._id = None

    def abort(self) -> None:
        """Drop what was sent (never raises: it runs on the way out of a failure)."""
        if self._id is not None:
            with contextlib.suppress(Exception):
                self.store.client.abort_multipart_upload(
                    Bucket=self.store.location.bucket, Key=self._name, UploadId=self._id
                )
            self._id = None
