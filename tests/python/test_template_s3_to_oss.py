"""Offline checks of the S3 → OSS template (template-s3-to-oss.yaml), as test_template.py checks
template.yaml: `sam validate --lint`, cfn-lint on the template aws-sam-translator expands, and
the properties a deployment depends on (only the source bucket may send events, the role reads
S3 and writes nothing there, every AWS call of this direction is granted, batch item failures).

The function is the same package built the same way as template.yaml's, so test_template.py's
`sam build` covers it; a test here checks that the two stay the same.
"""

import copy
import json
import os
import re

import pytest

from test_template import (
    ACCOUNT,
    REGION,
    ROOT,
    SDK_OPERATION_ACTIONS,
    VENV_BIN,
    OfflinePolicyLoader,
    Resolver,
    allowed,
    as_list,
    iam_actions,
    ref_name,
    replicator_sdk_calls,
    replicator_sources,
    role_statements,
    run_tool,
)

TEMPLATE = ROOT / "template-s3-to-oss.yaml"

REQUIRED_PARAMETERS = {
    "SourceBucket": "source-s3-bucket",
    "OssRegion": "cn-hangzhou",
    "OssBucket": "destination-oss-bucket",
    "OssSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:oss2s3/oss-writer-AbCdEf",
}
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# The S3 calls of the oss-to-s3 direction only, where S3 is the sink: this direction never
# writes, deletes or lists uploads in S3.
S3_SINK_OPERATIONS = {
    "put_object",
    "create_multipart_upload",
    "upload_part",
    "complete_multipart_upload",
    "abort_multipart_upload",
    "list_parts",
    "list_multipart_uploads",
    "delete_object",
}


@pytest.fixture(scope="module")
def sam_template() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


def parameters(template: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    values = {
        name: str(spec["Default"])
        for name, spec in template["Parameters"].items()
        if "Default" in spec
    }
    return values | REQUIRED_PARAMETERS | (overrides or {})


def expand(template: dict, overrides: dict[str, str] | None = None) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform

    packaged = copy.deepcopy(template)
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts-bucket/replicator.zip"
    return transform(packaged, parameters(template, overrides), OfflinePolicyLoader())


@pytest.fixture(scope="module")
def expanded(sam_template) -> dict:
    return expand(sam_template)


def resolver(expanded: dict, overrides: dict[str, str] | None = None) -> Resolver:
    return Resolver(expanded, REQUIRED_PARAMETERS | (overrides or {}))


def test_sam_validate_with_lint_accepts_the_template():
    result = run_tool([str(VENV_BIN / "sam"), "validate", "--lint", "--template-file", str(TEMPLATE)])
    assert "is a valid SAM Template" in result.stdout + result.stderr


# Every condition's branches: KMS keys on and off, a source prefix or none.
COMBINATIONS = [
    {},
    {"SourceKmsKeyArn": KMS_KEY, "OssSecretKmsKeyArn": KMS_KEY, "SourcePrefix": "photos/",
     "ReplicateDeletes": "true", "StorageClassMap": "GLACIER=ColdArchive"},
]


@pytest.mark.parametrize("overrides", COMBINATIONS, ids=["defaults", "everything-set"])
def test_expanded_template_passes_cfn_lint(sam_template, overrides, tmp_path):
    path = tmp_path / "expanded.json"
    path.write_text(json.dumps(expand(sam_template, overrides), indent=1))
    run_tool([str(VENV_BIN / "cfn-lint"), "--regions", REGION, "--", str(path)])


def test_only_the_source_bucket_of_this_account_may_send_events(expanded):
    r = resolver(expanded)
    policies = r.resources("AWS::SQS::QueuePolicy")
    statements = [s for p in policies.values() for s in as_list(p["Properties"]["PolicyDocument"]["Statement"])]
    sends = [s for s in statements if s["Effect"] == "Allow"]
    assert len(sends) == 1, sends
    (send,) = sends
    assert send["Principal"] == {"Service": "s3.amazonaws.com"}
    assert as_list(send["Action"]) == ["sqs:SendMessage"]
    assert ref_name(send["Resource"]) == "EventQueue"
    condition = send["Condition"]
    source_arn = condition["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source_arn == "arn:${AWS::Partition}:s3:::${SourceBucket}", source_arn
    assert condition["StringEquals"]["aws:SourceAccount"] == ACCOUNT, "the stack's own account"
    # Both queues refuse plain HTTP.
    denied = {ref_name(res) for s in statements if s["Effect"] == "Deny" for res in as_list(s["Resource"])}
    assert denied == {"EventQueue", "DeadLetterQueue"}, denied


def test_event_queue_redrives_and_reports_batch_item_failures(expanded):
    r = resolver(expanded)
    (mapping,) = r.resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert ref_name(props["EventSourceArn"]) == "EventQueue"
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = r.resolve(expanded["Resources"]["EventQueue"])["Properties"]
    assert ref_name(queue["RedrivePolicy"]["deadLetterTargetArn"]) == "DeadLetterQueue"
    assert queue["MaximumMessageSize"] == 1048576
    timeout = int(r.params["FunctionTimeout"])
    assert int(queue["VisibilityTimeout"]) >= 6 * timeout


def s3_statements(statements: list[dict]) -> list[dict]:
    return [s for s in statements if any(a.startswith("s3:") for a in as_list(s["Action"]))]


def test_the_role_reads_only_the_source_and_writes_nothing_to_s3(expanded):
    statements = role_statements(resolver(expanded, {"ReplicateDeletes": "true"}))
    actions = {a for s in s3_statements(statements) for a in as_list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:RestoreObject", "s3:ListBucket"}, actions
    for s in s3_statements(statements):
        resource = json.dumps(s["Resource"])
        assert "${SourceBucket}" in resource, s
    objects = allowed(statements, "s3:GetObject")
    assert [s["Resource"]["Fn::Sub"] for s in objects] == [
        "arn:${AWS::Partition}:s3:::${SourceBucket}/${SourcePrefix}*"
    ]


@pytest.mark.parametrize("deletes", ["false", "true"])
def test_the_role_grants_every_aws_call_this_direction_makes(expanded, deletes):
    calls = replicator_sdk_calls()
    statements = role_statements(resolver(expanded, {"ReplicateDeletes": deletes}))
    missing = []
    for call in calls:
        if call.service == "s3" and call.operation in S3_SINK_OPERATIONS:
            continue
        for action in iam_actions(call):
            if not allowed(statements, action):
                missing.append(f"{action} for {call}")
    assert not missing, "\n".join(missing)
    # The exclusions above are the sink's calls and nothing else.
    assert S3_SINK_OPERATIONS <= {op for (service, op) in SDK_OPERATION_ACTIONS if service == "s3"}


@pytest.mark.parametrize("key,granted", [("", False), (KMS_KEY, True)])
def test_source_kms_key_is_decryptable_only_when_given(sam_template, key, granted):
    expanded = expand(sam_template, {"SourceKmsKeyArn": key})
    statements = role_statements(resolver(expanded, {"SourceKmsKeyArn": key}))
    decrypt = [s for s in allowed(statements, "kms:Decrypt") if s.get("Sid") == "DecryptSourceObjects"]
    assert bool(decrypt) == granted
    if granted:
        assert decrypt[0]["Resource"] == KMS_KEY


def test_function_runs_in_the_s3_to_oss_direction_with_variables_the_replicator_reads(expanded):
    r = resolver(expanded)
    (function,) = r.resources("AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DIRECTION"] == "s3-to-oss"
    assert variables["SRC_BUCKET"] == REQUIRED_PARAMETERS["SourceBucket"]
    assert variables["DST_BUCKET"] == REQUIRED_PARAMETERS["OssBucket"]
    assert "OSS_BUCKET" not in variables, "the replicator refuses OSS_BUCKET in s3-to-oss"
    assert ref_name(variables["QUEUE_URL"]) == "EventQueue"
    assert ref_name(variables["DLQ_URL"]) == "DeadLetterQueue"
    mentioned = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', replicator_sources()))
    assert set(variables) - mentioned == set(), "set by the template but never read by the replicator"
    config = (ROOT / "functions" / "replicator" / "src" / "config.rs").read_text()
    assert '"s3-to-oss"' in config


def test_function_is_built_exactly_as_template_yaml_builds_it(sam_template):
    from samtranslator.yaml_helper import yaml_parse

    other = yaml_parse((ROOT / "template.yaml").read_text())

    def function(template):
        (f,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Function")
        return f

    mine, theirs = function(sam_template), function(other)
    assert mine["Metadata"] == theirs["Metadata"]
    for key in ("CodeUri", "Handler", "Runtime", "RecursiveLoop"):
        assert mine["Properties"][key] == theirs["Properties"][key], key
    assert sam_template["Mappings"]["QueueVisibility"] == other["Mappings"]["QueueVisibility"]


@pytest.mark.parametrize("prefix", ["", "photos/"])
def test_the_notification_configuration_output_is_what_s3_takes(expanded, prefix):
    r = resolver(expanded, {"SourcePrefix": prefix})
    output = r.resolve(expanded["Outputs"]["NotificationConfiguration"]["Value"])
    template, variables = output["Fn::Sub"]
    assert ref_name(variables["Queue"]) == "EventQueue"
    text = template.replace("${Queue}", "arn:aws:sqs:us-east-1:123456789012:q").replace(
        "${SourcePrefix}", prefix
    )
    config = json.loads(text)
    (queue,) = config["QueueConfigurations"]
    assert set(queue["Events"]) == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"}
    rules = queue.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    assert rules == ([{"Name": "prefix", "Value": prefix}] if prefix else [])
