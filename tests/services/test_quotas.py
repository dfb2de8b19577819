"""`QuotaService`: what a write claims on its project's limits, and the usage
`GET /v2/info/usage` reports, from the configured quota source."""

from __future__ import annotations

from skylens.domain.access import RequestContext
from skylens.domain.quotas import MIB, QuotaClaim, Resource, ResourceUsage
from tests.support.identities import new_project
from tests.support.in_process import Services, ServicesFactory


def test_without_a_quota_system_nothing_is_claimed_nor_reported(
    services: Services, owner: RequestContext, project: str
) -> None:
    services.active(owner)

    assert services.quotas.claims(project, {Resource.IMAGE_COUNT_TOTAL: 1}) == []
    assert services.quotas.size_budget(project) is None
    assert services.quotas.usage(owner) == []


def test_a_write_claims_only_the_resources_its_project_is_limited_in(
    make_services: ServicesFactory, project: str
) -> None:
    services = make_services(
        quotas={Resource.IMAGE_COUNT_TOTAL: 10, Resource.IMAGE_SIZE_TOTAL: -1},
        project_quotas={project: {Resource.IMAGE_COUNT_TOTAL: 3}},
    )
    deltas = {Resource.IMAGE_COUNT_TOTAL: 1, Resource.IMAGE_SIZE_TOTAL: 5}

    assert services.quotas.claims(project, deltas) == [QuotaClaim(Resource.IMAGE_COUNT_TOTAL, 3, 1)]
    assert services.quotas.claims(new_project(), deltas) == [
        QuotaClaim(Resource.IMAGE_COUNT_TOTAL, 10, 1)
    ]
    assert services.quotas.claims(None, deltas) == []  # an image of no project


def test_usage_reports_every_resource_with_sizes_in_whole_mib(
    make_services: ServicesFactory, owner: RequestContext
) -> None:
    services = make_services(
        quotas={
            Resource.IMAGE_SIZE_TOTAL: 100,
            Resource.IMAGE_STAGE_TOTAL: 50,
            Resource.IMAGE_COUNT_TOTAL: 10,
            Resource.IMAGE_COUNT_UPLOADING: 2,
        }
    )
    services.active(owner, b"x" * (MIB + MIB // 2))
    services.active(owner, b"x" * MIB)
    services.create(owner)

    assert services.quotas.usage(owner) == [
        ResourceUsage(Resource.IMAGE_SIZE_TOTAL, 100, 2),
        ResourceUsage(Resource.IMAGE_STAGE_TOTAL, 50, 0),
        ResourceUsage(Resource.IMAGE_COUNT_TOTAL, 10, 3),
        ResourceUsage(Resource.IMAGE_COUNT_UPLOADING, 2, 0),
    ]


def test_every_copy_of_the_data_counts_against_the_size_budget(
    make_services: ServicesFactory, owner: RequestContext, project: str
) -> None:
    services = make_services(quotas={Resource.IMAGE_SIZE_TOTAL: 2})
    image = services.active(owner, b"x" * 1000)
    assert services.quotas.size_budget(project) == 2 * MIB - 1000

    services.repository.update(
        image.id, lambda i: i.with_changes(i.updated_at, stores=("local", "cheap"))
    )

    assert services.quotas.size_budget(project) == 2 * MIB - 2000
