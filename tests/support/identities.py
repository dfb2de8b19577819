"""Who a test request claims to be (trusted-headers mode)."""

from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass(frozen=True)
class Identity:
    project: str
    user: str
    roles: tuple[str, ...]

    @property
    def headers(self) -> dict[str, str]:
        return {
            "X-Project-Id": self.project,
            "X-User-Id": self.user,
            "X-Roles": ",".join(self.roles),
        }

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def new_project() -> str:
    return uuid.uuid4().hex


def member_of(project: str) -> Identity:
    return Identity(project, f"user-{project[:8]}", ("member", "reader"))


def reader_of(project: str) -> Identity:
    return Identity(project, f"reader-{project[:8]}", ("reader",))


def admin_of(project: str) -> Identity:
    return Identity(project, f"admin-{project[:8]}", ("admin", "member", "reader"))
