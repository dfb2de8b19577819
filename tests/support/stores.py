"""Look into (and plant data in) a test server's stores directly, as an operator would.

The servers are those of `tests.support.servers.stores_config`: `local` (file),
`swift` and `s3` (both on the real Swift server).
"""

from __future__ import annotations

import os

from skylens.storage.keys import image_data_key
from tests.support.servers import RunningServer, configured_stores
from tests.support.swift import RunningSwift


class StoreContents:
    """Reads a test server's stores directly, as an operator would."""

    def __init__(self, server: RunningServer, swift: RunningSwift) -> None:
        self._options = configured_stores(server)
        self._root = server.log.parent / "images"
        self._swift = swift

    def get(self, store: str, image_id: str) -> bytes | None:
        """The image's data in `store`, or None."""
        return self.get_key(store, image_data_key(image_id))

    def get_key(self, store: str, key: str) -> bytes | None:
        if store == "local":
            path = self._root / key
            return path.read_bytes() if path.exists() else None
        if store == "swift":
            import swiftclient

            try:
                _, body = self._swift.swift_connection().get_object(
                    self._options["swift"]["container"], key
                )
            except swiftclient.ClientException as error:
                if error.http_status == 404:
                    return None
                raise
            data: bytes = body
            return data
        client = self._swift.s3_client()
        try:
            obj = client.get_object(Bucket=self._options["s3"]["bucket"], Key=key)
        except client.exceptions.NoSuchKey:
            return None
        s3_data: bytes = obj["Body"].read()
        return s3_data

    def put(self, store: str, image_id: str, data: bytes) -> None:
        """Place a copy of the image's data, as Glance's copy-image import would."""
        self.put_key(store, image_data_key(image_id), data)

    def put_key(self, store: str, key: str, data: bytes) -> None:
        if store == "local":
            path = self._root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        elif store == "swift":
            self._swift.swift_connection().put_object(
                self._options["swift"]["container"], key, data
            )
        else:
            self._swift.s3_client().put_object(
                Bucket=self._options["s3"]["bucket"], Key=key, Body=data
            )


class Leftovers:
    """What uncommitted writes left in a server's stores, by store."""

    def __init__(self, server: RunningServer, swift: RunningSwift) -> None:
        self._options = configured_stores(server)
        self._partial = server.log.parent / "images" / ".partial"
        self._swift = swift

    def __call__(self, store: str) -> list[str]:
        if store == "local":
            return os.listdir(self._partial) if self._partial.exists() else []
        if store == "swift":
            segments = f"{self._options['swift']['container']}_segments"
            _, listing = self._swift.swift_connection().get_container(segments)
            return [item["name"] for item in listing]
        uploads = self._swift.s3_client().list_multipart_uploads(
            Bucket=self._options["s3"]["bucket"]
        )
        return [upload["Key"] for upload in uploads.get("Uploads", [])]
