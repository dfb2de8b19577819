"""Fixtures for the in-process service tests (see `tests.support.in_process`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import sqlalchemy as sa

from skylens.domain.access import RequestContext
from skylens.domain.changes import ImageLimits
from skylens.domain.quotas import Resource
from skylens.services.image_data import UploadLimits
from tests.support.identities import new_project
from tests.support.in_process import (
    Services,
    ServicesFactory,
    admin_of,
    build_services,
    member_of,
    reader_of,
)


@pytest.fixture
def make_services(tmp_path: Path) -> Iterator[ServicesFactory]:
    engines: list[sa.Engine] = []

    def make(
        *,
        quotas: Mapping[Resource, int] | None = None,
        project_quotas: Mapping[str, Mapping[Resource, int]] | None = None,
        limits: ImageLimits | None = None,
        upload: UploadLimits | None = None,
    ) -> Services:
        built = build_services(
            tmp_path / f"skylens-{len(engines)}",
            quotas=quotas,
            project_quotas=project_quotas,
            limits=limits,
            upload=upload,
        )
        engines.append(built.engine)
        return built

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def services(make_services: ServicesFactory) -> Services:
    """The default wiring: no quotas, Glance's default limits and policy."""
    return make_services()


@pytest.fixture
def project() -> str:
    return new_project()


@pytest.fixture
def owner(project: str) -> RequestContext:
    """A member of `project`, which owns the images it creates."""
    return member_of(project)


@pytest.fixture
def reader(project: str) -> RequestContext:
    """A reader of `project`: sees its images, changes nothing."""
    return reader_of(project)


@pytest.fixture
def stranger() -> RequestContext:
    """A member of another project."""
    return member_of(new_project())


@pytest.fixture
def admin() -> RequestContext:
    return admin_of(new_project())
