"""One error hierarchy for the whole service.

Every layer raises these; the API maps each class to a status code in one table
(`skylens.api.errors`). Messages are the user-visible text, worded as Glance words
them because clients and scripts match on them.
"""

from __future__ import annotations


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


class Conflict(SkylensError):
    """The request conflicts with the current state of the resource (409)."""


class InvalidStatusTransition(Conflict):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"Image status transition from {current} to {target} is not allowed")


class LimitExceeded(SkylensError):
    """A quota or size limit would be exceeded (413)."""


class PropertyLimitExceeded(LimitExceeded):
    """An image would have more properties than the per-image quota allows."""


class UnsupportedMediaType(SkylensError):
    """The request body's media type is not accepted here (415)."""


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


class ForeignOwnerForbidden(Forbidden):
    def __init__(self, owner: str | None) -> None:
        super().__init__(f"You are not permitted to create images owned by '{owner}'")


class BlobNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"No data stored under {key}")


class StorageUnavailable(SkylensError):
    """A store failed or cannot be reached (503)."""


class ServerBusy(SkylensError):
    """The server is at one of its capacity limits; try again after `retry_after`
    seconds (503 with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidBlobKey(InvalidRequest):
    def __init__(self, key: str) -> None:
        super().__init__(f"Invalid storage key {key!r}")
