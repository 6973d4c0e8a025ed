"""`oss2s3 sync` and `verify` checked by independent clients, and the report page in a browser.

Objects are written with the official Alibaba OSS SDK into the emulator, the job runs as a user
runs it (the binary, configured through the environment), boto3 reads what landed in moto's S3,
and headless Chromium (Debian's `chromium`, driven by Playwright) renders `report.html`.
"""

import gzip
import csv
import io
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import boto3
import pytest

from conftest import REGION, ROOT, make_client

TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def oss2s3_binary() -> Path:
    if os.environ.get("OSS_EMULATOR_SKIP_BUILD") != "1":
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "oss2s3-cli", "--bin", "oss2s3"],
            cwd=ROOT,
            check=True,
        )
    return TARGET / "debug" / "oss2s3"


@pytest.fixture
def moto_s3():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    yield endpoint
    server.stop()


KEYS = [
    "plain.txt",
    "with space/a b.txt",
    "plus+sign",
    "percent%20literal%",
    "unicode/文件/ü-é.bin",
    "emoji/🚀.dat",
    "quote\"apos'semi;comma,",
    "double//slash",
    "k" * 1023,
]


def _env(emulator, s3_endpoint: str) -> dict:
    return {
        "PATH": os.environ.get("PATH", ""),
        "OSS_REGION": REGION,
        "OSS_ENDPOINT": emulator.endpoint,
        "OSS_PATH_STYLE": "true",
        "OSS_ACCESS_KEY_ID": emulator.access_key,
        "OSS_ACCESS_KEY_SECRET": emulator.secret_key,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "OSS2S3_S3_COMPAT": "moto",
    }


def _s3(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )


def _oss2s3(binary: Path, *args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Runs `oss2s3 ARGS --quiet` as a user would."""
    return subprocess.run(
        [str(binary), *args, "--quiet"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def _rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_sync_verify_and_the_report_page(emulator, moto_s3, oss2s3_binary, tmp_path):
    import alibabacloud_oss_v2 as oss

    client = make_client(emulator)
    sizes = {}
    for i, key in enumerate(KEYS + [f"sizes/{n}" for n in (0, 1, 4096, 3 * 1024 * 1024)]):
        size = int(key.split("/")[1]) if key.startswith("sizes/") else 10 + i
        body = bytes((i * 7 + j) % 251 for j in range(size))
        client.put_object(
            oss.PutObjectRequest(
                bucket=emulator.bucket, key=key, body=body, metadata={"origin": "sdk"}
            )
        )
        sizes[key] = body
    s3 = _s3(moto_s3)
    s3.create_bucket(Bucket="report-dst")
    env = _env(emulator, moto_s3)
    src, dst = f"oss://{emulator.bucket}/", "s3://report-dst/"

    sync = subprocess.run(
        [str(oss2s3_binary), "sync", src, dst, "--job-id", "page", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr

    # boto3 sees every object byte for byte, with its metadata and oss2s3's marker.
    for key, body in sizes.items():
        got = s3.get_object(Bucket="report-dst", Key=key)
        assert got["Body"].read() == body, key
        assert got["Metadata"]["origin"] == "sdk"
        assert got["Metadata"]["oss2s3-src-size"] == str(len(body))

    job = tmp_path / "oss2s3-reports" / "page"
    summary = json.loads((job / "summary.json").read_text())
    assert summary["objects"]["completed"] == len(sizes)
    assert summary["bytes"]["completed"] == sum(len(b) for b in sizes.values())
    completed = _rows(job / "completed_list.csv.gz")
    assert sorted(r["key"] for r in completed) == sorted(sizes)
    assert all(r["status"] == "copied" for r in completed)

    verify = subprocess.run(
        [str(oss2s3_binary), "verify", src, dst, "--job-id", "check", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "report.html" in verify.stdout

    # A change made with the SDK is a difference until the next sync.
    client.put_object(oss.PutObjectRequest(bucket=emulator.bucket, key="plain.txt", body=b"x" * 19))
    stale = subprocess.run(
        [str(oss2s3_binary), "verify", src, dst, "--job-id", "stale", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert stale.returncode == 1, stale.stdout + stale.stderr
    errors = _rows(tmp_path / "oss2s3-reports" / "stale" / "error_list.csv.gz")
    assert [(r["key"], r["status"]) for r in errors] == [("plain.txt", "changed")]

    _check_page(job / "report.html", summary)


def _check_page(page_path: Path, summary: dict):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("request", lambda r: None if r.url.startswith("file:") else problems.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        charts = page.locator("svg.chart")
        assert charts.count() == 4
        for i in range(charts.count()):
            box = charts.nth(i).bounding_box()
            assert box and box["width"] >= 300 and box["height"] >= 100, box
        # The charts draw something: a line with points, bars with width.
        assert page.locator("#bytes-chart path").count() == 1
        assert page.locator("#size-histogram rect").count() >= 1
        widths = [float(w) for w in page.locator("#status-chart rect").evaluate_all(
            "rs => rs.map(r => r.getBBox().width)")]
        assert max(widths) > 100
        counts = page.locator("#counts").inner_text()
        assert str(summary["objects"]["completed"]) in counts
        assert summary["job_id"] in page.locator("#summary").inner_text()
        TARGET.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(TARGET / "report-screenshot.png"), full_page=True)
        browser.close()
    assert not problems, problems


@pytest.fixture
def second_emulator(emulator_binary):
    from conftest import _start, _stop

    running = _start(emulator_binary)
    yield running
    _stop(running)


def test_every_odd_key_survives_sync_and_verify_both_ways(
    emulator, second_emulator, moto_s3, oss2s3_binary, tmp_path
):
    """The odd-key corpus (events/odd-keys.txt) through `oss2s3 sync` and `verify`, OSS → S3 and
    S3 → OSS, written and read back with the official clients: each key arrives byte for byte,
    or, where the corpus says the destination cannot hold it, fails with a reason, and nothing
    else is lost."""
    import alibabacloud_oss_v2 as oss

    from odd_keys import corpus

    keys = corpus()
    s3 = _s3(moto_s3)

    def body(i: int) -> bytes:
        return f"odd key {i}".encode()

    # OSS → S3. The emulator stores what the corpus says OSS stores, and refuses the rest.
    client = make_client(emulator)
    stored = {}
    for i, k in enumerate(keys):
        if k.oss2s3_refuses or k.moto_refuses:
            continue  # S3 → OSS below shows oss2s3's refusal; moto cannot hold the other
        try:
            client.put_object(oss.PutObjectRequest(bucket=emulator.bucket, key=k.key, body=body(i)))
            refusal = None
        except Exception as e:  # noqa: BLE001 - the SDK's or the emulator's refusal
            refusal = str(e)
        if k.oss_refuses is None:
            assert refusal is None, (k.key[:80], refusal)
            stored[k.key] = body(i)
        else:
            assert refusal is not None, f"OSS refuses {k.key[:80]!r} ({k.oss_refuses}); the emulator did not"
    s3.create_bucket(Bucket="odd-dst")
    env = _env(emulator, moto_s3)
    src, dst = f"oss://{emulator.bucket}/", "s3://odd-dst/"
    sync = _oss2s3(oss2s3_binary, "sync", src, dst, "--job-id", "odd", cwd=tmp_path, env=env)
    assert sync.returncode == 0, sync.stdout + sync.stderr
    listed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="odd-dst"):
        listed += [o["Key"] for o in page.get("Contents", [])]
    assert sorted(listed) == sorted(stored)
    for key, data in stored.items():
        assert s3.get_object(Bucket="odd-dst", Key=key)["Body"].read() == data, key[:80]
    completed = _rows(tmp_path / "oss2s3-reports" / "odd" / "completed_list.csv.gz")
    assert sorted(r["key"] for r in completed) == sorted(stored)
    verify = _oss2s3(oss2s3_binary, "verify", src, dst, "--job-id", "odd-check", cwd=tmp_path, env=env)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # S3 → OSS: boto3 writes every key S3 stores into moto; oss2s3 copies them into a second
    # emulator, and those OSS (or oss2s3) refuses fail with a reason.
    s3.create_bucket(Bucket="odd-src")
    back = {}
    for i, k in enumerate(keys):
        # Keys S3 refuses are not written: moto does not enforce S3's 1,024-byte limit.
        if k.moto_refuses or k.s3_refuses:
            continue
        s3.put_object(Bucket="odd-src", Key=k.key, Body=body(i))
        back[k.key] = (body(i), k.oss_refuses or k.oss2s3_refuses)
    env = _env(second_emulator, moto_s3)
    sync = _oss2s3(
        oss2s3_binary, "sync", "s3://odd-src/", f"oss://{second_emulator.bucket}/", "--job-id", "odd-back",
        cwd=tmp_path, env=env,
    )
    refused = sorted(k for k, (_, reason) in back.items() if reason)
    assert any(keys[i].oss2s3_refuses for i in range(len(keys)) if keys[i].key in refused)
    assert refused, "the corpus has keys that S3 stores and OSS refuses"
    assert sync.returncode == 1, sync.stdout + sync.stderr
    failed = _rows(tmp_path / "oss2s3-reports" / "odd-back" / "error_list.csv.gz")
    assert sorted(r["key"] for r in failed) == refused
    assert all(r["status"] == "failed" and r["reason"] for r in failed), failed
    other = make_client(second_emulator)
    for key, (data, reason) in back.items():
        if reason is None:
            got = other.get_object(oss.GetObjectRequest(bucket=second_emulator.bucket, key=key))
            assert got.body.read() == data, key[:80]
