"""OpenStack Swift as a blob store, natively through python-swiftclient.

A blob smaller than one segment goes up as one PUT at commit. A larger one is a static
large object (SLO): segments go up while the next one fills (at most two segments in
memory per writer, see `parts.py`) into the segments container, under a prefix unique
to the upload, `<key>/<upload id>/`; the manifest PUT at commit
(`?multipart-manifest=put`) is what makes the blob visible. A manifest holds at most
`max_segments` entries (Swift's `max_manifest_segments`, 1,000 by default), so past that
the segments are grouped into sub-manifests of `max_segments` each and the manifest
lists the groups: 16 MiB segments then reach 1,000 x 1,000 x 16 MiB, 15 TiB.

The manifest names its upload in `X-Object-Meta-Skylens-Upload`, which is how the sweep
tells the segments of committed blobs from leftovers, and how a commit that replaces a
blob finds the old segments to delete.

swiftclient (and keystoneauth1, for Keystone) are imported when a store is built, not
with this module.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from typing import Any

from skylens.domain.errors import SkylensError
from skylens.storage.objects import READ_CHUNK, ObjectStore, Opened
from skylens.storage.parts import PartUploader, endpoint_origin

MIB = 1 << 20
DEFAULT_SEGMENT_SIZE = 16 * MIB
MAX_SEGMENT_SIZE = 5 * 1024 * MIB  # Swift's default max_file_size
LISTING_PAGE = 10_000
UPLOAD_HEADER = "X-Object-Meta-Skylens-Upload"
GROUPS_HEADER = "X-Object-Meta-Skylens-Groups"
CONTENT_TYPE = "application/octet-stream"
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


class SwiftStore(ObjectStore):
    """One container of an OpenStack Swift account.

    `auth_version` "1" is tempauth/swauth (`auth_url`, `user`, `key`); "3" is Keystone v3
    (`user` and `key` are the user name and password, with `project_name` and the
    domains), through a keystoneauth1 session that every connection shares.
    `storage_url` overrides the endpoint the auth service names. `create_container`
    creates the container and the segments container (default `<container>_segments`)
    on first use.
    """

    MISSING = ("404",)
    PAST_END = ("416",)
    FULL = ("413", "507")  # a container or account quota; full disks

    def __init__(
        self,
        name: str,
        *,
        auth_url: str,
        user: str,
        key: str,
        container: str,
        auth_version: str = "1",
        project_name: str | None = None,
        user_domain_name: str = "Default",
        project_domain_name: str = "Default",
        region_name: str | None = None,
        interface: str = "public",
        storage_url: str | None = None,
        segments_container: str | None = None,
        create_container: bool = False,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_segments: int = 1000,
        upload_threads: int = 4,
        timeout: float = 60.0,
        retries: int = 3,
        cacert: str | None = None,
        insecure: bool = False,
    ) -> None:
        if not 1 <= segment_size <= MAX_SEGMENT_SIZE:
            raise ValueError(f"segment_size must be between 1 and {MAX_SEGMENT_SIZE} bytes")
        if max_segments < 2:
            raise ValueError("max_segments must be at least 2")
        if auth_version not in ("1", "3"):
            raise ValueError(f"auth_version must be '1' or '3', not {auth_version!r}")
        if auth_version == "3" and not project_name:
            raise ValueError("Keystone (auth_version '3') needs a project_name")
        import requests.exceptions
        import swiftclient
        import urllib3.exceptions

        self._where = endpoint_origin(auth_url)
        self._auth_version = auth_version
        self._container = container
        self._segments = segments_container or f"{container}_segments"
        self._create_container = create_container
        self._segment_size = segment_size
        self._max_segments = max_segments
        errors: list[type[Exception]] = [
            swiftclient.ClientException,
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
        ]
        options: dict[str, Any] = {
            "retries": retries,
            "timeout": timeout,
            "cacert": cacert,
            "insecure": insecure,
            "os_options": {"object_storage_url": storage_url} if storage_url else {},
        }
        if auth_version == "1":
            options.update(authurl=auth_url, user=user, key=key, auth_version="1")
        else:
            from keystoneauth1 import exceptions as keystone_errors
            from keystoneauth1 import session as keystone_session
            from keystoneauth1.identity import v3

            errors.append(keystone_errors.ClientException)
            password = v3.Password(
                auth_url=auth_url,
                username=user,
                password=key,
                project_name=project_name,
                user_domain_name=user_domain_name,
                project_domain_name=project_domain_name,
            )
            options["session"] = keystone_session.Session(
                auth=password, verify=cacert or not insecure, timeout=timeout
            )
            options["os_options"].update(region_name=region_name, endpoint_type=interface)
        super().__init__(
            name,
            location=f"Swift container {container!r} via {self._where}",
            errors=tuple(errors),
            upload_threads=upload_threads,
        )
        self._connection_class: Any = swiftclient.Connection
        self._client_exception: type[Exception] = swiftclient.ClientException
        self._options = options
        self._idle: list[Any] = []
        self._auth: tuple[str, str] | None = None  # shared by v1 connections
        self._lock = threading.Lock()

    def writer(self, key: str) -> SwiftWriter:
        return SwiftWriter(self, key)

    def size(self, key: str) -> int | None:
        headers = self._head(self._container, key)
        return None if headers is None else int(headers["content-length"])

    def delete(self, key: str) -> None:
        """Delete the blob, and the segments of a large one (`?multipart-manifest=delete`)."""
        headers = self._head(self._container, key)
        if headers is None:
            return
        upload = headers.get(UPLOAD_HEADER.lower())
        groups = int(headers.get(GROUPS_HEADER.lower(), "0"))
        # Swift deletes a manifest's segments itself, but buffers the segments of nested
        # manifests in memory and gives up past 10 x max_manifest_segments: do groups
        # one at a time, then the manifest that lists them.
        for group in range(1, groups + 1):
            self._delete(self._segments, _group_name(key, str(upload), group), manifest=True)
        large = headers.get("x-static-large-object", "").lower() == "true"
        self._delete(self._container, key, manifest=large and not groups)

    def sweep_uncommitted(self, older_than: float, live: Collection[str] = ()) -> int:
        """Delete the segments of uploads that no manifest names, that have been idle
        for more than `older_than` seconds and whose key is not in `live`; return how
        many uploads."""
        cutoff = time.time() - older_than
        removed = 0
        for (key, upload), names, last_active in self._uploads():
            if last_active >= cutoff or key in live:
                continue
            current = self._head(self._container, key)
            if current is not None and current.get(UPLOAD_HEADER.lower()) == upload:
                continue  # the segments of a committed blob
            self._delete_many(self._segments, names)
            removed += 1
        return removed

    def prepare(self) -> None:
        """Create the containers, when so configured."""
        if self._create_container:
            with self._errors("PUT container"), self._connection() as connection:
                connection.put_container(self._container)
                connection.put_container(self._segments)

    def details(self) -> dict[str, object]:
        return {
            "auth_endpoint": self._where,
            "auth_version": self._auth_version,
            "container": self._container,
            "segments_container": self._segments,
            "segment_size": self._segment_size,
        }

    # What the writer needs.

    def _put(self, container: str, name: str, data: bytes) -> dict[str, Any]:
        """PUT one object with its MD5, so Swift refuses bytes damaged on the way."""
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        # Seekable, because swiftclient retries only what it can rewind; closed after,
        # because the connection keeps its last request (and so the bytes) until reused.
        with (
            io.BytesIO(data) as body,
            self._errors("PUT"),
            self._connection() as connection,
        ):
            connection.put_object(
                container,
                name,
                contents=body,
                content_length=len(data),
                etag=etag,
                content_type=CONTENT_TYPE,
            )
        return {"path": f"/{container}/{name}", "etag": etag, "size_bytes": len(data)}

    def _put_manifest(
        self,
        container: str,
        name: str,
        entries: list[dict[str, Any]],
        headers: dict[str, str] | None = None,
    ) -> None:
        body = json.dumps(entries).encode()
        with self._errors("PUT manifest"), self._connection() as connection:
            connection.put_object(
                container,
                name,
                contents=io.BytesIO(body),
                content_length=len(body),
                content_type=CONTENT_TYPE,
                headers=headers,
                query_string="multipart-manifest=put",
            )

    def _upload_of(self, key: str) -> str | None:
        """The upload whose segments the blob's manifest lists, if it is ours and large."""
        headers = self._head(self._container, key)
        return None if headers is None else headers.get(UPLOAD_HEADER.lower())

    def _delete_upload(self, key: str, upload: str) -> None:
        """Delete every segment and group manifest an upload left, found by listing."""
        prefix = f"{key}/{upload}/"
        names = [item["name"] for item in self._listing(self._segments, prefix)]
        self._delete_many(self._segments, names)

    def _delete_many(self, container: str, names: list[str]) -> None:
        for _ in self._executor.map(lambda name: self._delete(container, name), names):
            pass

    # Internals.

    def _head(self, container: str, name: str) -> dict[str, str] | None:
        try:
            with self._connection() as connection:
                headers: dict[str, str] = connection.head_object(container, name)
        except self._errors_caught as error:
            self._unless_missing("HEAD", error)
            return None
        return headers

    def _delete(self, container: str, name: str, *, manifest: bool = False) -> None:
        query = "multipart-manifest=delete" if manifest else None
        try:
            with self._connection() as connection:
                connection.delete_object(container, name, query_string=query)
        except self._errors_caught as error:
            self._unless_missing("DELETE", error)

    def _listing(self, container: str, prefix: str | None = None) -> Iterator[dict[str, Any]]:
        marker = ""
        while True:
            with self._errors("list"), self._connection() as connection:
                _, page = connection.get_container(
                    container, marker=marker, prefix=prefix, limit=LISTING_PAGE
                )
            if not page:
                return
            yield from page
            marker = page[-1]["name"]

    def _uploads(self) -> Iterator[tuple[tuple[str, str], list[str], float]]:
        """Each upload in the segments container: (key, upload id), its objects' names and
        when the newest was written. The listing is sorted, so an upload's objects are
        consecutive. Names that are not ours are left alone."""
        current: tuple[str, str] | None = None
        names: list[str] = []
        last_active = 0.0
        for item in self._listing(self._segments):
            parts = item["name"].rsplit("/", 2)
            if len(parts) != 3 or not _UPLOAD_ID.match(parts[1]):
                continue
            upload = (parts[0], parts[1])
            if upload != current:
                if current is not None:
                    yield current, names, last_active
                current, names, last_active = upload, [], 0.0
            names.append(item["name"])
            last_active = max(last_active, _timestamp(item["last_modified"]))
        if current is not None:
            yield current, names, last_active

    def _open(self, key: str, byte_range: str | None) -> Opened:
        headers = {} if byte_range is None else {"Range": byte_range}
        with contextlib.ExitStack() as stack:
            connection = stack.enter_context(self._connection())
            _, body = connection.get_object(
                self._container, key, headers=headers, resp_chunk_size=READ_CHUNK
            )
            # The connection stays the reader's until the body is read (or fails).
            held = stack.pop_all()
        held.callback(body.close)
        return body, held

    def _committed(self) -> Iterator[tuple[str, float]]:
        for item in self._listing(self._container):
            yield item["name"], _timestamp(item["last_modified"])

    def _status(self, error: Exception) -> tuple[int | None, str]:
        status = getattr(error, "http_status", None)
        return (status if isinstance(status, int) else None), ""

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection of the caller's own (swiftclient's are not thread-safe), back to
        the pool afterwards unless a transport error left it in doubt."""
        with self._lock:
            connection = self._idle.pop() if self._idle else None
            auth = self._auth
        if connection is None:
            preauth = {"preauthurl": auth[0], "preauthtoken": auth[1]} if auth else {}
            connection = self._connection_class(**self._options, **preauth)
        try:
            yield connection
        except BaseException as error:
            if not isinstance(error, self._client_exception):  # an HTTP answer is no doubt
                connection.close()
                raise
            self._release(connection)
            raise
        self._release(connection)

    def _release(self, connection: Any) -> None:
        with self._lock:
            if connection.url and connection.token:
                self._auth = (connection.url, connection.token)
            self._idle.append(connection)


class SwiftWriter:
    """One blob on its way into Swift; see the module docstring."""

    def __init__(self, store: SwiftStore, key: str) -> None:
        self._store = store
        self._key = key
        self._upload = uuid.uuid4().hex
        self._groups: list[dict[str, Any]] = []
        self._finished = False
        self._parts = PartUploader(
            lambda _: store._segment_size,
            self._send_segment,
            store._executor,
            max_parts=store._max_segments**2,
        )

    def write(self, data: bytes | memoryview) -> None:
        self._parts.write(data)
        while len(self._parts.sent) - self._grouped >= self._store._max_segments:
            self._put_group(self._store._max_segments)

    def commit(self) -> None:
        try:
            replaced = self._store._upload_of(self._key)
            if not self._parts.started:
                self._store._put(self._store._container, self._key, self._parts.pending())
            else:
                self._put_manifest()
        except BaseException:
            with contextlib.suppress(SkylensError):
                self.abort()  # whatever it cannot remove, the sweep will
            raise
        self._finished = True
        if replaced is not None and replaced != self._upload:
            with contextlib.suppress(SkylensError):  # if not now, the sweep removes them
                self._store._delete_upload(self._key, replaced)

    def abort(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._parts.cancel()
        store = self._store
        names = [_segment_name(self._key, self._upload, n) for n in range(1, self._parts.count + 1)]
        names += [_group_name(self._key, self._upload, n) for n in range(1, len(self._groups) + 1)]
        store._delete_many(store._segments, names)

    @property
    def _grouped(self) -> int:
        return len(self._groups) * self._store._max_segments

    def _put_manifest(self) -> None:
        segments = self._parts.finish()
        limit = self._store._max_segments
        if self._groups or len(segments) > limit:
            while len(segments) > self._grouped:
                self._put_group(min(limit, len(segments) - self._grouped))
            entries = self._groups
        else:
            entries = segments
        headers = {UPLOAD_HEADER: self._upload, GROUPS_HEADER: str(len(self._groups))}
        self._store._put_manifest(self._store._container, self._key, entries, headers)

    def _put_group(self, count: int) -> None:
        """Put the next `count` segments into a sub-manifest of their own."""
        store = self._store
        segments = self._parts.sent[self._grouped : self._grouped + count]
        name = _group_name(self._key, self._upload, len(self._groups) + 1)
        store._put_manifest(store._segments, name, segments)
        size = sum(segment["size_bytes"] for segment in segments)
        self._groups.append({"path": f"/{store._segments}/{name}", "size_bytes": size})

    def _send_segment(self, number: int, data: bytes) -> dict[str, Any]:
        store = self._store
        return store._put(store._segments, _segment_name(self._key, self._upload, number), data)


def _segment_name(key: str, upload: str, number: int) -> str:
    return f"{key}/{upload}/{number:08d}"


def _group_name(key: str, upload: str, number: int) -> str:
    return f"{key}/{upload}/group-{number:05d}"


def _timestamp(last_modified: str) -> float:
    """A listing's `last_modified` (ISO 8601 in UTC, without the zone) as a Unix time."""
    moment = datetime.datetime.fromisoformat(last_modified)
    return moment.replace(tzinfo=datetime.UTC).timestamp()
