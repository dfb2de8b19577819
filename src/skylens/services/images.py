"""Image catalogue use cases: create, show, list, change, delete."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from skylens.domain.access import Action, RequestContext, as_seen_by, is_visible
from skylens.domain.changes import (
    Change,
    ImageLimits,
    LocationChange,
    apply_changes,
    check_counts,
)
from skylens.domain.errors import (
    Forbidden,
    ForeignOwnerForbidden,
    ImageNotFound,
    LimitExceeded,
    NotFound,
    OwnerChangeForbidden,
)
from skylens.domain.images import (
    Image,
    ImageStatus,
    MemberStatus,
    Visibility,
    check_minimums,
    check_property_name,
    utc_now,
)
from skylens.domain.ims import ImageType, image_type
from skylens.domain.listing import ImagePage, ListQuery
from skylens.domain.policy import authorize
from skylens.domain.ports import ImageReads, ImageRepository, Policy, PropertyProtections
from skylens.domain.protections import PropertyOperation, PropertyRules, restore_hidden
from skylens.domain.quotas import QuotaClaim, Resource
from skylens.services.quotas import QuotaService


@dataclasses.dataclass(frozen=True, slots=True)
class NewImage:
    """A validated create request: core attributes, free-form properties, tags."""

    image_id: str | None = None
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    properties: Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    tags: frozenset[str] = frozenset()


class ImageService:
    def __init__(
        self,
        repository: ImageRepository,
        limits: ImageLimits,
        policy: Policy,
        quotas: QuotaService,
        clock: Callable[[], Any] = utc_now,
        protections: PropertyProtections | None = None,
        *,
        reads: ImageReads,
    ) -> None:
        self._repository = repository
        self._reads = reads  # the hot reads (show, list), awaited
        self._limits = limits
        self._policy = policy
        self._quotas = quotas
        self._clock = clock
        self._protections = protections

    # -- reading ---------------------------------------------------------------

    def get(self, context: RequestContext, image_id: str) -> Image:
        return as_seen_by(self.visible(context, image_id, ImageNotFound), context)

    async def show(self, context: RequestContext, image_id: str) -> Image:
        """`get` on the hot path: the reads awaited through `ImageReads`, no thread."""
        image = self._shown(context, await self._reads.get(image_id), image_id, ImageNotFound)
        membership = None
        if _needs_membership(context, image):
            assert context.project_id is not None
            membership = await self._reads.membership(image_id, context.project_id)
        image = _checked_visible(context, image, membership, ImageNotFound)
        if not self._policy.allows(context, Action.GET_IMAGE, image):
            raise ImageNotFound(image_id)
        return as_seen_by(image, context)

    async def page(self, context: RequestContext, query: ListQuery) -> ImagePage:
        """`list` on the hot path: the reads awaited through `ImageReads`, no thread."""
        authorize(self._policy, context, Action.GET_IMAGES)
        rules = self._rules()
        if _matches_nothing(context, query, rules):
            return ImagePage((), None)
        return _page_shown(context, await self._reads.list(context, query), rules)

    def visible(
        self, context: RequestContext, image_id: str, missing: Callable[[str], NotFound]
    ) -> Image:
        """The image, if the caller may see it and `get_image` allows it; otherwise
        `missing(image_id)`: Glance answers a refused `get_image` with 404 too."""
        image = self._visible(context, image_id, missing)
        if not self._policy.allows(context, Action.GET_IMAGE, image):
            raise missing(image_id)
        return image

    def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        authorize(self._policy, context, Action.GET_IMAGES)
        rules = self._rules()
        if _matches_nothing(context, query, rules):
            return ImagePage((), None)
        return _page_shown(context, self._repository.list(context, query), rules)

    def image_types(self, images: Sequence[Image]) -> dict[str, ImageType]:
        """The IMS `__imagetype` of each of `images` (already shown to the caller)."""
        candidates = [image.id for image in images if image.visibility is Visibility.SHARED]
        shared = self._repository.shared_out(candidates) if candidates else set()
        return {image.id: image_type(image, image.id in shared) for image in images}

    # -- writing ---------------------------------------------------------------

    def create(self, context: RequestContext, request: NewImage) -> Image:
        now = self._clock()
        attributes = dict(request.attributes)
        owner = attributes.pop("owner", context.project_id)
        # As Glance: only an admin creates an image without owner, and only by asking.
        if (owner is None or owner != context.project_id) and not context.is_admin:
            raise ForeignOwnerForbidden(owner)
        rules = self._rules()
        if rules is not None:
            rules.check_all(context, request.properties, PropertyOperation.CREATE)
        visibility = Visibility(attributes.pop("visibility", Visibility.SHARED))
        check_minimums(attributes)
        for name in request.properties:
            check_property_name(name)
        image = Image(
            id=request.image_id or str(uuid.uuid4()),
            owner=owner,
            status=ImageStatus.QUEUED,
            visibility=visibility,
            created_at=now,
            updated_at=now,
            tags=request.tags,
            properties=dict(request.properties),
            **attributes,
        )
        authorize(self._policy, context, Action.ADD_IMAGE, image)
        self._authorize_visibility(context, image, None)
        check_counts(image, self._limits)
        # The owner's count, where Glance counts the caller's project: the same for
        # everyone but an admin creating for another project, whose count then grows.
        self._repository.add(image, self._quotas.claims(owner, {Resource.IMAGE_COUNT_TOTAL: 1}))
        return image if rules is None else rules.shown(context, image)

    def update(
        self,
        context: RequestContext,
        image_id: str,
        changes: Iterable[Change],
        *,
        add_replaces: bool = True,
        locations: LocationChange | None = None,
    ) -> Image:
        changes = tuple(changes)
        return self.update_with(
            context,
            image_id,
            lambda _image: changes,
            add_replaces=add_replaces,
            locations=locations,
        )

    def update_with(
        self,
        context: RequestContext,
        image_id: str,
        plan: Callable[[Image], Iterable[Change]],
        *,
        add_replaces: bool = True,
        locations: LocationChange | None = None,
    ) -> Image:
        """`update` with the changes `plan` makes of the image as the caller sees it,
        inside the same atomic update (e.g. "remove every property but these")."""
        rules = self._rules()
        change = self._updating(context, rules, plan, add_replaces, locations)
        updated = self.change(context, image_id, Action.MODIFY_IMAGE, change)
        return as_seen_by(updated if rules is None else rules.shown(context, updated), context)

    def try_update(
        self,
        context: RequestContext,
        image_id: str,
        changes: Sequence[Change],
        locations: LocationChange,
        add_replaces: bool,
    ) -> Image:
        """What `update` would make of the image as it is now, written nowhere: it
        raises whatever `update` would refuse. For a caller with slow work to do
        before the update (a new location's size read from its URL), so that a
        request refused anyway costs nothing slow."""
        change = self._updating(context, self._rules(), lambda _: changes, add_replaces, locations)
        return change(self._writable(context, image_id, Action.MODIFY_IMAGE))

    def _updating(
        self,
        context: RequestContext,
        rules: PropertyRules | None,
        plan: Callable[[Image], Iterable[Change]],
        add_replaces: bool,
        locations: LocationChange | None,
    ) -> Callable[[Image], Image]:
        def change(image: Image) -> Image:
            # The caller changes the image as it sees it; what it cannot see stays.
            shown = image if rules is None else rules.shown(context, image)
            guard = None if rules is None else functools.partial(rules.check, context)
            changed = apply_changes(
                shown,
                plan(shown),
                self._clock(),
                add_replaces=add_replaces,
                guard=guard,
                locations=locations,
            )
            self._authorize_owner_change(context, shown, changed)
            self._authorize_visibility(context, changed, shown)
            # Counted as the caller sees the image: hidden properties must not show.
            check_counts(changed, self._limits, before=shown)
            return restore_hidden(changed, image, shown)

        return change

    def delete(self, context: RequestContext, image_id: str) -> Image:
        """Delete the image record; returns it as it was last (its `stores` included)."""

        def change(image: Image) -> Image:
            if image.protected:
                raise Forbidden(f"Image {image.id} is protected and cannot be deleted.")
            return image.with_status(ImageStatus.DELETED, self._clock())

        return self.change(context, image_id, Action.DELETE_IMAGE, change, _missing_for_delete)

    def deactivate(self, context: RequestContext, image_id: str) -> None:

        def change(image: Image) -> Image:
            if image.status is ImageStatus.DEACTIVATED:
                return image
            if image.status is not ImageStatus.ACTIVE:
                raise Forbidden(f"Not allowed to deactivate image in status '{image.status}'")
            return image.with_status(ImageStatus.DEACTIVATED, self._clock())

        self.change(context, image_id, Action.DEACTIVATE, change)

    def reactivate(self, context: RequestContext, image_id: str) -> None:

        def change(image: Image) -> Image:
            if image.status is ImageStatus.ACTIVE:
                return image
            if image.status is not ImageStatus.DEACTIVATED:
                raise Forbidden(f"Not allowed to reactivate image in status '{image.status}'")
            return image.with_status(ImageStatus.ACTIVE, self._clock())

        self.change(context, image_id, Action.REACTIVATE, change)

    def add_tag(self, context: RequestContext, image_id: str, tag: str) -> None:

        def change(image: Image) -> Image:
            if tag in image.tags:
                return image
            tagged = image.with_changes(self._clock(), tags=image.tags | {tag})
            try:
                check_counts(tagged, self._limits, before=image)
            except LimitExceeded as error:
                raise LimitExceeded(
                    f"Image tag limit exceeded for image {image.id}: {error.message}:"
                ) from None
            return tagged

        self.change(context, image_id, Action.MODIFY_IMAGE, change, _missing_for_tags)

    def remove_tag(self, context: RequestContext, image_id: str, tag: str) -> None:

        def change(image: Image) -> Image:
            if tag not in image.tags:
                raise NotFound("The resource could not be found.")
            return image.with_changes(self._clock(), tags=image.tags - {tag})

        self.change(context, image_id, Action.MODIFY_IMAGE, change, _missing_for_tags)

    def change(
        self,
        context: RequestContext,
        image_id: str,
        action: Action,
        change: Callable[[Image], Image],
        missing: Callable[[str], NotFound] = ImageNotFound,
        claims: Callable[[Image], Sequence[QuotaClaim]] | None = None,
    ) -> Image:
        """Apply `change` atomically to an image the caller may see and `action`,
        with the quota `claims` it makes, if any, on the image's owner."""
        self._writable(context, image_id, action, missing)
        return self._repository.update(image_id, change, claims)

    # -- rules -----------------------------------------------------------------

    def _rules(self) -> PropertyRules | None:
        return None if self._protections is None else self._protections.current()

    def _visible(
        self,
        context: RequestContext,
        image_id: str,
        missing: Callable[[str], NotFound] = ImageNotFound,
    ) -> Image:
        image = self._shown(context, self._repository.get(image_id), image_id, missing)
        membership = None
        if _needs_membership(context, image):
            assert context.project_id is not None
            membership = self._repository.membership(image_id, context.project_id)
        return _checked_visible(context, image, membership, missing)

    def _shown(
        self,
        context: RequestContext,
        image: Image | None,
        image_id: str,
        missing: Callable[[str], NotFound],
    ) -> Image:
        if image is None:
            raise missing(image_id)
        rules = self._rules()
        # As Glance: every use of the image sees only the properties the caller may read.
        return image if rules is None else rules.shown(context, image)

    def _writable(
        self,
        context: RequestContext,
        image_id: str,
        action: Action,
        missing: Callable[[str], NotFound] = ImageNotFound,
    ) -> Image:
        image = self._visible(context, image_id, missing)
        if not self._policy.allows(context, action, image) and not self._policy.allows(
            context, Action.GET_IMAGE, image
        ):
            # Glance's ImageAPIPolicy: a refusal is a 404 to whom get_image refuses too.
            raise NotFound("The resource could not be found.")
        authorize(self._policy, context, action, image)
        return image

    def _authorize_visibility(
        self, context: RequestContext, image: Image, before: Image | None
    ) -> None:
        if before is not None and before.visibility is image.visibility:
            return
        if image.visibility is Visibility.PUBLIC:
            authorize(self._policy, context, Action.PUBLICIZE_IMAGE, image)
        elif image.visibility is Visibility.COMMUNITY:
            authorize(self._policy, context, Action.COMMUNITIZE_IMAGE, image)

    @staticmethod
    def _authorize_owner_change(context: RequestContext, before: Image, after: Image) -> None:
        if before.owner != after.owner and not context.is_admin:
            raise OwnerChangeForbidden()


def _missing_for_delete(image_id: str) -> NotFound:
    return ImageNotFound(image_id, f"Failed to find image {image_id} to delete")


def _missing_for_tags(image_id: str) -> NotFound:
    return NotFound(f"Image {image_id} not found.")


def _needs_membership(context: RequestContext, image: Image) -> bool:
    """Whether the caller's membership decides if it may see `image`."""
    return (
        image.visibility is Visibility.SHARED
        and context.project_id is not None
        and image.owner != context.project_id
    )


def _checked_visible(
    context: RequestContext,
    image: Image,
    membership: MemberStatus | None,
    missing: Callable[[str], NotFound],
) -> Image:
    if not is_visible(image, context, membership):
        raise missing(image.id)
    return image


def _matches_nothing(
    context: RequestContext, query: ListQuery, rules: PropertyRules | None
) -> bool:
    """To this caller no image has a property the query filters on."""
    return rules is not None and not rules.readable(context, query.properties)


def _page_shown(context: RequestContext, page: ImagePage, rules: PropertyRules | None) -> ImagePage:
    """The page as the caller sees it: only the properties it may read."""
    shown = (image if rules is None else rules.shown(context, image) for image in page.images)
    return ImagePage(tuple(as_seen_by(image, context) for image in shown), page.next_marker)
