"""P3 baseline: how the existing Python tools copy small objects, one at a time.

For each key: GET from OSS with the official SDK (alibabacloud_oss_v2), then PUT into S3 with
boto3, sequentially. Prints {"objects": N, "seconds": S, "cpu_seconds": C} for the copy loop
only (client set-up and interpreter start are excluded, which favours the baseline).
"""

import argparse
import json
import time

import alibabacloud_oss_v2 as oss
import boto3
from botocore.config import Config


def main() -> None:
    p = argparse.ArgumentParser()
    for name in (
        "oss-endpoint", "oss-access-key", "oss-secret-key", "src-bucket",
        "s3-endpoint", "s3-access-key", "s3-secret-key", "dst-bucket", "keys-file",
    ):
        p.add_argument(f"--{name}", required=True)
    args = p.parse_args()

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        args.oss_access_key, args.oss_secret_key
    )
    cfg.region = "cn-hangzhou"
    cfg.endpoint = args.oss_endpoint
    cfg.use_path_style = True
    source = oss.Client(cfg)
    s3 = boto3.client(
        "s3",
        endpoint_url=args.s3_endpoint,
        aws_access_key_id=args.s3_access_key,
        aws_secret_access_key=args.s3_secret_key,
        region_name="us-east-1",
        # Plain PUTs, as boto3 sent them before flexible checksums: cheaper for the baseline.
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )
    with open(args.keys_file, encoding="utf-8") as f:
        keys = [line.rstrip("\n") for line in f if line.strip()]

    start = time.perf_counter()
    cpu_start = time.process_time()
    copied = 0
    for key in keys:
        got = source.get_object(oss.GetObjectRequest(bucket=args.src_bucket, key=key))
        data = got.body.read()
        s3.put_object(Bucket=args.dst_bucket, Key=key, Body=data)
        copied += 1
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    print(json.dumps({"objects": copied, "seconds": seconds, "cpu_seconds": cpu_seconds}))


if __name__ == "__main__":
    main()
