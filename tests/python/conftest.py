"""Fixtures that run the oss-emulator binary and point the official OSS SDK at it."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACCESS_KEY = "test-ak"
SECRET_KEY = "test-sk-secret"
REGION = "cn-hangzhou"
BUCKET = "sdk-bucket"


@dataclass
class RunningEmulator:
    endpoint: str
    access_key: str
    secret_key: str
    security_token: str | None
    bucket: str
    process: subprocess.Popen


def _emulator_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "oss-emulator"
    if os.environ.get("OSS_EMULATOR_SKIP_BUILD") != "1":
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "oss-emulator", "--bin", "oss-emulator"],
            cwd=ROOT,
            check=True,
        )
    return binary


@pytest.fixture(scope="session")
def emulator_binary() -> Path:
    return _emulator_binary()


def _start(binary: Path, security_token: str | None = None) -> RunningEmulator:
    args = [
        str(binary),
        "--listen", "127.0.0.1:0",
        "--access-key", ACCESS_KEY,
        "--secret-key", SECRET_KEY,
        "--bucket", BUCKET,
        "--region", REGION,
    ]
    if security_token:
        args += ["--security-token", security_token]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    line = process.stdout.readline().strip()
    prefix = "oss-emulator listening on "
    if not line.startswith(prefix):
        process.kill()
        raise RuntimeError(f"unexpected first line from oss-emulator: {line!r}")
    return RunningEmulator(
        endpoint=line[len(prefix):],
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        security_token=security_token,
        bucket=BUCKET,
        process=process,
    )


def _stop(emulator: RunningEmulator) -> None:
    emulator.process.kill()
    emulator.process.wait(timeout=10)


@pytest.fixture
def emulator(emulator_binary):
    running = _start(emulator_binary)
    yield running
    _stop(running)


@pytest.fixture
def sts_emulator(emulator_binary):
    running = _start(emulator_binary, security_token="sts-token-for-tests")
    yield running
    _stop(running)


def make_client(emulator: RunningEmulator, secret: str | None = None, token: str | None = None):
    """An official SDK client: V4 signing (the default), CRC-64 checks on, custom endpoint."""
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        emulator.access_key,
        secret if secret is not None else emulator.secret_key,
        token,
    )
    cfg.region = REGION
    cfg.endpoint = emulator.endpoint
    cfg.use_path_style = True
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)


@pytest.fixture
def client(emulator):
    return make_client(emulator)
