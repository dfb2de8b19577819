"""Handlers for /v2/images/{image_id}/members (API 2.1+)."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from skylens.api.offload import Offload
from skylens.api.requests import read_json, reject_body
from skylens.api.responses import json_response, timestamp
from skylens.api.routing import Operation, Resource
from skylens.domain.access import RequestContext
from skylens.domain.errors import InvalidRequest
from skylens.domain.members import ImageMember, member_status
from skylens.services.members import MemberService

MEMBER_SCHEMA_PATH = "/v2/schemas/member"
MEMBERS_SCHEMA_PATH = "/v2/schemas/members"


def member_view(member: ImageMember) -> dict[str, Any]:
    return {
        "member_id": member.member_id,
        "image_id": member.image_id,
        "status": member.status.value,
        "created_at": timestamp(member.created_at),
        "updated_at": timestamp(member.updated_at),
        "schema": MEMBER_SCHEMA_PATH,
    }


@dataclasses.dataclass(frozen=True)
class MemberHandlers:
    service: MemberService
    reads: Offload
    writes: Offload

    async def index(self, request: Request, context: RequestContext) -> Response:
        members = await self.reads(self.service.list, context, request.path_params["image_id"])
        return json_response(
            {"members": [member_view(m) for m in members], "schema": MEMBERS_SCHEMA_PATH}
        )

    async def create(self, request: Request, context: RequestContext) -> Response:
        document = await read_json(request)
        if not isinstance(document, dict):
            raise InvalidRequest('Expected a member in the form: {"member": "image_id"}')
        if "member" not in document:
            raise InvalidRequest("Member to be added not specified")
        member_id = document["member"]
        if not member_id:
            raise InvalidRequest("Member can't be empty")
        if not isinstance(member_id, str):
            # Glance stores whatever JSON value it gets; a project id is a string.
            raise InvalidRequest('Expected a member in the form: {"member": "image_id"}')
        member = await self.writes(
            self.service.add, context, request.path_params["image_id"], member_id
        )
        return json_response(member_view(member))  # 200, as in Glance

    async def show(self, request: Request, context: RequestContext) -> Response:
        member = await self.reads(
            self.service.get,
            context,
            request.path_params["image_id"],
            request.path_params["member_id"],
        )
        return json_response(member_view(member))

    async def update(self, request: Request, context: RequestContext) -> Response:
        document = await read_json(request)
        if not isinstance(document, dict):
            raise InvalidRequest('Expected a status in the form: {"status": "status"}')
        if "status" not in document:
            raise InvalidRequest("Status not specified")
        member = await self.writes(
            self.service.set_status,
            context,
            request.path_params["image_id"],
            request.path_params["member_id"],
            lambda: member_status(document["status"]),
        )
        return json_response(member_view(member))

    async def delete(self, request: Request, context: RequestContext) -> Response:
        await reject_body(request)
        await self.writes(
            self.service.remove,
            context,
            request.path_params["image_id"],
            request.path_params["member_id"],
        )
        return Response(status_code=204)  # bare: Glance's member delete sets no type


def member_resources(handlers: MemberHandlers) -> list[Resource]:
    errors = (400, 401, 403, 404)
    return [
        Resource(
            "/v2/images/{image_id}/members",
            [
                Operation(
                    "GET",
                    handlers.index,
                    "List the image's members (a member sees only itself)",
                    errors=errors,
                    response_schema="members",
                ),
                Operation(
                    "POST",
                    handlers.create,
                    "Share the image with a project (owner only; 200 as in Glance)",
                    errors=(*errors, 409, 413),
                    request_media_type="application/json",
                    response_schema="member",
                ),
            ],
            tag="members",
        ),
        Resource(
            "/v2/images/{image_id}/members/{member_id}",
            [
                Operation(
                    "GET",
                    handlers.show,
                    "Show a membership",
                    errors=errors,
                    response_schema="member",
                ),
                Operation(
                    "PUT",
                    handlers.update,
                    "Accept, reject or reset a membership (the member only)",
                    errors=errors,
                    request_media_type="application/json",
                    response_schema="member",
                ),
                Operation(
                    "DELETE",
                    handlers.delete,
                    "Stop sharing the image with a project (owner only)",
                    success=204,
                    errors=errors,
                ),
            ],
            tag="members",
        ),
    ]
