"""A server started with a property protection file (Glance's roles format)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.servers import RunningServer, postgres_database, skylens_server

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
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{data_dir / 'skylens.db'}"
        else:
            name = f"skylens_protections_{uuid.uuid4().hex[:12]}"
            url = stack.enter_context(postgres_database(name))
        env = {ENV: str(rules)}
        yield stack.enter_context(skylens_server(data_dir, url, backend, extra_env=env))
