"""glance-download: an image copied from another region's image service, as Glance 33
imports it (`{"method": {"name": "glance-download", "glance_image_id": ...,
"glance_region": ..., "glance_service_interface": "public"}}`).

The task acts as the caller, with the token the request came with (kept with the
task until it ends, so that whichever worker runs it can; never shown):

1. it finds the region's `image` endpoint at the interface asked for in the caller's
   service catalogue (`ServiceCatalogue`);
2. it reads the remote image, `GET {endpoint}/v2/images/{id}`: the image must be
   active and say its size; its formats, and its properties whose names begin with
   one of the configured prefixes (Glance's [glance_download_properties]
   extra_properties), are what the import sets on the image;
3. it streams `GET {endpoint}/v2/images/{id}/file` through the usual ingest, which
   must find the remote image's size; when no data plugin changed the data, its md5
   and secure hash must be the remote image's as well (Glance does not compare them).

Both URIs pass the import filter, as web-download's do (Glance checks the second).
Glance sets the formats and properties when the task starts and takes them back when
it fails; here they are set in the change that activates the image, so a failed
import leaves no trace of them either.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Callable, Collection
from typing import Any

from skylens.domain.data import DataDigest
from skylens.domain.errors import (
    IdentityUnavailable,
    ImageTooLarge,
    ImportUriRefused,
    InvalidRequest,
    NotAuthenticated,
    RemoteSourceFailed,
)
from skylens.domain.images import (
    MUTABLE_ATTRIBUTES,
    READ_ONLY_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    RESERVED_PREFIX,
    Image,
    ImageStatus,
)
from skylens.domain.ports import Offload, RemoteBody, RemoteSource, ServiceCatalogue
from skylens.domain.tasks import ImportRequest
from skylens.services.import_methods import GLANCE_DOWNLOAD, ImportSource
from skylens.services.import_plugins import FormatChange, ImportFailed

log = logging.getLogger(__name__)

# Glance's [glance_download_properties] extra_properties default.
DEFAULT_PROPERTY_PREFIXES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
# The most a remote image's record may take (its properties' values included).
METADATA_CAP = 16 << 20
INTERFACES = ("public", "internal", "admin")
_NOT_PROPERTIES = MUTABLE_ATTRIBUTES | READ_ONLY_ATTRIBUTES | RESERVED_ATTRIBUTES


@dataclasses.dataclass(frozen=True)
class GlanceDownload:
    catalogue: ServiceCatalogue
    remote: RemoteSource
    size_cap: int
    property_prefixes: Collection[str] = DEFAULT_PROPERTY_PREFIXES

    name: str = GLANCE_DOWNLOAD
    required_status: ImageStatus = ImageStatus.QUEUED
    wrong_status: str = "Image needs to be in 'queued' state to use 'glance-download' method"

    def with_fields(self, request: ImportRequest, token: str | None) -> ImportRequest:
        """Glance's 400s, in Glance's order, and its default interface."""
        fields = dict(request.fields)
        for name in ("glance_region", "glance_image_id"):
            if name not in fields:
                raise InvalidRequest(f"'{name}' needs to be set for glance-download import method")
        remote_id = fields["glance_image_id"]
        if _uuid(remote_id) is None:
            raise InvalidRequest(f"Remote image id does not look like a UUID: {remote_id}")
        fields.setdefault("glance_service_interface", "public")
        for name in ("glance_region", "glance_service_interface"):
            if not isinstance(fields[name], str):  # Glance would fail the task on it
                raise InvalidRequest(f"'{name}' must be a string")
        return dataclasses.replace(request, fields=fields, token=token)

    def check(self, image: Image, request: ImportRequest) -> None:
        pass

    async def open(self, image: Image, request: ImportRequest, storage: Offload) -> ImportSource:
        fields = request.fields
        region, interface = fields["glance_region"], fields["glance_service_interface"]
        remote_id = _uuid(fields["glance_image_id"])
        if not request.token or remote_id is None:
            raise ImportFailed("The task does not say which image to download, or as whom")
        endpoint = await self._endpoint(request.token, region, interface, storage)
        url = f"{endpoint.rstrip('/')}/v2/images/{remote_id}"
        record = await self._record(url, request.token)
        size = _size(record, remote_id)
        body = await self._open(f"{url}/file", request.token, self.size_cap)
        return ImportSource(
            _Failing(body, f"{url}/file"),
            size,
            body.aclose,
            change=self._change(record),
            verify=_verifier(record),
        )

    def finish(self, image_id: str) -> None:
        pass

    async def _endpoint(self, token: str, region: str, interface: str, storage: Offload) -> str:
        try:
            endpoint = None
            if interface in INTERFACES:
                endpoint = await storage(self.catalogue.endpoint, token, "image", region, interface)
        except (NotAuthenticated, IdentityUnavailable) as error:
            raise ImportFailed(f"The service catalogue could not be read: {error}") from error
        if endpoint is None:  # Glance's GlanceEndpointNotFound
            raise ImportFailed(f"{interface} glance endpoint not found for region {region}")
        return endpoint

    async def _record(self, url: str, token: str) -> dict[str, Any]:
        """The remote image, as its image service shows it to the caller."""
        data, buffer = bytearray(), memoryview(bytearray(1 << 16))
        try:
            body = await self._open(url, token, METADATA_CAP)
            try:
                while count := await _Failing(body, url).readinto(buffer):
                    data += buffer[:count]
            finally:
                await body.aclose()
        except ImageTooLarge as error:  # announced, or found while reading
            raise ImportFailed(f"The remote image's record at {url} is too large") from error
        try:
            record = json.loads(data)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise ImportFailed(f"The answer of {url} is not an image")
        if record.get("status") != ImageStatus.ACTIVE.value:
            raise ImportFailed(
                f"Source image status should be active instead of {record.get('status')}"
            )
        return record

    async def _open(self, url: str, token: str, cap: int) -> RemoteBody:
        try:
            return await self.remote.open(url, cap, headers=[("X-Auth-Token", token)])
        except ImportUriRefused as error:
            log.warning("glance-download from %s refused: %s", url, error.reason)
            raise ImportFailed(
                f"Processed URI for glance-download does not pass filtering: {url}"
            ) from error
        except RemoteSourceFailed as error:
            raise ImportFailed(str(error)) from error

    def _change(self, record: dict[str, Any]) -> FormatChange:
        """The remote image's formats, and the properties Glance copies of it."""
        properties = {
            key: value
            for key, value in record.items()
            if isinstance(value, str)
            and key not in _NOT_PROPERTIES
            and not key.startswith(RESERVED_PREFIX)
            and any(key.startswith(prefix) for prefix in self.property_prefixes)
        }
        formats = [record.get(name) for name in ("disk_format", "container_format")]
        disk_format, container_format = (
            value if isinstance(value, str) and value else None for value in formats
        )
        return FormatChange(disk_format, container_format, properties=properties)


def _uuid(value: Any) -> str | None:
    """`value` as a UUID in its canonical spelling, if it is one (as Python reads them)."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _size(record: dict[str, Any], remote_id: str) -> int:
    size = record.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ImportFailed(f"Size attribute of remote image {remote_id} could not be determined.")
    return size


def _verifier(record: dict[str, Any]) -> Callable[[DataDigest], None]:
    """A check that the data has the remote image's checksum and secure hash."""
    checksum, algo, value = (
        record.get(key) for key in ("checksum", "os_hash_algo", "os_hash_value")
    )

    def verify(digest: DataDigest) -> None:
        if isinstance(checksum, str) and checksum and digest.checksum != checksum:
            raise ImportFailed("The data downloaded does not match the remote image's checksum")
        if algo == digest.hash_algo and isinstance(value, str) and digest.hash_value != value:
            raise ImportFailed("The data downloaded does not match the remote image's hash")

    return verify


class _Failing:
    """A remote body whose failures end the task with a message naming `url`."""

    def __init__(self, body: RemoteBody, url: str) -> None:
        self._body = body
        self._url = url

    async def readinto(self, buffer: memoryview) -> int:
        try:
            return await self._body.readinto(buffer)
        except (RemoteSourceFailed, ImportUriRefused) as error:
            raise ImportFailed(f"Could not fetch {self._url}: {error.reason}") from error
