"""Schemathesis hooks for tests/api/test_schemathesis.py (loaded through
SCHEMATHESIS_HOOKS): the Image API's JSON Patch media types are JSON."""

from __future__ import annotations

import schemathesis

from tests.support.images import PATCH_V21

PATCH_V20 = "application/openstack-images-v2.0-json-patch"

schemathesis.serializer.alias([PATCH_V21, PATCH_V20], "application/json")
