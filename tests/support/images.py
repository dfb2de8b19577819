"""Creating and patching images over the raw API, as the api-ref shows requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def create_image(client: httpx.Client, **body: Any) -> dict[str, Any]:
    """POST /v2/images; the created image (asserts 201)."""
    response = client.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    image: dict[str, Any] = response.json()
    return image


def patch_image(
    client: httpx.Client,
    image_id: str,
    operations: Sequence[Any] | Any,
    media_type: str = PATCH_V21,
) -> httpx.Response:
    """PATCH /v2/images/{id} with a json-patch document in `media_type`."""
    return client.patch(
        f"/v2/images/{image_id}", json=operations, headers={"Content-Type": media_type}
    )


def show_image(client: httpx.Client, image_id: str) -> dict[str, Any]:
    response = client.get(f"/v2/images/{image_id}")
    assert response.status_code == 200, response.text
    image: dict[str, Any] = response.json()
    return image
