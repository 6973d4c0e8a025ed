"""The official Alibaba Cloud OSS SDK (alibabacloud-oss-v2) against oss-emulator.

V4 signing is the SDK default and its CRC-64 checks stay on: a wrong x-oss-hash-crc64ecma from
the emulator makes these calls raise.
"""

import hashlib
import io
import os

import alibabacloud_oss_v2 as oss
import pytest

from conftest import BUCKET, make_client


def crc64(data: bytes) -> int:
    from alibabacloud_oss_v2.crc import Crc64

    c = Crc64(0)
    c.update(data)
    return c.sum64()


def put(client, key, body, **kwargs):
    return client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=key, body=body, **kwargs))


def test_put_get_head_round_trip_with_md5_etag_and_crc(client):
    body = os.urandom(200_000)
    result = put(client, "dir/object.bin", body)
    assert result.etag == '"%s"' % hashlib.md5(body).hexdigest().upper()
    assert int(result.hash_crc64) == crc64(body)

    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="dir/object.bin"))
    assert got.body.read() == body
    assert got.etag == result.etag
    assert got.object_type == "Normal"

    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="dir/object.bin"))
    assert head.content_length == len(body)
    assert int(head.hash_crc64) == crc64(body)
    assert head.storage_class == "Standard"


def test_ranged_get_returns_partial_content(client):
    body = bytes(range(256)) * 40
    put(client, "range.bin", body)
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="range.bin", range_header="bytes=100-1099"))
    assert got.status_code == 206
    assert got.content_range == f"bytes 100-1099/{len(body)}"
    assert got.body.read() == body[100:1100]


def test_missing_key_fails_with_no_such_key(client):
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="absent"))
    error = caught.value.unwrap()
    assert error.status_code == 404
    assert error.code == "NoSuchKey"
    assert error.request_id


def test_head_of_missing_key_reports_code_from_header(client):
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="absent"))
    assert caught.value.unwrap().code == "NoSuchKey"


def test_metadata_round_trips(client):
    put(
        client,
        "meta.txt",
        b"hello",
        content_type="text/plain; charset=utf-8",
        content_encoding="identity",
        content_disposition='attachment; filename="meta.txt"',
        cache_control="max-age=60",
        expires="Wed, 21 Oct 2037 07:28:00 GMT",
        metadata={"Owner": "team-a", "trace": "x1"},
        storage_class="IA",
    )
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key="meta.txt"))
    assert head.content_type == "text/plain; charset=utf-8"
    assert head.content_encoding == "identity"
    assert head.content_disposition == 'attachment; filename="meta.txt"'
    assert head.cache_control == "max-age=60"
    assert head.expires == "Wed, 21 Oct 2037 07:28:00 GMT"
    assert head.storage_class == "IA"
    assert {k.lower(): v for k, v in head.metadata.items()} == {"owner": "team-a", "trace": "x1"}


ODD_KEYS = [
    "with space.txt",
    "plus+sign",
    "percent%20literal",
    "unicode/文件-ü-😀",
    "question?mark",
    "hash#tag",
    "double//slash",
    "tilde~and&amp",
    "k" * 1023,
]


def test_listing_of_1000_plus_keys_paginates_and_decodes_odd_keys(client):
    keys = [f"many/{i:04d}" for i in range(1005)] + ["many/" + k for k in ODD_KEYS[:-1]] + [ODD_KEYS[-1]]
    for key in keys:
        put(client, key, key.encode()[:10])

    paginator = client.list_objects_v2_paginator()
    listed = []
    pages = 0
    for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET, prefix="many/", max_keys=250)):
        pages += 1
        listed += [o.key for o in page.contents]
    expected = sorted(k for k in keys if k.startswith("many/"))
    assert listed == expected
    assert pages == 5

    everything = []
    for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET, max_keys=1000)):
        everything += [o.key for o in page.contents]
    assert "k" * 1023 in everything
    assert len(everything) == len(keys)

    for key in ODD_KEYS:
        full = key if len(key) == 1023 else "many/" + key
        got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=full))
        assert got.body.read() == full.encode()[:10]


def test_listing_with_delimiter_returns_common_prefixes(client):
    for key in ["a/1", "a/2", "b/1", "top"]:
        put(client, key, b"x")
    result = client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, delimiter="/"))
    assert [p.prefix for p in result.common_prefixes] == ["a/", "b/"]
    assert [o.key for o in result.contents] == ["top"]


def test_multipart_upload_with_the_sdk_uploader(client):
    body = os.urandom(300 * 1024 + 17)
    uploader = client.uploader(part_size=100 * 1024, parallel_num=3)
    result = uploader.upload_from(oss.PutObjectRequest(bucket=BUCKET, key="big/upload.bin"), io.BytesIO(body))
    assert result.etag.endswith('-4"')
    assert int(result.hash_crc64) == crc64(body)
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="big/upload.bin"))
    assert got.body.read() == body
    assert got.object_type == "Multipart"


def test_multipart_low_level_calls_and_small_part_rejection(client):
    init = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=BUCKET, key="mp odd+key"))
    assert init.key == "mp odd+key"
    parts = []
    for number, data in enumerate([b"a" * 10, b"b" * 10], start=1):
        up = client.upload_part(oss.UploadPartRequest(bucket=BUCKET, key="mp odd+key", upload_id=init.upload_id, part_number=number, body=data))
        parts.append(oss.UploadPart(part_number=number, etag=up.etag))
    listed = client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key="mp odd+key", upload_id=init.upload_id))
    assert [p.part_number for p in listed.parts] == [1, 2]
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.complete_multipart_upload(oss.CompleteMultipartUploadRequest(
            bucket=BUCKET, key="mp odd+key", upload_id=init.upload_id,
            complete_multipart_upload=oss.CompleteMultipartUpload(parts=parts)))
    assert caught.value.unwrap().code == "EntityTooSmall"
    client.abort_multipart_upload(oss.AbortMultipartUploadRequest(bucket=BUCKET, key="mp odd+key", upload_id=init.upload_id))
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.list_parts(oss.ListPartsRequest(bucket=BUCKET, key="mp odd+key", upload_id=init.upload_id))
    assert caught.value.unwrap().code == "NoSuchUpload"


def test_append_with_position(client):
    first = client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="log.txt", position=0, body=b"hello "))
    assert first.next_position == 6
    second = client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="log.txt", position=first.next_position, body=b"world"))
    assert second.next_position == 11
    assert int(second.hash_crc64) == crc64(b"hello world")
    with pytest.raises(oss.exceptions.OperationError) as caught:
        client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key="log.txt", position=3, body=b"x"))
    assert caught.value.unwrap().code == "PositionNotEqualToLength"
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="log.txt"))
    assert got.body.read() == b"hello world"
    assert got.object_type == "Appendable"


def test_delete_single_and_multiple(client):
    for key in ["d/1", "d/2 two", "d/3+three"]:
        put(client, key, b"x")
    client.delete_object(oss.DeleteObjectRequest(bucket=BUCKET, key="d/1"))
    result = client.delete_multiple_objects(oss.DeleteMultipleObjectsRequest(
        bucket=BUCKET, objects=[oss.DeleteObject(key="d/2 two"), oss.DeleteObject(key="d/3+three")]))
    assert sorted(d.key for d in result.deleted_objects) == ["d/2 two", "d/3+three"]
    listed = client.list_objects_v2(oss.ListObjectsV2Request(bucket=BUCKET, prefix="d/"))
    assert not listed.contents


def test_wrong_secret_fails_with_signature_does_not_match(emulator):
    bad = make_client(emulator, secret="not-the-secret")
    with pytest.raises(oss.exceptions.OperationError) as caught:
        bad.put_object(oss.PutObjectRequest(bucket=BUCKET, key="x", body=b"x"))
    error = caught.value.unwrap()
    assert error.status_code == 403
    assert error.code == "SignatureDoesNotMatch"


def test_sts_token_is_accepted_and_required(sts_emulator):
    good = make_client(sts_emulator, token=sts_emulator.security_token)
    put(good, "sts.txt", b"temporary")
    assert good.get_object(oss.GetObjectRequest(bucket=BUCKET, key="sts.txt")).body.read() == b"temporary"

    missing = make_client(sts_emulator)
    with pytest.raises(oss.exceptions.OperationError) as caught:
        missing.get_object(oss.GetObjectRequest(bucket=BUCKET, key="sts.txt"))
    assert caught.value.unwrap().code == "InvalidSecurityToken"


def test_symlink_serves_target(client):
    put(client, "target.txt", b"pointed at")
    client.put_symlink(oss.PutSymlinkRequest(bucket=BUCKET, key="link", target="target.txt"))
    assert client.get_symlink(oss.GetSymlinkRequest(bucket=BUCKET, key="link")).target == "target.txt"
    got = client.get_object(oss.GetObjectRequest(bucket=BUCKET, key="link"))
    assert got.body.read() == b"pointed at"
    assert got.object_type == "Symlink"
