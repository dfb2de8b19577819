"""Any S3-compatible service as a blob store, through boto3.

A blob smaller than one part goes up as one PUT at commit. A larger one is a multipart
upload: parts go up while the next one fills (at most two parts in memory per writer,
see `parts.py`), and `complete_multipart_upload` at commit is what makes it visible;
the upload in progress is the "temporary key". `abort` aborts the multipart upload and
the sweep aborts the ones a killed process left behind.

boto3 is imported when a store is built, not with this module: a worker that has no
S3 store never pays its ~25 MiB.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

from skylens.domain.errors import SkylensError
from skylens.storage.objects import READ_CHUNK, ObjectStore, Opened
from skylens.storage.parts import TIMESTAMP_SLACK, PartUploader, endpoint_origin

MIB = 1 << 20
MIN_PART_SIZE = 5 * MIB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MIB
# boto3's own multipart chunk size: two 8 MiB parts per writer keep a 4 GiB upload's
# buffers at 32 MiB even after the first growth step (see `growing_part_size`).
DEFAULT_PART_SIZE = 8 * MIB
GROWTH_STEPS = 50
_PART_CHECKSUMS = (
    "ChecksumCRC32",
    "ChecksumCRC32C",
    "ChecksumCRC64NVME",
    "ChecksumSHA1",
    "ChecksumSHA256",
)


def growing_part_size(base: int, max_parts: int) -> Callable[[int], int]:
    """Part sizes for a stream of unknown length: `base`, growing by `base` every
    `max_parts / 50` parts.

    Constant parts would cap a blob at `max_parts * base` (78 GiB for 8 MiB parts and
    AWS's 10,000). Growing in 50 steps lets `max_parts` parts hold 25.5 times that
    (1.9 TiB at the defaults) while small and medium blobs keep small parts: with the
    defaults the first 1.6 GiB go in 8 MiB parts, the next 3.1 GiB in 16 MiB parts.
    """
    step = max(1, max_parts // GROWTH_STEPS)
    return lambda number: base * (1 + (number - 1) // step)


class S3Store(ObjectStore):
    """One bucket of an S3-compatible service.

    `access_key`/`secret_key` None fall back to boto3's usual chain (environment,
    instance profile). `path_style` addresses `endpoint/bucket/key` instead of
    `bucket.endpoint/key` (most S3-compatible servers want it). `create_bucket`
    creates the bucket on first use if it does not exist. `max_parts` is the server's
    limit on parts per upload (AWS, Ceph and MinIO: 10,000; Swift's s3api: 1,000).
    `checksums` "when_required" is for servers that refuse the CRC32 headers boto3 sends
    by default since 1.36. The bucket is the store's own: the sweep aborts any
    multipart upload in it that has been idle long enough.
    """

    MISSING = ("NoSuchKey", "404")
    PAST_END = ("InvalidRange",)
    # A bucket or user quota (Ceph RGW, MinIO's full disks; Swift's s3api answers a
    # full container quota with EntityTooLarge, which our part sizes never are).
    FULL = ("QuotaExceeded", "XMinioStorageFull", "InsufficientStorage", "EntityTooLarge")
    SPACE = "bucket"

    def __init__(
        self,
        name: str,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        path_style: bool = False,
        create_bucket: bool = False,
        part_size: int = DEFAULT_PART_SIZE,
        max_parts: int = 10_000,
        upload_threads: int = 4,
        max_connections: int = 32,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        verify_tls: bool | str = True,
        checksums: str = "when_supported",
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE // GROWTH_STEPS:
            raise ValueError(
                f"part_size must be between {MIN_PART_SIZE} and "
                f"{MAX_PART_SIZE // GROWTH_STEPS} bytes, not {part_size}"
            )
        if checksums not in ("when_supported", "when_required"):
            raise ValueError(
                f"checksums must be when_supported or when_required, not {checksums!r}"
            )
        import boto3.session
        import botocore.config
        import botocore.exceptions

        self._where = _describe_endpoint(endpoint_url, region)
        super().__init__(
            name,
            location=f"S3 bucket {bucket!r} at {self._where}",
            errors=(botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError),
            upload_threads=upload_threads,
        )
        self._bucket = bucket
        self._region = region
        self._create_bucket = create_bucket
        self._max_parts = max_parts
        self._part_size = growing_part_size(part_size, max_parts)
        self._path_style = path_style
        self._client_error: type[Exception] = botocore.exceptions.ClientError
        config = botocore.config.Config(
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            request_checksum_calculation=checksums,
            response_checksum_validation=checksums,
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
            verify=verify_tls,
        )

    def writer(self, key: str) -> S3Writer:
        return S3Writer(self, key)

    def size(self, key: str) -> int | None:
        try:
            response = self._client.head_object(Bucket=self._bucket, Key=key)
        except self._errors_caught as error:
            self._unless_missing("HEAD", error)
            return None
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        with self._errors("DELETE"):
            self._client.delete_object(Bucket=self._bucket, Key=key)  # missing is fine in S3

    def sweep_uncommitted(self, older_than: float, live: Collection[str] = ()) -> int:
        """Abort the multipart uploads idle for more than `older_than` seconds, but
        none to a key in `live`."""
        cutoff = time.time() - older_than
        with self._errors("list multipart uploads"):
            paginator = self._client.get_paginator("list_multipart_uploads")
            candidates = [
                (upload["Key"], upload["UploadId"], upload["Initiated"].timestamp())
                for page in paginator.paginate(Bucket=self._bucket)
                for upload in page.get("Uploads", ())
            ]
        removed = 0
        for key, upload_id, initiated in candidates:
            if initiated - TIMESTAMP_SLACK >= cutoff or key in live:
                continue
            last_active = self._last_activity(key, upload_id, initiated)
            if last_active is not None and last_active - TIMESTAMP_SLACK < cutoff:
                self._abort_upload(key, upload_id)
                removed += 1
        return removed

    def prepare(self) -> None:
        """Create the bucket, when so configured, unless it exists."""
        if self._create_bucket:
            self._ensure_bucket()

    def details(self) -> dict[str, object]:
        return {
            "endpoint": self._where,
            "bucket": self._bucket,
            "path_style": self._path_style,
            "first_part_size": self._part_size(1),
            "max_parts": self._max_parts,
        }

    # What the writer needs.

    def _put(self, key: str, data: bytes) -> None:
        with self._errors("PUT"):
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data)

    def _start_upload(self, key: str) -> str:
        with self._errors("create multipart upload"):
            upload_id: str = self._client.create_multipart_upload(Bucket=self._bucket, Key=key)[
                "UploadId"
            ]
        return upload_id

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        with self._errors("upload part"):
            response = self._client.upload_part(
                Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
            )
        part = {"PartNumber": number, "ETag": response["ETag"]}
        part.update({name: response[name] for name in _PART_CHECKSUMS if name in response})
        return part

    def _complete(self, key: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        with self._errors("complete multipart upload"):
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )

    def _abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except self._errors_caught as error:
            if self._answer(error) not in ("NoSuchUpload", "404"):  # already gone: fine
                raise self._failure("abort multipart upload", error) from error

    # Internals.

    def _last_activity(self, key: str, upload_id: str, initiated: float) -> float | None:
        """When the upload last made progress (its newest part, or its start); None
        when it is gone (committed or aborted meanwhile)."""
        latest = initiated
        pages = self._client.get_paginator("list_parts").paginate(
            Bucket=self._bucket, Key=key, UploadId=upload_id
        )
        try:
            for page in pages:
                for part in page.get("Parts", ()):
                    latest = max(latest, part["LastModified"].timestamp())
        except self._errors_caught as error:
            if self._answer(error) in ("NoSuchUpload", "404"):
                return None
            raise self._failure("list parts", error) from error
        return latest

    def _open(self, key: str, byte_range: str | None) -> Opened:
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": key}
        if byte_range is not None:
            request["Range"] = byte_range
        body = self._client.get_object(**request)["Body"]
        return body.iter_chunks(READ_CHUNK), contextlib.closing(body)

    def _committed(self) -> Iterator[tuple[str, float]]:
        with self._errors("list"):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket):
                for item in page.get("Contents", ()):
                    yield item["Key"], item["LastModified"].timestamp()

    def _status(self, error: Exception) -> tuple[int | None, str]:
        if not isinstance(error, self._client_error):
            return None, ""
        response = getattr(error, "response", None) or {}
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status, str(response.get("Error", {}).get("Code", ""))

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self._bucket)
            return
        except self._errors_caught as error:
            if self._answer(error) not in ("404", "NoSuchBucket"):
                raise self._failure("HEAD bucket", error) from error
        request: dict[str, Any] = {"Bucket": self._bucket}
        if self._region and self._region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
        try:
            self._client.create_bucket(**request)
        except self._errors_caught as error:
            if self._answer(error) != "BucketAlreadyOwnedByYou":  # another worker won the race
                raise self._failure("create bucket", error) from error


class S3Writer:
    """One blob on its way into S3; see the module docstring."""

    def __init__(self, store: S3Store, key: str) -> None:
        self._store = store
        self._key = key
        self._upload_id: str | None = None
        self._finished = False
        self._parts = PartUploader(
            store._part_size,
            self._send_part,
            store._executor,
            max_parts=store._max_parts,
            start=self._start,
        )

    def write(self, data: bytes | memoryview) -> None:
        self._parts.write(data)

    def commit(self) -> None:
        try:
            if not self._parts.started:
                self._store._put(self._key, self._parts.pending())
            else:
                parts = self._parts.finish()
                assert self._upload_id is not None
                self._store._complete(self._key, self._upload_id, parts)
        except BaseException:
            with contextlib.suppress(SkylensError):
                self.abort()  # whatever it cannot remove, the sweep will
            raise
        self._finished = True

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._parts.cancel()
        if self._upload_id is not None:
            self._store._abort_upload(self._key, self._upload_id)

    def _start(self) -> None:
        self._upload_id = self._store._start_upload(self._key)

    def _send_part(self, number: int, data: bytes) -> dict[str, Any]:
        assert self._upload_id is not None
        return self._store._upload_part(self._key, self._upload_id, number, data)


def _describe_endpoint(endpoint_url: str | None, region: str | None) -> str:
    """Where the store is, for messages (never the credentials a URL may carry)."""
    if endpoint_url is None:
        return f"AWS region {region or 'default'}"
    return endpoint_origin(endpoint_url)
