"""What the service learns about image data while it streams in."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class DataFormat:
    """The inspector's verdict: the detected format and whether it is safe."""

    name: str | None  # None: no format could be told apart from raw data
    virtual_size: int | None
    unsafe_reason: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class DataDigest:
    size: int
    checksum: str  # md5, kept for older clients
    hash_algo: str
    hash_value: str
    format: DataFormat


@dataclasses.dataclass(frozen=True, slots=True)
class DiskImageInfo:
    """What `qemu-img info` says of an image file."""

    format: str | None
    virtual_size: int | None
    has_backing_file: bool
    has_data_file: bool
    vmdk_create_type: str | None = None


class DiskImageToolFailed(Exception):
    """`qemu-img` refused or failed; the message is for the log."""
