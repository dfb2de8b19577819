"""A server started with a property protection file (Glance's roles format)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import RunningServer, dedicated_server

ENV = "SKYLENS_IMAGES_PROPERTY_PROTECTION_FILE"
PROTECTIONS = r"""
# Sections are tried in this order; the first found in the name decides.
[^x_billing_]
create = admin
read = admin,member
update = admin
delete = admin

[^x_open_]
create = @
read = @
update = @
delete = @

[^x_sealed_]
create = !
read = !
update = !
delete = !

# Members may set it, only admins see it.
[^x_secret$]
create = member
read = admin
update = admin
delete = admin

[^x_]
create = member
read = reader
update = member
delete = member

# openstacksdk's create_image records these on every image it makes.
[^owner_specified\.openstack\.]
create = member
read = reader
update = member
delete = member
"""


@contextlib.contextmanager
def protected_server(data_dir: Path, backend: str) -> Iterator[RunningServer]:
    """`skylens serve` on `backend` (sqlite or postgresql) with PROTECTIONS in force."""
    rules = data_dir / "property-protections.conf"
    data_dir.mkdir(parents=True, exist_ok=True)
    rules.write_text(PROTECTIONS)
    with dedicated_server(data_dir, backend, extra_env={ENV: str(rules)}) as server:
        yield server
