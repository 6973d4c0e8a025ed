"""Signs generated OSS requests with the official SDK's SignerV4 and prints them as JSON.

The Rust test `shared/tests/signer_oracle.rs` runs this and requires its own signer to produce
the identical Authorization header for every request. The generator leans on what breaks
signers: Unicode, spaces, `+`, `%`, `?`, `#`, `~` and `//` in keys; query parameters with empty
values and odd characters; random `x-oss-meta-*` headers; STS tokens; additional headers,
including ones that are absent or signed by default anyway (the SDK drops those).

Usage: python sign_oracle.py --count N --seed S
"""

import argparse
import datetime
import json
import random
from urllib.parse import quote

from alibabacloud_oss_v2.signer import SignerV4
from alibabacloud_oss_v2.types import Credentials, HttpRequest, SigningContext

KEY_PIECES = [
    "a", "Z", "0", "9", "-", "_", ".", "~", "/", "//", " ", "+", "%", "%20", "?", "#", "&", "=",
    "é", "日本", "ü", "😀", "photos", "2024", "!", "*", "'", "(", ")", "[", "]", "@", ":", ",", ";",
]
QUERY_NAMES = [
    "acl", "uploads", "uploadId", "partNumber", "prefix", "marker", "max-keys", "list-type",
    "continuation-token", "encoding-type", "x-oss-process", "response-content-type", "+plus",
    "|pipe", "sp ace", "ü", "a/b",
]
VALUE_PIECES = ["", "1", "abc", "a/b", "a b", "+", "%", "=", "&", "?", "日本", "~x", "UPPER", "/"]
HEADER_VALUES = ["value", "text/plain", "a b c", "x=y;z", "123", "Zoë", "日本語", "a,b", "1/2"]
REGIONS = ["cn-hangzhou", "cn-shanghai", "us-west-1", "ap-southeast-1", "eu-central-1"]
METHODS = ["GET", "PUT", "POST", "HEAD", "DELETE"]


def random_key(rng: random.Random) -> str:
    key = "".join(rng.choice(KEY_PIECES) for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.05:
        key = key + "k" * (1023 - len(key.encode())) if len(key.encode()) < 1023 else key
    return key


def random_request(rng: random.Random, index: int) -> dict:
    level = rng.random()
    bucket = None if level < 0.05 else f"bucket-{rng.randint(0, 99)}"
    key = None if bucket is None or level < 0.2 else random_key(rng)

    query = []
    for _ in range(rng.randint(0, 5)):
        name = rng.choice(QUERY_NAMES)
        value = "".join(rng.choice(VALUE_PIECES) for _ in range(rng.randint(0, 3)))
        query.append([name, value])

    headers = []
    if rng.random() < 0.6:
        headers.append(["Content-Type", rng.choice(HEADER_VALUES)])
    if rng.random() < 0.3:
        headers.append(["Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="])
    for n in range(rng.randint(0, 4)):
        headers.append([f"x-oss-meta-{rng.choice(['a', 'B', 'key', 'Mixed'])}{n}", rng.choice(HEADER_VALUES)])
    extra = [f"x-custom-{n}" for n in range(rng.randint(0, 3))]
    for name in extra:
        headers.append([name, rng.choice(HEADER_VALUES)])
    if rng.random() < 0.5:
        headers.append(["Range", f"bytes={rng.randint(0, 99)}-{rng.randint(100, 999)}"])

    additional = []
    if rng.random() < 0.5:
        candidates = extra + ["range", "Range", "x-absent", "content-type", "x-oss-meta-a0", "host"]
        additional = rng.sample(candidates, rng.randint(1, min(4, len(candidates))))

    token = f"sts-token-{rng.randint(0, 10**9)}" if rng.random() < 0.4 else None
    seconds = rng.randint(1_577_836_800, 1_893_456_000)  # 2020 to 2030
    return {
        "method": rng.choice(METHODS),
        "region": rng.choice(REGIONS),
        "bucket": bucket,
        "key": key,
        "query": query,
        "headers": headers,
        "additional_headers": additional,
        "access_key_id": f"LTAI{index:08d}",
        "access_key_secret": f"secret-{rng.randint(0, 10**12)}",
        "security_token": token,
        "time": seconds,
    }


def sign(req: dict) -> str:
    host = "oss-test.aliyuncs.com"
    path = "/"
    if req["bucket"] is not None and req["key"] is not None:
        path = "/" + quote(req["key"], safe="/")
    query = "&".join(
        quote(k, safe="") + ("=" + quote(v, safe="") if v else "") for k, v in req["query"]
    )
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = HttpRequest(method=req["method"], url=url, headers=dict(req["headers"]))
    context = SigningContext(
        product="oss",
        region=req["region"],
        bucket=req["bucket"],
        key=req["key"],
        request=request,
        credentials=Credentials(
            access_key_id=req["access_key_id"],
            access_key_secret=req["access_key_secret"],
            security_token=req["security_token"],
        ),
        signing_time=datetime.datetime.fromtimestamp(req["time"], tz=datetime.timezone.utc),
        additional_headers=set(req["additional_headers"]) or None,
    )
    SignerV4().sign(context)
    return request.headers["Authorization"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    requests = [random_request(rng, i) for i in range(args.count)]
    for req in requests:
        req["authorization"] = sign(req)
    print(json.dumps(requests))


if __name__ == "__main__":
    main()
