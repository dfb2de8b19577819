"""What a project id, user id or role name may look like when a caller or a file
names it: what the database can store (Glance's 255-character columns) and no
control characters (PostgreSQL refuses NUL; none of them belongs in a name)."""

from __future__ import annotations

import re

MAX_LENGTH = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def problem(value: str) -> str | None:
    """Why `value` cannot name an identity, or None if it can."""
    if len(value) > MAX_LENGTH:
        return f"is longer than {MAX_LENGTH} characters"
    if _CONTROL.search(value):
        return "contains a control character"
    return None
