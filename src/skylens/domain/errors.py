"""One error hierarchy for the whole service.

Every layer raises these; the API maps each class to a status code in one table
(`skylens.api.errors`). Messages are the user-visible text, worded as Glance words
them because clients and scripts match on them.

Every `SkylensError` is defined here, except the few that only an HTTP adapter can
raise, which live beside it (tests/domain/test_errors.py keeps this list true):

- `skylens.api.errors`: `MethodNotAllowed` (405), `MethodNotImplemented` (501),
  `RangeNotSatisfiable` (416), `RouteNotFound` (a `NotFound`) and
  `UnsupportedPatchMediaType` (an `UnsupportedMediaType`);
- `skylens.api.requests`: `NulCharacter` (an `InvalidRequest`) and `RequestTooLarge`
  (a `LimitExceeded`), refusals of a request's bytes before anything reads them;
- `skylens.api.compute_v21.microversions`: `InvalidVersionString` (an
  `InvalidRequest`), `VersionNotSupported` (406), `VersionNotFoundForMethod` (a
  `NotFound`).

Errors that no client sees are not `SkylensError`s: `skylens.config.ConfigError` and
the adapters' `ValueError`s for a broken file they read at start-up
(`InvalidTokenFile`, `InvalidPolicyFile`, `InvalidProtectionsFile`,
`InvalidStoreSettings`), which the composition root turns into `ConfigError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skylens.domain.quotas import Resource


class SkylensError(Exception):
    """Base of every error the service reports to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(SkylensError):
    """The request is malformed or names something invalid (400)."""


class InvalidPatch(InvalidRequest):
    """A JSON-patch document cannot be applied."""


class InvalidFilter(InvalidRequest):
    """A list filter, sort or paging parameter is invalid."""


class NotAuthenticated(SkylensError):
    """No acceptable identity came with the request (401). `challenge` is the
    `WWW-Authenticate` value that tells the client where to authenticate."""

    def __init__(
        self,
        message: str = (
            "This server could not verify that you are authorized to access the document you "
            "requested. Either you supplied the wrong credentials (e.g., bad password), or your "
            "browser does not understand how to supply the credentials required."
        ),
        challenge: str | None = None,
    ) -> None:
        super().__init__(message)
        self.challenge = challenge


class IdentityUnavailable(SkylensError):
    """The identity service could not be asked (503)."""


class Forbidden(SkylensError):
    """The caller may not do this (403)."""


class ReadOnlyAttribute(Forbidden):
    def __init__(self, attribute: str) -> None:
        super().__init__(f"Attribute '{attribute}' is read-only.")


class ReservedAttribute(Forbidden):
    def __init__(self, attribute: str) -> None:
        super().__init__(f"Attribute '{attribute}' is reserved.")


class NotFound(SkylensError):
    """The thing does not exist, or the caller may not know it exists (404)."""


class ImageNotFound(NotFound):
    def __init__(self, image_id: str, message: str | None = None) -> None:
        super().__init__(message or f"No image found with ID {image_id}")
        self.image_id = image_id


class CachingNotSupported(NotFound):
    """The image cache API, on a service without an image cache (as Glance's)."""

    def __init__(self) -> None:
        super().__init__("Caching via API is not supported at this site.")


class Conflict(SkylensError):
    """The request conflicts with the current state of the resource (409)."""


class InvalidStatusTransition(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Image status transition from {current} to {target} is not allowed")


class InvalidTaskTransition(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Task status transition from {current} to {target} is not allowed")


class TaskNotFound(NotFound):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"Could not find task {task_id}")


class LimitExceeded(SkylensError):
    """A quota or size limit would be exceeded (413)."""


class PropertyLimitExceeded(LimitExceeded):
    """An image would have more properties than the per-image quota allows."""


class MemberLimitExceeded(LimitExceeded):
    def __init__(self, image_id: str, attempted: int, maximum: int) -> None:
        super().__init__(
            f"Image member limit exceeded for image {image_id}: The limit has been exceeded "
            "on the number of allowed image members for this image. "
            f"Attempted: {attempted}, Maximum: {maximum}:"
        )


class QuotaExceeded(LimitExceeded):
    """413, worded as Glance relays oslo.limit's refusal."""

    def __init__(self, project_id: str, resource: Resource, limit: int, usage: int, delta: int):
        detail = (
            f"Project {project_id} is over a limit for [Resource {resource.value} is over "
            f"limit of {limit} due to current usage {usage} and delta {delta}]"
        )
        super().__init__(
            "The request returned a 413 Request Entity Too Large. This generally means that "
            "rate limiting or a quota threshold was breached.\n\nThe response body:\n" + detail
        )
        self.resource = resource


class ImageTooLarge(LimitExceeded):
    def __init__(self) -> None:
        super().__init__("The incoming image is too large: The provided image is too large.")


class UnsupportedMediaType(SkylensError):
    """The request body's media type is not accepted here (415)."""


class DataFormatMismatch(UnsupportedMediaType):
    def __init__(self, declared: str, detected: str) -> None:
        super().__init__(f"Image disk_format {declared} does not match stream data {detected}")


class UnsafeImageData(UnsupportedMediaType):
    def __init__(self) -> None:
        super().__init__("Image failed safety checks")


# Glance words a few refusals as the "detail" of a generic status message; the
# API renders these classes that way (see skylens.api.errors.DETAIL_STYLE).
class PropertyNotFound(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Property {name} does not exist.")


class PropertyExists(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"Property {name} already present.")


class PropertyNotRemovable(Forbidden):
    def __init__(self, name: str) -> None:
        super().__init__(f"Property {name} may not be removed.")


class OwnerChangeForbidden(Forbidden):
    def __init__(self) -> None:
        super().__init__("Owner can't be updated by non admin.")


class ReservedPropertyName(ReservedAttribute):
    """A create request names a reserved key as an extra property."""


class PropertyProtected(ReservedAttribute):
    """A protection refuses the caller this operation on the property; Glance
    words it as it words a reserved name ("Attribute 'x' is reserved.")."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class ForeignOwnerForbidden(Forbidden):
    def __init__(self, owner: str | None) -> None:
        super().__init__(f"You are not permitted to create images owned by '{owner}'")


class BlobNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"No data stored under {key}")


class MetadataKeyNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__("Invalid metadata key")
        self.key = key


class StorageUnavailable(SkylensError):
    """A store failed or cannot be reached (503).

    The client reads `message`: the store's id and what failed, never where the
    store is nor anything of its credentials. `reason` adds where (an endpoint, a
    bucket, a container) and what its client said, for the log.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class DatabaseUnavailable(SkylensError):
    """The database cannot be reached, lost the connection mid-request, or stayed
    locked by other writers longer than the busy timeout (503).

    The client sees webob's generic text; `reason` (the driver's first line) is for the log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("The server is currently unavailable. Please try again at a later time.")
        self.reason = reason


class StatementTimedOut(SkylensError):
    """The database cancelled a statement that ran past its time limit (503):
    the server is too busy for the request now, which may succeed later."""

    def __init__(self) -> None:
        super().__init__(
            "The request took too long and was cancelled. Try again later, "
            "or with fewer filters or a smaller limit."
        )


class StorageFull(LimitExceeded):
    """The store has no room left for the data (a full disk, a full Swift cluster, an
    exhausted bucket quota): Glance's 413 and text."""

    def __init__(self) -> None:
        super().__init__(
            "Image storage media is full: "
            "There is not enough disk space on the image storage media."
        )


class ServerBusy(SkylensError):
    """The server is at one of its capacity limits; try again after `retry_after`
    seconds (503 with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyUploads(ServerBusy):
    """This worker receives as many uploads at once as `server.max_uploads` allows."""

    RETRY_AFTER_SECONDS = 10

    def __init__(self) -> None:
        super().__init__(
            "This server is receiving as many image uploads as it may at once; try again later.",
            retry_after=self.RETRY_AFTER_SECONDS,
        )


class InvalidBlobKey(InvalidRequest):
    def __init__(self, key: str) -> None:
        super().__init__(f"Invalid storage key {key!r}")


class UnknownStore(InvalidRequest):
    def __init__(self, store_id: str) -> None:
        super().__init__(f"Store for identifier {store_id} not found")


class DuplicateLocation(InvalidRequest):
    def __init__(self, url: str) -> None:
        super().__init__(f"The location {url} already exists")


class InvalidLocation(InvalidRequest):
    """A location URL no configured store serves, or whose data cannot be found
    (Glance's `BadStoreUri`)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__("Invalid location")
        self.reason = reason


class StoreAddDisabled(SkylensError):
    """Data sent to a read-only store (the http store): Glance's 410."""

    def __init__(self) -> None:
        super().__init__("Error in store configuration. Adding images to store is disabled.")


class ImportUriRefused(InvalidRequest):
    """A web-download URI (or a redirect's) that the import filter refuses, in
    Glance's words; `reason` says why, for the log and the task's message."""

    def __init__(self, uri: str | None, reason: str) -> None:
        super().__init__(f"URI for web-download does not pass filtering: {uri}")
        self.uri = uri
        self.reason = reason


class RemoteSourceFailed(StorageUnavailable):
    """Data could not be fetched from a web source: it could not be reached, answered
    an error, stalled past the read timeout, redirected too often, or dropped the
    connection in a way that cannot be resumed (503 if a request waits on it)."""

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(f"Could not fetch {uri}: {reason}")
        self.uri = uri
        self.reason = reason


class RemoteSourceMissing(RemoteSourceFailed):
    """The web source answered that there is nothing at the URL (404 or 410)."""
