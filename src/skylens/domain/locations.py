"""Image locations: where an image's data may be read, as Glance lists them.

An image's data lives in the service's own stores (`Image.stores`, under the key
`image_data_key` names) and, with the locations API, at URLs in read-only stores
(`Image.locations`: the `http` store). Clients see one list, `locations`: the own
stores' copies first, in the order they got the data, then the URLs in the order
they were added. `LocationEditor` applies Glance's (2.4+) JSON-patch rules for
`/locations` to that list, in Glance's order; each new location arrives as a
`NewLocation`, its store found (or why none may serve it) and, once every rule
that needs no network has passed, its size read from its URL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Mapping, Sequence

from skylens.domain.errors import (
    Conflict,
    DuplicateLocation,
    Forbidden,
    InvalidLocation,
    InvalidRequest,
    LimitExceeded,
    SkylensError,
)
from skylens.domain.images import Image, ImageStatus, Location

# Glance's add-location API (2.17) accepts these algorithms in validation_data.
VALIDATION_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")


@dataclasses.dataclass(frozen=True, slots=True)
class NewLocation:
    """A location a client asks to add: its store found (`refused` says why none may
    serve it), then its size read."""

    location: Location
    size: int | None = None
    validation: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Why the location is invalid without fetching anything (no store serves the URL,
    # the URI filter refuses it): `InvalidLocation` where Glance checks the URL.
    refused: str | None = None


@dataclasses.dataclass(frozen=True)
class LocationEditor:
    """Glance's JSON-patch rules for `/locations`, over the list clients see.

    `own_url(store, image_id)` is the URL of the image's copy in one of the service's
    stores; `hash_algo` the service's (`validation_data` must use it on a queued image).
    """

    own_url: Callable[[str, str], str]
    hash_algo: str = "sha512"
    # Glance's image_location_quota: most locations per image (negative: no limit).
    quota: int = 10

    def locations(self, image: Image) -> list[Location]:
        own = [Location(self.own_url(name, image.id), name, {}, own=True) for name in image.stores]
        return [*own, *image.locations]

    def add(self, image: Image, position: str, new: NewLocation, now: dt.datetime) -> Image:
        if image.status not in (ImageStatus.ACTIVE, ImageStatus.QUEUED):
            raise Conflict(
                f"It's not allowed to add locations if image status is {image.status.value}."
            )
        values = check_validation_data(image, [new.validation], self.hash_algo)
        current = self.locations(image)
        index = _position(position, len(current), allow_end=True)
        if index is None:
            raise InvalidRequest("Invalid position for adding a location.")
        self._check_quota(len(current) + 1)
        _check_url(new)
        if any(_same(existing, new.location) for existing in current):
            raise DuplicateLocation(new.location.url)
        current.insert(index, new.location)
        return self._with(image, current, [new], values, now)

    def replace(self, image: Image, new: Sequence[NewLocation], now: dt.datetime) -> Image:
        if image.status not in (ImageStatus.ACTIVE, ImageStatus.QUEUED):
            raise Conflict(
                f"It's not allowed to replace locations if image status is {image.status.value}."
            )
        values = check_validation_data(image, [n.validation for n in new], self.hash_algo)
        current = self.locations(image)
        wanted = [n.location for n in new]
        self._check_quota(len(wanted))
        same_urls = sorted(loc.url for loc in current) == sorted(loc.url for loc in wanted)
        if current and not same_urls:
            shown = [loc.shown() for loc in current]
            raise InvalidRequest(f"Original locations is not empty: {shown}")
        for index, location in enumerate(wanted):
            _check_url(new[index])
            if any(_same(location, other) for other in wanted[index + 1 :]):
                raise DuplicateLocation(location.url)
        if same_urls and current:
            # Only the metadata changes; the service's own copies keep theirs.
            by_url = {loc.url: loc for loc in current}
            wanted = [
                by_url[loc.url] if by_url[loc.url].own else dataclasses.replace(loc, own=False)
                for loc in wanted
            ]
        return self._with(image, wanted, new, values, now)

    def remove(self, image: Image, position: str, now: dt.datetime) -> tuple[Image, Location]:
        """The image without the location at `position`, and that location (whose
        data the caller deletes if it is one of the service's own copies)."""
        if image.status is not ImageStatus.ACTIVE:
            raise Conflict(
                f"It's not allowed to remove locations if image status is {image.status.value}."
            )
        current = self.locations(image)
        if len(current) == 1:
            raise Forbidden("Cannot remove last location in the image.")
        index = _position(position, len(current), allow_end=False)
        if index is None:
            raise InvalidRequest("Invalid position for removing a location.")
        removed = current.pop(index)
        return self._with(image, current, [], {}, now), removed

    def _check_quota(self, attempted: int) -> None:
        if 0 <= self.quota < attempted:
            raise LimitExceeded(
                "The limit has been exceeded on the number of allowed image locations. "
                f"Attempted: {attempted}, Maximum: {self.quota}"
            )

    def _with(
        self,
        image: Image,
        locations: list[Location],
        added: Sequence[NewLocation],
        values: Mapping[str, str],
        now: dt.datetime,
    ) -> Image:
        changed = dataclasses.replace(
            image,
            stores=tuple(loc.store for loc in locations if loc.own),
            locations=tuple(loc for loc in locations if not loc.own),
            updated_at=now,
        )
        if changed.size is None:
            sizes = [n.size for n in added if n.size]
            if sizes:
                changed = dataclasses.replace(changed, size=sizes[0])
        if image.status is ImageStatus.QUEUED and locations:
            changed = changed.with_status(ImageStatus.ACTIVE, now)
            changed = dataclasses.replace(
                changed,
                checksum=values.get("checksum", changed.checksum),
                os_hash_algo=values.get("os_hash_algo", changed.os_hash_algo),
                os_hash_value=values.get("os_hash_value", changed.os_hash_value),
            )
        return changed


def _check_url(new: NewLocation) -> None:
    if new.refused is not None:
        raise InvalidLocation(new.refused)


def _same(one: Location, other: Location) -> bool:
    return one.url == other.url and dict(one.metadata) == dict(other.metadata)


def _position(text: str, length: int, *, allow_end: bool) -> int | None:
    """Glance's `_get_locations_op_pos`: a digit string, or `-` for the end."""
    position = length if allow_end else length - 1
    if text.isdigit():
        position = int(text)
    elif text != "-":
        return None
    if not allow_end and not 0 <= position < length:
        return None
    return position


def check_validation_data(
    image: Image, given: Sequence[Mapping[str, str]], hash_algo: str
) -> dict[str, str]:
    """Glance's `_validate_validation_data`: the values to set on a queued image (the
    same value for an attribute already set is accepted and changes nothing)."""
    values: dict[str, str] = {}
    for data in given:
        for key, value in data.items():
            if values.get(key, value) != value:
                raise Conflict(f"Conflicting values for {key}")
            values[key] = value
    new: dict[str, str] = {}
    for key, value in values.items():
        current = getattr(image, key)
        if value == current:
            continue
        if current:
            raise Conflict(f"{key} is already set with a different value")
        new[key] = value
    if not new:
        return {}
    if image.status is not ImageStatus.QUEUED:
        raise Conflict(
            f"New value(s) for {', '.join(new)} may only be provided when image status is 'queued'"
        )
    if "checksum" in new:
        _check_digest("checksum", new["checksum"], "md5", Conflict)
    algo = new.get("os_hash_algo")
    if algo != hash_algo:
        raise Conflict(f"os_hash_algo must be {hash_algo}, not {algo}")
    _check_digest("os_hash_value", new["os_hash_value"], hash_algo, Conflict)
    return new


@dataclasses.dataclass(frozen=True, slots=True)
class ExpectedHash:
    """The add-location API's (2.17) `validation_data`: the hash the data at the URL
    must have."""

    algo: str
    value: str  # hex, as the client gave it

    def validation_data(self) -> dict[str, str]:
        return {"os_hash_algo": self.algo, "os_hash_value": self.value}

    def matches(self, hexdigest: str) -> bool:
        return hexdigest == self.value.lower()


def expected_hash(data: Mapping[str, str], default_algo: str) -> ExpectedHash | None:
    """`validation_data` of the add-location API (2.17) checked as Glance's
    `_validate_hashing_data` checks it (400s), and read; None if it names no hash."""
    if "os_hash_value" not in data:
        return None
    algo = data.get("os_hash_algo", default_algo)
    _check_digest("os_hash_value", data["os_hash_value"], algo, InvalidRequest, _API_WRONG_SIZE)
    return ExpectedHash(algo, data["os_hash_value"])


# Glance's words for a digest of the wrong length: PATCH's, and the locations API's (2.17).
_WRONG_SIZE = "{name} ({value}) is not the correct size for {algo} (should be {want} bytes)"
_API_WRONG_SIZE = (
    "{name}: ({value}) is not the correct size for ({algo}) (should be ({want}) bytes)"
)


def _check_digest(
    name: str,
    value: str,
    algo: str,
    error: Callable[[str], SkylensError],
    wrong_size: str = _WRONG_SIZE,
) -> None:
    """Refuse with `error` a `value` (of the attribute `name`) that is not the hex
    digest of an `algo` hash, in Glance's words."""
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise error(f"{name} ({value}) is not a valid hexadecimal value") from None
    want = hashlib.new(algo).digest_size
    if len(digest) != want:
        raise error(wrong_size.format(name=name, value=value, algo=algo, want=want))
