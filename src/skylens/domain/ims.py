"""The Huawei Cloud IMS compatibility profile: image types and API releases.

IMS answers `GET /v2/images` with two attributes no image stores: `__imagetype`
(gold, private or shared) and `__isregistered`. `image_type` computes the first
from the image and whether it has members; `skylens.db.ims.of_type` is its SQL
twin, and a test proves they agree. Every image the service holds is registered:
Skylens has no registration step after which an IMS image becomes usable.

IMS serves two releases of the Image API on one endpoint, chosen per request by
the `X-Api-Version` header: a letter after M selects Queens, M or earlier (or no
header) Mitaka.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from skylens.domain.images import Image, Visibility


class ImageType(StrEnum):
    GOLD = "gold"  # a public platform image
    PRIVATE = "private"  # an image of its owner's alone
    SHARED = "shared"  # an image shared with other projects


class ApiRelease(StrEnum):
    MITAKA = "mitaka"
    QUEENS = "queens"


def image_type(image: Image, has_members: bool) -> ImageType:
    """`gold` for public images, `shared` for shared images that have members,
    `private` for every other (private, community, shared with nobody yet).

    The image type depends on the image alone, never on the caller: the list
    already holds only what the caller may see, so for a project `shared` means
    "shared with us" or "ours, shared out", as IMS has it.
    """
    if image.visibility is Visibility.PUBLIC:
        return ImageType.GOLD
    if image.visibility is Visibility.SHARED and has_members:
        return ImageType.SHARED
    return ImageType.PRIVATE


def release_of(header: str | None) -> ApiRelease | None:
    """The release `X-Api-Version` asks for; None when the value is no release name.

    Only its first character counts, case-insensitively ("Queens", "q", "R"...);
    no header at all means Mitaka, as in IMS.
    """
    if header is None:
        return ApiRelease.MITAKA
    letter = header.strip()[:1].upper()
    if not ("A" <= letter <= "Z"):
        return None
    return ApiRelease.QUEENS if letter > "M" else ApiRelease.MITAKA


@dataclasses.dataclass(frozen=True, slots=True)
class ImsQuery:
    """What the IMS profile adds to a list query."""

    image_type: ImageType | None = None
    registered: bool = True  # `__isregistered=false`: no image is unregistered
    # Non-empty: the images with any of these visibilities, in place of the
    # `visibility` filter (a Mitaka filter reaches what Mitaka showed that way).
    visibilities: tuple[Visibility, ...] = ()
    # `tag=key=value` also finds the legacy tag `key.value`.
    legacy_tags: bool = True


def mitaka_visibility_filter(visibility: Visibility) -> tuple[Visibility, ...]:
    """The images a Mitaka `visibility` filter asks for: those it shows so, plus,
    for `shared`, Mitaka's "shared with me" (the `shared` images)."""
    if visibility is Visibility.COMMUNITY:
        return ()  # no such value in Mitaka
    if visibility is Visibility.SHARED:
        return (Visibility.SHARED,)
    return tuple(v for v in Visibility if mitaka_visibility(v) is visibility)


def mitaka_visibility(visibility: Visibility) -> Visibility:
    """What a Mitaka client is told: Mitaka knew only public and private.

    A shared image was a private image with members then, so it reads
    `private`; a community image, readable by every project, reads `public`.
    """
    if visibility is Visibility.SHARED:
        return Visibility.PRIVATE
    if visibility is Visibility.COMMUNITY:
        return Visibility.PUBLIC
    return visibility


def legacy_tag(tag: str) -> str | None:
    """The `key.value` form that IMS tags had before `key=value`, or None."""
    key, sep, value = tag.partition("=")
    return f"{key}.{value}" if sep else None
