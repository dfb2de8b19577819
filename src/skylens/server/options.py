"""What the HTTP server layer is told: its limits and whether to use its fast paths.

`skylens.cli` builds a `ServerOptions` from the `[server]` settings; this package
never reads the configuration itself.
"""

from __future__ import annotations

import dataclasses
import resource

# Descriptors every worker keeps for itself beyond its client connections: the
# database pool, store files, log files, the listening socket, uvloop's own.
RESERVED_DESCRIPTORS = 64
# Connections past the cap that still get a 503 before they are closed; past these,
# a new connection is closed at once, unanswered, so the cap never reaches the
# descriptor limit.
ANSWERED_PAST_CAP = 32
AUTO_CAP = 1000


@dataclasses.dataclass(frozen=True)
class ServerOptions:
    """Defaults are those of `[server]` in docs/configuration.md."""

    fast_paths: bool = True
    max_request_line_bytes: int = 16 << 10
    max_header_line_bytes: int = 16 << 10
    max_header_bytes: int = 64 << 10
    max_header_count: int = 100
    header_timeout_seconds: float = 20.0
    body_read_timeout_seconds: float = 60.0
    max_connections: int = AUTO_CAP

    @property
    def max_head_bytes(self) -> int:
        """Most bytes a request head (request line and headers) may take on the wire."""
        return self.max_request_line_bytes + self.max_header_bytes


def descriptor_limit() -> int:
    """The process's soft limit on open file descriptors."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_cap(configured: int, descriptors: int) -> int:
    """Client connections a worker serves at once: `configured`, or with 0 the most
    that leave room under the descriptor limit, at most AUTO_CAP.

    Raises ValueError when `configured` would not fit under the limit.
    """
    room = descriptors - RESERVED_DESCRIPTORS - ANSWERED_PAST_CAP
    if configured < 0:
        raise ValueError(f"must be 0 (automatic) or positive, not {configured}")
    if configured == 0:
        if room < 1:
            raise ValueError(f"the file descriptor limit ({descriptors}) leaves no room")
        return min(AUTO_CAP, room)
    if configured > room:
        raise ValueError(
            f"{configured} connections do not fit under the file descriptor limit "
            f"({descriptors}; at most {max(room, 0)}): raise `ulimit -n` or lower it"
        )
    return configured
