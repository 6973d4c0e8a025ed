"""The two-way local stack (`devstack --two-way up`), driven only by official clients: boto3
writes to S3 (moto) and the official OSS SDK reads what the S3 → OSS replicator copied into
the emulator, and the other way round; every object is copied once and never back.

The stack is the one `./scripts/demo` runs, started as a user would start it, with its
endpoints and keys read from the `stack.json` it writes.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import alibabacloud_oss_v2 as oss
import boto3
import pytest
from botocore.config import Config

import odd_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "devstack"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "devstack", "--bins"], cwd=ROOT, check=True)
    run_dir = tmp_path_factory.mktemp("devstack")
    process = subprocess.Popen(
        [str(binary), "--two-way", "--instances", "1", "--run-dir", str(run_dir), "up"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
        env={**os.environ, "OSS2S3_PYTHON": sys.executable},
        start_new_session=True,
    )
    described = run_dir / "stack.json"
    deadline = time.monotonic() + 300
    while not described.exists():
        if process.poll() is not None:
            raise RuntimeError(f"devstack exited {process.returncode} before it was up")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("devstack did not come up within 300 s")
        time.sleep(0.2)
    yield json.loads(described.read_text())
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def s3_client(stack):
    return boto3.client(
        "s3",
        endpoint_url=stack["aws_endpoint"],
        region_name=stack["aws_region"],
        aws_access_key_id=stack["aws_access_key_id"],
        aws_secret_access_key=stack["aws_secret_access_key"],
        config=Config(s3={"addressing_style": "path"}),
    )


def oss_client(stack):
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        stack["oss_access_key_id"], stack["oss_access_key_secret"]
    )
    cfg.region = stack["oss_region"]
    cfg.endpoint = stack["oss_endpoint"]
    cfg.use_path_style = True
    return oss.Client(cfg)


def oss_get(client, bucket, key):
    try:
        result = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key))
    except oss.exceptions.OperationError:
        return None
    with result.body as body:
        return result, body.read()


def s3_get(client, bucket, key):
    try:
        result = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        return None
    return result, result["Body"].read()


def wait_until(what, check, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        missing = check()
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {sorted(missing)[:10]}")
        time.sleep(0.3)


def test_objects_written_with_boto3_are_read_back_with_the_official_oss_sdk(stack):
    s3, client = s3_client(stack), oss_client(stack)
    bucket_s3, bucket_oss = stack["s3_bucket"], stack["oss_bucket"]
    # Every corpus key both services and moto hold, under a prefix (so only those that still
    # fit OSS's 1,023 bytes with it).
    keys = [
        k.key for k in odd_keys.corpus()
        if not (k.oss_refuses or k.s3_refuses or k.oss2s3_refuses or k.moto_refuses)
        and len(k.key.encode()) <= 1000
    ]
    assert len(keys) > 200
    written = {}
    for i, key in enumerate(["boto3/plain.txt", *[f"boto3/{k}" for k in keys]]):
        body = f"written with boto3 {i}".encode() * (i + 1)
        s3.put_object(
            Bucket=bucket_s3, Key=key, Body=body, ContentType="text/plain",
            Metadata={"writer": "boto3"},
        )
        written[key] = body

    def missing():
        out = []
        for key, body in written.items():
            got = oss_get(client, bucket_oss, key)
            if got is None or got[1] != body:
                out.append(key)
        return out

    wait_until("the S3 objects in OSS", missing)
    for key, body in written.items():
        result, data = oss_get(client, bucket_oss, key)
        assert data == body, key
        assert result.content_type == "text/plain", key
        assert result.metadata.get("writer") == "boto3", (key, result.metadata)
        assert result.metadata.get("oss2s3-src-size") == str(len(body)), (key, result.metadata)
        assert result.metadata.get("oss2s3-src", "").startswith(("s3://", "sha256:")), result.metadata


def test_objects_written_with_the_oss_sdk_go_to_s3_and_nothing_comes_back(stack):
    s3, client = s3_client(stack), oss_client(stack)
    bucket_s3, bucket_oss = stack["s3_bucket"], stack["oss_bucket"]
    written = {}
    for i in range(8):
        key = f"oss-sdk/{i} é+.bin"
        body = os.urandom(1000 + i)
        client.put_object(oss.PutObjectRequest(bucket=bucket_oss, key=key, body=body))
        written[key] = body

    def missing():
        return [k for k, body in written.items() if (s3_get(s3, bucket_s3, k) or (None, None))[1] != body]

    wait_until("the OSS objects in S3", missing)
    # The S3 copies raised S3 events; the S3 → OSS replicator must skip each of them. Once
    # both queues are empty, the OSS originals are still the very objects the SDK wrote.
    sqs = boto3.client(
        "sqs", endpoint_url=stack["aws_endpoint"], region_name=stack["aws_region"],
        aws_access_key_id=stack["aws_access_key_id"], aws_secret_access_key=stack["aws_secret_access_key"],
    )

    def busy():
        out = []
        for url in (stack["queue_url"], stack["s3_to_oss_queue_url"]):
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            depth = sum(int(attrs[a]) for a in (
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"))
            if depth:
                out.append(f"{url}: {depth}")
        return out

    wait_until("both queues to drain", busy)
    time.sleep(2)
    wait_until("both queues to drain", busy)
    for key, body in written.items():
        result, data = oss_get(client, bucket_oss, key)
        assert data == body
        assert "oss2s3-src" not in (result.metadata or {}), (key, result.metadata)
        head = s3.head_object(Bucket=bucket_s3, Key=key)
        assert head["Metadata"]["oss2s3-src"].startswith(("oss://", "sha256:")), head["Metadata"]
    for url in (stack["dlq_url"], stack["s3_to_oss_dlq_url"]):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0", url
