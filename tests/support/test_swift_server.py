"""The Swift test server is a real object store: S3 (boto3) and Swift (swiftclient) on one port."""

from __future__ import annotations

import hashlib
import json
import os
import uuid

import botocore.exceptions
import pytest
import swiftclient

from tests.support.swift import RunningSwift

MIB = 1024 * 1024


def _name(prefix: str) -> str:
    """A bucket/container name no other test in the session uses (valid for S3 too)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_s3_bucket_put_get_range_list_delete(swift: RunningSwift) -> None:
    s3 = swift.s3_client()
    bucket = _name("s3")
    s3.create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    body = os.urandom(4096)
    put = s3.put_object(Bucket=bucket, Key="dir/a.bin", Body=body, ContentType="image/png")
    assert put["ETag"] == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
    s3.put_object(Bucket=bucket, Key="dir/b.bin", Body=b"b")
    s3.put_object(Bucket=bucket, Key="other", Body=b"")

    got = s3.get_object(Bucket=bucket, Key="dir/a.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "image/png"
    assert got["ContentLength"] == len(body)

    ranged = s3.get_object(Bucket=bucket, Key="dir/a.bin", Range="bytes=100-199")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["ContentRange"] == f"bytes 100-199/{len(body)}"
    assert ranged["Body"].read() == body[100:200]

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [
        ("dir/a.bin", len(body)),
        ("dir/b.bin", 1),
    ]
    assert s3.list_objects_v2(Bucket=bucket, Delimiter="/")["CommonPrefixes"] == [
        {"Prefix": "dir/"}
    ]

    for key in ("dir/a.bin", "dir/b.bin", "other"):
        s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="dir/a.bin")
    assert missing.value.response["Error"]["Code"] == "404"
    s3.delete_bucket(Bucket=bucket)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_s3_multipart_upload(swift: RunningSwift) -> None:
    s3 = swift.s3_client()
    bucket = _name("mpu")
    s3.create_bucket(Bucket=bucket)
    parts = [os.urandom(5 * MIB + 1), os.urandom(1000)]  # S3's minimum, then a short last part
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [upload]
    etags = [
        s3.upload_part(Bucket=bucket, Key="big", UploadId=upload, PartNumber=n, Body=part)["ETag"]
        for n, part in enumerate(parts, start=1)
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
    )
    md5s = b"".join(hashlib.md5(part, usedforsecurity=False).digest() for part in parts)
    assert done["ETag"] == f'"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-2"'

    whole = b"".join(parts)
    assert s3.head_object(Bucket=bucket, Key="big")["ContentLength"] == len(whole)
    across = s3.get_object(Bucket=bucket, Key="big", Range=f"bytes={5 * MIB - 10}-{5 * MIB + 10}")
    assert across["Body"].read() == whole[5 * MIB - 10 : 5 * MIB + 11]
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == whole

    # A part other than the last below 5 MiB is refused, as AWS refuses it.
    small = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    small_etags = [
        s3.upload_part(Bucket=bucket, Key="small", UploadId=small, PartNumber=n, Body=b"x")["ETag"]
        for n in (1, 2)
    ]
    with pytest.raises(botocore.exceptions.ClientError) as too_small:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="small",
            UploadId=small,
            MultipartUpload={
                "Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(small_etags, 1)]
            },
        )
    assert too_small.value.response["Error"]["Code"] == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="small", UploadId=small)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_swift_api_objects_and_slo_manifest(swift: RunningSwift) -> None:
    conn = swift.swift_connection()
    container, segments = _name("swift"), _name("segments")
    conn.put_container(container)
    conn.put_container(segments)

    conn.put_object(container, "plain", contents=b"hello", content_type="text/plain")
    headers, body = conn.get_object(container, "plain")
    assert body == b"hello"
    assert headers["content-type"] == "text/plain"
    assert headers["etag"] == hashlib.md5(b"hello", usedforsecurity=False).hexdigest()

    pieces = [os.urandom(1024), os.urandom(1024), b"tail"]
    manifest = []
    for n, piece in enumerate(pieces):
        etag = conn.put_object(segments, f"seg/{n:04d}", contents=piece)
        manifest.append(
            {"path": f"/{segments}/seg/{n:04d}", "etag": etag, "size_bytes": len(piece)}
        )
    conn.put_object(
        container,
        "large",
        contents=json.dumps(manifest),
        query_string="multipart-manifest=put",
    )
    headers, body = conn.get_object(container, "large")
    assert headers["x-static-large-object"] == "True"
    assert body == b"".join(pieces)
    _, ranged = conn.get_object(container, "large", headers={"Range": "bytes=1020-1030"})
    assert ranged == b"".join(pieces)[1020:1031]

    names = [o["name"] for o in conn.get_container(container)[1]]
    assert names == ["large", "plain"]
    conn.delete_object(container, "large", query_string="multipart-manifest=delete")
    assert [o["name"] for o in conn.get_container(segments)[1]] == []
    conn.delete_object(container, "plain")
    with pytest.raises(swiftclient.ClientException) as missing:
        conn.get_object(container, "plain")
    assert missing.value.http_status == 404


def test_both_apis_see_the_same_data(swift: RunningSwift) -> None:
    s3, conn = swift.s3_client(), swift.swift_connection()
    bucket = _name("shared")

    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="from-s3", Body=b"s3 bytes", Metadata={"colour": "blue"})
    headers, body = conn.get_object(bucket, "from-s3")
    assert body == b"s3 bytes"
    assert headers["x-object-meta-colour"] == "blue"

    conn.put_object(
        bucket, "from-swift", contents=b"swift bytes", headers={"X-Object-Meta-Size": "L"}
    )
    got = s3.get_object(Bucket=bucket, Key="from-swift")
    assert got["Body"].read() == b"swift bytes"
    assert got["Metadata"] == {"size": "L"}

    account_headers, containers = conn.get_account()
    assert bucket in [c["name"] for c in containers]
    assert account_headers["x-account-container-count"] == str(len(containers))
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "from-s3",
        "from-swift",
    ]

    # An S3 multipart upload is a Swift static large object.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload, PartNumber=1, Body=b"one")[
        "ETag"
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mpu",
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]},
    )
    headers, body = conn.get_object(bucket, "mpu")
    assert body == b"one"
    assert headers["x-static-large-object"] == "True"

    conn.delete_object(bucket, "from-s3")
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key="from-s3")
