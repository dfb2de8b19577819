"""What the storage tests share: part sizes and fresh bucket/container names."""

from __future__ import annotations

import uuid

MIB = 1 << 20
# The smallest part S3 allows (and Swift's s3api, like AWS, enforces it), so a blob of
# a few MiB already takes several parts.
PART = 5 * MIB


def unique_name(prefix: str) -> str:
    """A fresh bucket or container name, valid for S3 too (DNS-style, lowercase)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
