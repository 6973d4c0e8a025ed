"""P6 baseline: the OSS-trigger forwarder of Data Transfer Hub's OSS tutorial, run in-process.

Data Transfer Hub's tutorial ("Transfer data from Alibaba Cloud OSS to Amazon S3") deploys a
Python 3 function on Function Compute. This file restates what that function does for each
invocation, step for step (the tutorial's text is not copied here):

1. parse the event bytes as JSON; handle it only when it holds exactly one event;
2. log the event's name at INFO;
3. read the access key, secret key, queue URL and region from the environment;
4. create a new boto3 SQS client, on every call;
5. send one message, `{"key": ..., "size": ...}`, with SendMessage; log a failure and go on.

The benchmark calls `handler` once per event in one process, as a warm FC instance would, after
a few warm-up calls. It prints {"events", "seconds", "cpu_seconds"} for the measured loop only
(interpreter start, imports and warm-up are excluded, which favours the baseline). The queue's
endpoint comes from AWS_ENDPOINT_URL_SQS, so the handler itself needs no change.
"""

import argparse
import json
import logging
import os
import sys
import time

import boto3


def handler(event, context):
    log = logging.getLogger()
    log.setLevel("INFO")
    parsed = json.loads(event)
    events = parsed.get("events") if isinstance(parsed, dict) else None
    if not events or len(events) != 1:
        log.warning("Unknown Message %s", parsed)
        return "Done"
    record = events[0]
    log.info("Got event %s", record["eventName"])
    obj = record["oss"]["object"]
    message = {"key": obj["key"], "size": obj["size"]}
    client = boto3.client(
        "sqs",
        region_name=os.environ["REGION_NAME"],
        aws_access_key_id=os.environ["ACCESS_KEY"],
        aws_secret_access_key=os.environ["SECRET_KEY"],
    )
    try:
        client.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(message))
    except Exception as e:  # the tutorial logs a failed send and returns normally
        log.error("Unable to send the message to Amazon SQS: %s", e)
    return "Done"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events-file", required=True, help="one trigger body per line")
    p.add_argument("--warm-up", type=int, default=10)
    args = p.parse_args()
    # FC's Python runtime writes every log record, INFO included, to the function's log.
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    with open(args.events_file, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    warm, measured = bodies[: args.warm_up], bodies[args.warm_up :]
    for body in warm:
        handler(body, None)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for body in measured:
        handler(body, None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(json.dumps({"events": len(measured), "seconds": seconds, "cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
