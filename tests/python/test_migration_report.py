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
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
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
