"""Protocols the outer layers implement for the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

from skylens.domain.access import Action, RequestContext
from skylens.domain.data import DataFormat, DiskImageInfo
from skylens.domain.images import Image, ImageStatus, MemberStatus
from skylens.domain.listing import ImagePage, ListQuery
from skylens.domain.members import ImageMember
from skylens.domain.metadefs import MetadefPolicy
from skylens.domain.protections import PropertyRules
from skylens.domain.quotas import QuotaClaim, Resource
from skylens.domain.tasks import Lease, Task, TaskStatus

P = ParamSpec("P")
T = TypeVar("T")


class Offload(Protocol):
    """Where a service runs a call that may block (on the database, a store, a lock)
    so that the event loop keeps serving. The composition root gives each kind of work
    its own strategy, sized for it (threads as many as the database pool has
    connections, say)."""

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`function(*args, **kwargs)`, run where this strategy runs calls."""
        ...


class Policy(MetadefPolicy, Protocol):
    """Decides Glance's policy rules (`Action`) for a caller, over an image if any;
    and its metadef rules (`MetadefPolicy`), so one policy file governs both."""

    def allows(self, context: RequestContext, action: Action, image: Image | None = None) -> bool:
        """True if the rule named `action` allows the caller; never raises."""


class PropertyProtections(Protocol):
    """Where the property protection rules come from (a file, re-read on change)."""

    def current(self) -> PropertyRules:
        """The rules in force now; a request asks once and keeps them throughout."""


class ImageRepository(Protocol):
    def add(self, image: Image, claims: Sequence[QuotaClaim] = ()) -> None:
        """Insert a new image; raise `Conflict` if its id was ever used.

        Each of `claims` is checked against the owner's usage in the same transaction,
        serialised with every other claiming write of that project, so concurrent
        writes never take it past a limit; raise `QuotaExceeded` if one cannot be met.
        """

    def get(self, image_id: str) -> Image | None:
        """The live image with this id, whoever owns it."""

    def data_locations(
        self, image_ids: Sequence[str]
    ) -> dict[str, tuple[ImageStatus, tuple[str, ...]]]:
        """For each live image among `image_ids`: its status and the stores holding
        its data (images deleted or never created are absent)."""

    def membership(self, image_id: str, project_id: str) -> MemberStatus | None:
        """The project's member status on the image, if it is a member."""

    def update(
        self,
        image_id: str,
        change: Callable[[Image], Image],
        claims: Callable[[Image], Sequence[QuotaClaim]] | None = None,
    ) -> Image:
        """Apply `change` to the current image atomically and store the result.

        Writers of one image take turns: `change` runs once, on the image as the
        previous writer left it, while the image is locked against other writers,
        so it must be a pure function of the image it is given (no waiting).
        A result whose status is `deleted` removes the image and retires its id
        for good. Raise `ImageNotFound` when the image is gone. `claims` are checked
        (a function of the image as it is) are checked against its owner's usage before
        the change is stored, as for `add`.
        """

    def usage(
        self, project_id: str, resources: Iterable[Resource] = tuple(Resource)
    ) -> Mapping[Resource, int]:
        """The project's use of each of `resources` (bytes for sizes)."""

    def list(self, context: RequestContext, query: ListQuery) -> ImagePage:
        """One page of the images the caller may list, filtered and ordered."""

    def shared_out(self, image_ids: Sequence[str]) -> set[str]:
        """Those of `image_ids` that have at least one member, in any status."""

    def members(self, image_id: str) -> Sequence[ImageMember]:
        """Every membership of the image, oldest first."""

    def add_member(self, member: ImageMember, quota: int) -> None:
        """Add a membership unless the image already has `quota` of them (negative:
        no limit), atomically even against concurrent adds; raise
        `MemberLimitExceeded`, `Conflict` for a duplicate, `ImageNotFound`."""

    def set_member_status(
        self, image_id: str, member_id: str, status: MemberStatus, now: dt.datetime
    ) -> ImageMember | None:
        """Change a membership's status; None if there is no such membership."""

    def remove_member(self, image_id: str, member_id: str) -> bool:
        """Remove a membership; False if there was none."""

    def renew_upload(self, image_id: str, now: dt.datetime, holder: str | None = None) -> None:
        """Take or renew the lease of the upload in progress to the image; `holder`
        names the process (for an operator)."""

    def end_upload(self, image_id: str) -> None:
        """Drop the image's upload lease (the upload ended, either way)."""

    def live_uploads(self, renewed_since: dt.datetime) -> Sequence[str]:
        """Images whose upload lease was renewed at or after `renewed_since`: uploads
        in progress, whose uncommitted data the sweep must leave alone."""

    def stale_uploads(self, renewed_before: dt.datetime) -> Sequence[str]:
        """Images whose upload lease was last renewed before `renewed_before`: saving
        (or being staged: uploading without a size) images whose uploader died, or in
        that status with no lease, changed before then; and leases left by uploaders
        that died after their image went."""


class ImageReads(Protocol):
    """The catalogue's hot reads (show, list), awaited where the request runs.

    As `ImageRepository`'s methods of the same names. An implementation never
    blocks the event loop: it awaits an asynchronous driver, or runs the
    repository where an `Offload` runs it.
    """

    async def get(self, image_id: str) -> Image | None: ...

    async def membership(self, image_id: str, project_id: str) -> MemberStatus | None: ...

    async def list(self, context: RequestContext, query: ListQuery) -> ImagePage: ...


class TaskRepository(Protocol):
    """Task rows, and the leases workers hold on them while they work."""

    def get(self, task_id: str) -> Task | None: ...

    def list(
        self,
        *,
        owner: str | None,
        image_id: str | None = None,
        status: TaskStatus | None = None,
        limit: int = 25,
        marker: Task | None = None,
        descending: bool = True,
        sort_key: str = "created_at",
    ) -> Sequence[Task]:
        """Tasks by `sort_key` (one of `TASK_SORT_KEYS`), then creation time and id
        (all descending unless not `descending`), after `marker`; only `owner`'s
        unless None."""

    def add(self, task: Task, lease: Lease | None = None) -> None:
        """Store a new task; with `lease`, no worker claims it before `release`
        (or before the lease lapses, when its creator died meanwhile)."""

    def release(self, task_id: str) -> None:
        """Let workers claim a task its creator held."""

    def claim(
        self, holder: str, now: dt.datetime, lease_for: dt.timedelta
    ) -> tuple[Task, Lease] | None:
        """Atomically take the oldest unfinished task that no live lease holds (with
        its `auth_token`, which only a claim reads)."""

    def renew(
        self, lease: Lease, now: dt.datetime, lease_for: dt.timedelta, message: str | None = None
    ) -> Lease | None:
        """Extend a lease still held (recording `message`); None once it was lost."""

    def save(self, lease: Lease, task: Task) -> bool:
        """Store the task's status, result and message under a lease still held
        (a finished task's lease and `auth_token` end); False when the lease was lost."""

    def purge(self, now: dt.datetime) -> int:
        """Delete finished tasks whose `expires_at` has passed; how many."""


class Authenticator(Protocol):
    async def authenticate(self, headers: Mapping[str, str]) -> RequestContext:
        """The identity the request carries; raise `NotAuthenticated` if none."""


class BodySource(Protocol):
    """A request body on its way in, read into the caller's own buffers (so the bytes
    are not copied on the way, when the server can help it)."""

    async def readinto(self, buffer: memoryview) -> int:
        """Fill `buffer` with the next bytes of the body and say how many there were:
        fewer than `len(buffer)` only when the body has ended (0 once it has). Raise when
        the body cannot be read to its end (the client went away)."""
        ...


class RemoteBody(BodySource, Protocol):
    """The body of a web source (web-download's URI) on its way in. A dropped
    connection is resumed where it broke, within bounds, as if nothing happened;
    otherwise `readinto` raises (`RemoteSourceFailed`, `ImageTooLarge`)."""

    @property
    def size(self) -> int | None:
        """The size the source announced (Content-Length), if it did."""
        ...

    async def aclose(self) -> None:
        """Drop the connection; call it however the reading ended."""


class RemoteSource(Protocol):
    """Opens web sources, through the import URI filter."""

    async def open(
        self,
        uri: str,
        size_cap: int,
        headers: Sequence[tuple[str, str]] = (),
        start: int = 0,
    ) -> RemoteBody:
        """Connect, following redirects, until the body of `uri` starts (from byte
        `start`, asked for with `Range`, when above 0); raise
        `ImportUriRefused` if the filter refuses the URI or any hop, `RemoteSourceFailed`
        if it cannot be fetched, `ImageTooLarge` if it announces more than `size_cap`.
        `headers` (credentials) go with every request to `uri`'s own origin, and to
        no other (a redirect elsewhere does not get them)."""
        ...


class ServiceCatalogue(Protocol):
    """The OpenStack service catalogue a token carries (Keystone's)."""

    def endpoint(self, token: str, service_type: str, region: str, interface: str) -> str | None:
        """The URL of the `service_type` service at `interface` (public, internal,
        admin) in `region` (any case), as `token`'s catalogue lists it; None if it
        lists none. Raise `NotAuthenticated` when the identity service refuses the
        token, `IdentityUnavailable` when it cannot be asked. Blocking."""
        ...


class BlobWriter(Protocol):
    """Bytes on their way into a store; nothing is visible under the key until
    `commit` returns, and `abort` leaves nothing behind (it is safe after a failed
    `commit`, and does nothing after a successful one). The methods block (on the
    network, for object stores): call them from a worker thread, one call at a time."""

    def write(self, data: bytes | memoryview) -> None:
        """Take the bytes; `data` is reused once this returns, so keep a copy if needed."""

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    """One small interface over every backend: keys and bytes, nothing of images.

    Optional abilities are methods that may decline (return None).
    """

    @property
    def name(self) -> str: ...

    def writer(self, key: str) -> BlobWriter:
        """Start writing `key`; a committed blob with that key is replaced atomically."""

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes [start, end) of the blob; `BlobNotFound` if there is none."""

    def size(self, key: str) -> int | None:
        """The committed blob's size, or None when there is none."""

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing blob is not an error."""

    def keys(self, older_than: float = 0.0) -> Iterator[str]:
        """Every committed key, or with `older_than` those last written at least that
        many seconds ago (for the orphan sweep, which must not race a fresh commit)."""

    def sweep_uncommitted(self, older_than: float, live: Collection[str] = ()) -> int:
        """Remove the leftovers of uncommitted writes that have seen no write for
        `older_than` seconds (a killed process's); return how many writes' worth.
        Writes to the keys in `live` are left alone whatever their age: their upload
        is known to be alive (a slow client's write may sit idle for long)."""

    def local_path(self, key: str) -> Path | None:
        """A local file holding the blob, for zero-copy sending; None declines."""

    def details(self) -> Mapping[str, object]:
        """The store's settings an administrator may see (never credentials)."""


class FormatInspector(Protocol):
    """Looks at image data as it streams past, once, without keeping it."""

    def feed(self, data: bytes | memoryview) -> None:
        """Look at the bytes; `data` is reused once this returns."""

    def verdict(self) -> DataFormat:
        """Call once, after the last `feed`."""
        ...


class DiskImageTool(Protocol):
    """Looks into and converts image files (`qemu-img`); blocking, raises
    `DiskImageToolFailed`."""

    def info(self, path: Path, disk_format: str) -> DiskImageInfo:
        """What the file is, read as `disk_format` (with tight resource limits)."""
        ...

    def convert(self, source: Path, source_format: str, target: Path, target_format: str) -> None:
        """Write `source` converted to `target_format` at `target`."""
