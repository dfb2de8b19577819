"""The one function that names where image data lives, and key validation."""

from __future__ import annotations

import base64
import re

from skylens.domain.errors import InvalidBlobKey
from skylens.domain.images import is_image_id

# Keys are slash-separated segments of safe characters; no segment is `.` or `..`.
# Matched whole (`fullmatch`): `$` would also let a segment end in a newline.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def image_data_key(image_id: str) -> str:
    """`images/<first two characters>/<image id>`: sharded so no directory or
    listing prefix grows past a few thousand entries per 100,000 images.

    Only an image id names data: a UUID (in any case, for images created before ids
    were stored in lower case), with nothing before or after it.
    """
    if not is_image_id(image_id.lower()):
        raise InvalidBlobKey(f"images/{image_id}")
    key = f"images/{image_id[:2]}/{image_id}"
    check_key(key)
    return key


def image_id_of_key(key: str) -> str | None:
    """The image whose data `image_data_key` put under `key`; None for any other key."""
    return _image_id_under("images", key)


def image_id_of_staging_key(key: str) -> str | None:
    """The image whose staged data `staging_key` put under `key`; None for any other."""
    return _image_id_under("staging", key)


def _image_id_under(prefix: str, key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 3 and parts[0] == prefix and parts[2][:2] == parts[1] and parts[2]:
        return parts[2]
    return None


def check_key(key: str) -> None:
    """Refuse any key that could name something outside the store's space."""
    segments = key.split("/")
    if len(key) > 1024 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise InvalidBlobKey(key)


def staging_key(image_id: str) -> str:
    """`staging/<first two characters>/<image id>`: data staged for an import."""
    if not is_image_id(image_id.lower()):
        raise InvalidBlobKey(f"staging/{image_id}")
    key = f"staging/{image_id[:2]}/{image_id}"
    check_key(key)
    return key


# A URL's key in a read-only URL store (the http store): `web/` and the URL's
# base64url text cut into segments, each led by `u` (a segment starts with a letter
# or digit), so the URL comes back whole and no key escapes the store's space.
_URL_SEGMENT = 200


def location_key(url: str) -> str:
    """The key the http store reads `url` under."""
    text = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    parts = [text[i : i + _URL_SEGMENT] for i in range(0, len(text), _URL_SEGMENT)] or [""]
    key = "web/" + "/".join(f"u{part}" for part in parts)
    check_key(key)
    return key


def url_of_location_key(key: str) -> str | None:
    """The URL `location_key` named; None for any other key."""
    parts = key.split("/")
    if len(parts) < 2 or parts[0] != "web" or not all(p.startswith("u") for p in parts[1:]):
        return None
    text = "".join(part[1:] for part in parts[1:])
    try:
        url = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        canonical = location_key(url)
    except (ValueError, UnicodeDecodeError, InvalidBlobKey):
        return None
    return url if canonical == key else None  # only the key it writes
