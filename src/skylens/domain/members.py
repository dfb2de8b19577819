"""Image members: the projects a `shared` image is shared with, and their answers."""

from __future__ import annotations

import dataclasses
import datetime as dt

from skylens.domain.errors import InvalidRequest
from skylens.domain.images import MemberStatus

MAX_MEMBER_ID_LENGTH = 255  # the column's length, as in Glance


@dataclasses.dataclass(frozen=True, slots=True)
class ImageMember:
    image_id: str
    member_id: str
    status: MemberStatus
    created_at: dt.datetime
    updated_at: dt.datetime


def member_status(value: object) -> MemberStatus:
    """A status a member may give its membership, or Glance's 400."""
    if isinstance(value, str) and value in MemberStatus.__members__.values():
        return MemberStatus(value)
    raise InvalidRequest('Incorrect request: Status must be "pending", "accepted" or "rejected".')
