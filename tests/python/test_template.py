"""Offline checks of the AWS SAM template (template.yaml).

- `sam validate --lint`;
- the template expanded by aws-sam-translator, then linted by cfn-lint (cfn-lint alone does not
  expand SAM resources, so the generated ones would go unchecked);
- properties of the expanded template that a deployment depends on (visibility timeout, least
  privilege, batch item failures, redrive, TLS-only queues);
- that the replicator's role grants every AWS API call the Rust code makes (found by scanning the
  sources, see rust_sdk_calls.py);
- `sam build` with cargo-lambda, for x86_64 (the only Rust target installed on the test machines;
  the template's default is arm64, built the same way).

No AWS account or network is used: every tool runs locally with a placeholder region.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

import rust_sdk_calls

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
ACCOUNT = "123456789012"

# Values for the parameters that have no default.
REQUIRED_PARAMETERS = {
    "OssRegion": "cn-hangzhou",
    "OssBucket": "source-bucket",
    "OssSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:oss2s3/oss-AbCdEf",
    "DestinationBucket": "destination-bucket",
}
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def tool_env() -> dict[str, str]:
    """The environment for SAM CLI and cfn-lint: offline, quiet, with a region set."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("AWS_DEFAULT_REGION", REGION)
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    env["SAM_CLI_TELEMETRY"] = "0"
    return env


def run_tool(args: list[str], cwd: Path = ROOT, timeout: int = 300, env=None):
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env or tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


# ---- Loading and expanding ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def sam_template() -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(TEMPLATE.read_text())


def parameter_defaults(template: dict) -> dict[str, str]:
    values = {
        name: str(spec["Default"])
        for name, spec in template["Parameters"].items()
        if "Default" in spec
    }
    values.update(REQUIRED_PARAMETERS)
    return values


class OfflinePolicyLoader:
    """Managed policy names are resolved through IAM; the template must not need any."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="session")
def expanded(sam_template) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform

    packaged = copy.deepcopy(sam_template)
    # CloudFormation only ever sees the packaged template, where `sam package`/`sam deploy` has
    # replaced each local CodeUri with the uploaded artifact's S3 URI.
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://artifacts-bucket/replicator.zip"
    return transform(packaged, parameter_defaults(sam_template), OfflinePolicyLoader())


@pytest.fixture(scope="session")
def expanded_path(expanded, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "expanded.json"
    path.write_text(json.dumps(expanded, indent=1))
    return path


# ---- A small resolver for the intrinsics the checks need --------------------------------------

NO_VALUE = object()


class Resolver:
    """Resolves Ref (to parameters), Fn::FindInMap, Fn::If and conditions for one parameter set.
    Everything else (GetAtt, Sub, ...) is left as it is."""

    def __init__(self, template: dict, overrides: dict[str, str] | None = None):
        self.template = template
        self.params = parameter_defaults(template) | (overrides or {})
        self.params.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"})
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self._truth(self.template["Conditions"][name])
        return self._conditions[name]

    def _truth(self, node) -> bool:
        (fn, arg), = node.items()
        if fn == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not self._truth(arg[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in arg)
        if fn == "Condition":
            return self.condition(arg)
        raise AssertionError(f"unsupported condition function {fn}")

    def resolve(self, node):
        if isinstance(node, list):
            items = [self.resolve(n) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                return self.params.get(arg, node)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.resolve(a) for a in arg)
                return self.template["Mappings"][mapping][str(top)][second]
        items = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in items.items() if v is not NO_VALUE}

    def resources(self, type_name: str) -> dict[str, dict]:
        return {
            name: self.resolve(resource)
            for name, resource in self.template["Resources"].items()
            if resource["Type"] == type_name
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        }


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def statements_of(resource: dict) -> list[dict]:
    """Every statement of every identity policy an IAM resource carries."""
    props = resource.get("Properties", {})
    documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
    if "PolicyDocument" in props:
        documents.append(props["PolicyDocument"])
    return [s for d in documents for s in as_list(d["Statement"])]


def role_statements(resolver: Resolver) -> list[dict]:
    (role,) = resolver.resources("AWS::IAM::Role").values()
    return statements_of(role)


def allowed(statements: list[dict], action: str) -> list[dict]:
    return [s for s in statements if s["Effect"] == "Allow" and action in as_list(s["Action"])]


def ref_name(node) -> str | None:
    """The logical ID that a Ref or GetAtt points at."""
    if isinstance(node, dict) and "Ref" in node:
        return node["Ref"]
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        return node["Fn::GetAtt"][0]
    return None


def replication_queue(resolver: Resolver) -> tuple[str, dict]:
    (mapping,) = resolver.resources("AWS::Lambda::EventSourceMapping").values()
    name = ref_name(mapping["Properties"]["EventSourceArn"])
    return name, resolver.resolve(resolver.template["Resources"][name])


# ---- Tools -------------------------------------------------------------------------------------


def test_sam_validate_with_lint_accepts_the_template():
    result = run_tool([str(VENV_BIN / "sam"), "validate", "--lint", "--template-file", str(TEMPLATE)])
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_expanded_template_passes_cfn_lint(expanded_path):
    run_tool([str(VENV_BIN / "cfn-lint"), "--regions", REGION, "--", str(expanded_path)])


def test_expansion_leaves_no_serverless_resources(expanded):
    kinds = {r["Type"] for r in expanded["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}, kinds
    assert "AWS::Lambda::EventSourceMapping" in kinds


# ---- Properties of the expanded template -------------------------------------------------------


def test_visibility_timeout_is_at_least_six_function_timeouts_plus_batching_window(expanded):
    timeouts = expanded["Parameters"]["FunctionTimeout"]["AllowedValues"]
    largest_window = int(expanded["Parameters"]["MaximumBatchingWindowInSeconds"]["MaxValue"])
    assert 900 in [int(t) for t in timeouts]
    for timeout in timeouts:
        resolver = Resolver(expanded, {"FunctionTimeout": str(timeout)})
        (function,) = resolver.resources("AWS::Lambda::Function").values()
        function_timeout = int(function["Properties"]["Timeout"])
        assert function_timeout == int(timeout) <= 900
        _, queue = replication_queue(resolver)
        visibility = int(queue["Properties"]["VisibilityTimeout"])
        assert visibility >= 6 * function_timeout + largest_window, (timeout, visibility)
        assert visibility <= 43200, "SQS allows at most 12 hours"


def test_no_iam_statement_applies_to_every_resource(expanded):
    checked = 0
    for name, resource in expanded["Resources"].items():
        if not resource["Type"].startswith("AWS::IAM::"):
            continue
        # Walk both branches of every Fn::If: no parameter choice may produce a wildcard.
        for statement in find_statements(resource):
            checked += 1
            assert "NotResource" not in statement and "NotAction" not in statement, (name, statement)
            if "Resource" in statement:  # trust policies have none
                for branch in if_branches(statement["Resource"]):
                    for resource_arn in as_list(branch):
                        assert resource_arn != "*", (name, statement)
    assert checked >= 8


def find_statements(node):
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
        for value in node.values():
            yield from find_statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from find_statements(value)


def if_branches(node):
    if isinstance(node, dict) and "Fn::If" in node:
        for branch in node["Fn::If"][1:]:
            yield from if_branches(branch)
    else:
        yield node


def test_replicator_role_attaches_no_managed_policies(expanded):
    # AWS-managed Lambda policies (e.g. AWSLambdaSQSQueueExecutionRole) grant on "*".
    resolver = Resolver(expanded)
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    role_name = ref_name(function["Properties"]["Role"])
    role = expanded["Resources"][role_name]
    assert role["Type"] == "AWS::IAM::Role"
    assert not role["Properties"].get("ManagedPolicyArns")


def test_event_source_mapping_reports_batch_item_failures(expanded):
    resolver = Resolver(expanded, {"MaximumConcurrency": "7"})
    (mapping,) = resolver.resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert str(props["ScalingConfig"]["MaximumConcurrency"]) == "7"
    assert "BatchSize" in props and "MaximumBatchingWindowInSeconds" in props


def test_replication_queue_redrives_to_the_dead_letter_queue(expanded):
    resolver = Resolver(expanded, {"MaxReceiveCount": "4"})
    _, queue = replication_queue(resolver)
    redrive = queue["Properties"]["RedrivePolicy"]
    dlq_name = ref_name(redrive["deadLetterTargetArn"])
    assert expanded["Resources"][dlq_name]["Type"] == "AWS::SQS::Queue"
    assert str(redrive["maxReceiveCount"]) == "4"
    dlq = expanded["Resources"][dlq_name]["Properties"]
    assert int(dlq["MessageRetentionPeriod"]) > int(queue["Properties"]["MessageRetentionPeriod"])


def test_both_queues_are_encrypted_and_deny_non_tls_access(expanded):
    resolver = Resolver(expanded)
    queue_name, queue = replication_queue(resolver)
    dlq_name = ref_name(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    for name in (queue_name, dlq_name):
        assert expanded["Resources"][name]["Properties"].get("SqsManagedSseEnabled") is True, name
    protected = set()
    for policy in resolver.resources("AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        for statement in as_list(props["PolicyDocument"]["Statement"]):
            denies_plain_http = (
                statement["Effect"] == "Deny"
                and statement.get("Principal") in ("*", {"AWS": "*"})
                and "sqs:*" in as_list(statement["Action"])
                and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            )
            if denies_plain_http:
                covered = {ref_name(r) for r in as_list(statement["Resource"])}
                protected |= covered & {ref_name(q) for q in props["Queues"]}
    assert {queue_name, dlq_name} <= protected


def test_both_queues_take_messages_of_one_mebibyte(expanded):
    # A continuation task of a 10,000-part upload is about 370 KiB, beyond the old 256 KiB limit,
    # and the DLQ receives whatever the replication queue held.
    resolver = Resolver(expanded)
    queue_name, queue = replication_queue(resolver)
    dlq_name = ref_name(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    for name in (queue_name, dlq_name):
        assert int(expanded["Resources"][name]["Properties"].get("MaximumMessageSize", 0)) == 1048576, name


def test_function_may_loop_through_its_own_queue(expanded):
    # Continuations go to the queue that triggers the function; Lambda's recursive-loop detection
    # would stop such a chain after about 16 hops.
    resolver = Resolver(expanded)
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    assert function["Properties"].get("RecursiveLoop") == "Allow"
    queue_name, _ = replication_queue(resolver)
    assert ref_name(function["Properties"]["Environment"]["Variables"]["QUEUE_URL"]) == queue_name


def test_function_knows_its_timeout_receive_limit_and_delete_delay(expanded):
    resolver = Resolver(expanded, {"FunctionTimeout": "300", "MaxReceiveCount": "7", "DeleteDelaySeconds": "60"})
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    props = function["Properties"]
    variables = props["Environment"]["Variables"]
    assert variables["FUNCTION_TIMEOUT_SECONDS"] == str(props["Timeout"]) == "300"
    _, queue = replication_queue(resolver)
    assert variables["MAX_RECEIVE_COUNT"] == str(queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]) == "7"
    assert variables["DELETE_DELAY_SECONDS"] == "60"
    delay = expanded["Parameters"]["DeleteDelaySeconds"]
    assert delay["Type"] == "Number"
    assert (int(delay["Default"]), int(delay["MinValue"]), int(delay["MaxValue"])) == (300, 0, 86400)
    (function,) = Resolver(expanded).resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"]["DELETE_DELAY_SECONDS"] == "300"


def test_s3_access_is_limited_to_the_destination_bucket_and_prefix(expanded):
    resolver = Resolver(expanded, {"DestinationPrefix": "from-oss/"})
    objects = "arn:${AWS::Partition}:s3:::${DestinationBucket}/${DestinationPrefix}*"
    reports = "arn:${AWS::Partition}:s3:::${DestinationBucket}/${JobReportPrefix}*"
    bucket = "arn:${AWS::Partition}:s3:::${DestinationBucket}"
    s3_statements = [
        s for s in role_statements(resolver) if any(a.startswith("s3:") for a in as_list(s["Action"]))
    ]
    for statement in s3_statements:
        resources = [r.get("Fn::Sub") for r in as_list(statement["Resource"])]
        actions = set(as_list(statement["Action"]))
        if resources == [bucket]:
            # On the bucket itself: listing keys (for 404s) and one key's uploads, nothing else.
            assert actions <= {"s3:ListBucket", "s3:ListBucketMultipartUploads"}, statement
        elif resources == [reports]:
            # Migration jobs' summaries and reports: written and read back, nothing else.
            assert actions == {"s3:PutObject", "s3:GetObject"}, statement
        else:
            assert resources == [objects], statement
    granted = {a for s in s3_statements for a in as_list(s["Action"])}
    # HEAD is authorised by s3:GetObject; multipart upload and its parts by s3:PutObject.
    assert {
        "s3:PutObject",
        "s3:GetObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
    } <= granted
    assert "s3:PutObjectTagging" not in granted


@pytest.mark.parametrize("deletes", ["false", "true"])
def test_delete_permission_exists_only_when_deletes_are_replicated(expanded, deletes):
    resolver = Resolver(expanded, {"ReplicateDeletes": deletes})
    assert bool(allowed(role_statements(resolver), "s3:DeleteObject")) == (deletes == "true")
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    assert function["Properties"]["Environment"]["Variables"]["REPLICATE_DELETES"] == deletes


@pytest.mark.parametrize(
    ("sse", "key", "kms_granted", "key_in_env"),
    [
        ("", "", False, False),
        ("AES256", "", False, False),
        ("aws:kms", "", False, False),  # aws/s3: its key policy admits the account via S3
        ("aws:kms", KMS_KEY, True, True),
        ("", KMS_KEY, True, False),  # the bucket's default encryption uses the key
    ],
)
def test_kms_access_is_granted_only_on_the_configured_key(expanded, sse, key, kms_granted, key_in_env):
    resolver = Resolver(expanded, {"DestinationSse": sse, "DestinationKmsKeyArn": key})
    statements = role_statements(resolver)
    kms = [s for s in statements if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert bool(kms) == kms_granted
    for statement in kms:
        assert as_list(statement["Resource"]) == [key]
        assert set(as_list(statement["Action"])) == {"kms:GenerateDataKey", "kms:Decrypt"}
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["DST_SSE"] == sse
    assert variables["DST_SSE_KMS_KEY_ID"] == (key if key_in_env else "")


def test_replicator_reads_only_its_one_secret_and_sends_only_to_its_queues(expanded):
    resolver = Resolver(expanded)
    statements = role_statements(resolver)
    (secret_read,) = allowed(statements, "secretsmanager:GetSecretValue")
    assert as_list(secret_read["Resource"]) == [REQUIRED_PARAMETERS["OssSecretArn"]]
    queue_name, queue = replication_queue(resolver)
    dlq_name = ref_name(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    senders = {ref_name(r) for s in allowed(statements, "sqs:SendMessage") for r in as_list(s["Resource"])}
    assert senders == {queue_name, dlq_name}
    for action in ("sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
        targets = {ref_name(r) for s in allowed(statements, action) for r in as_list(s["Resource"])}
        assert targets == {queue_name}, action


# ---- Every AWS call the replicator makes is granted ---------------------------------------------

# The crates the replicator Lambda is built from.
REPLICATOR_SOURCE_DIRS = ["shared/src", "functions/replicator/src"]

# The IAM actions an AWS SDK operation needs, by (service, SDK operation). Every operation the
# sources call must be here: a new call fails the test below until someone maps it.
SDK_OPERATION_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    # Multipart uploads are authorised by s3:PutObject, part by part.
    ("s3", "put_object"): ("s3:PutObject",),
    ("s3", "create_multipart_upload"): ("s3:PutObject",),
    ("s3", "upload_part"): ("s3:PutObject",),
    ("s3", "complete_multipart_upload"): ("s3:PutObject",),
    ("s3", "abort_multipart_upload"): ("s3:AbortMultipartUpload",),
    ("s3", "list_parts"): ("s3:ListMultipartUploadParts",),
    ("s3", "list_multipart_uploads"): ("s3:ListBucketMultipartUploads",),
    # HEAD is authorised by s3:GetObject.
    ("s3", "head_object"): ("s3:GetObject",),
    ("s3", "get_object"): ("s3:GetObject",),
    # A conditional delete (If-Match) needs s3:GetObject as well.
    ("s3", "delete_object"): ("s3:DeleteObject", "s3:GetObject"),
    ("s3", "list_objects_v2"): ("s3:ListBucket",),
    ("s3", "restore_object"): ("s3:RestoreObject",),
    ("sqs", "send_message"): ("sqs:SendMessage",),
    ("sqs", "send_message_batch"): ("sqs:SendMessage",),
    ("sqs", "change_message_visibility"): ("sqs:ChangeMessageVisibility",),
    ("sqs", "get_queue_url"): ("sqs:GetQueueUrl",),
    ("sqs", "get_queue_attributes"): ("sqs:GetQueueAttributes",),
    ("secretsmanager", "get_secret_value"): ("secretsmanager:GetSecretValue",),
}

# Operations the replicator makes only with these parameter values (and is granted only then).
SDK_OPERATIONS_ONLY_WITH: dict[tuple[str, str], dict[str, str]] = {
    ("s3", "delete_object"): {"ReplicateDeletes": "true"},
}

# Calls in the replicator's crates that the deployed function never makes against AWS, by
# (service, operation, file), with the reason. Nothing grants them.
SDK_CALLS_THE_REPLICATOR_NEVER_MAKES: dict[tuple[str, str, str], str] = {
    ("s3", "restore_object", "shared/src/s3/mod.rs"): (
        "S3Store's RestoreArchived, for S3 as a source; this template's replicator runs "
        "oss-to-s3 (no DIRECTION: Engine::OssToS3(Replicator<OssClient, S3Store>)), where S3 "
        "is only the sink, and a sink never restores (template-s3-to-oss.yaml grants it)"
    ),
}


def iam_actions(call: rust_sdk_calls.SdkCall) -> tuple[str, ...]:
    """The IAM actions `call` needs; fails for an operation nobody has mapped yet."""
    try:
        return SDK_OPERATION_ACTIONS[(call.service, call.operation)]
    except KeyError:
        raise AssertionError(
            f"no IAM action is known for the AWS SDK call {call.service} {call.operation} in "
            f"{call.file}:{call.line}: add ({call.service!r}, {call.operation!r}) to "
            "SDK_OPERATION_ACTIONS in tests/python/test_template.py (see the service's "
            "'Actions, resources, and condition keys' page in the IAM reference)"
        ) from None


def replicator_sdk_calls() -> list[rust_sdk_calls.SdkCall]:
    return rust_sdk_calls.scan(ROOT, REPLICATOR_SOURCE_DIRS)


@pytest.mark.parametrize("deletes", ["false", "true"])
def test_replicator_role_grants_every_aws_call_the_code_makes(expanded, deletes):
    calls = replicator_sdk_calls()
    found = {(c.service, c.operation) for c in calls}
    # The scan works: calls the replicator has always made are found.
    assert {("s3", "put_object"), ("s3", "head_object"), ("sqs", "send_message_batch"),
            ("sqs", "change_message_visibility"), ("secretsmanager", "get_secret_value")} <= found, (
        [str(c) for c in calls]
    )
    resolver = Resolver(expanded, {"ReplicateDeletes": deletes})
    statements = role_statements(resolver)
    missing = []
    for call in calls:
        actions = iam_actions(call)
        if (call.service, call.operation, call.file) in SDK_CALLS_THE_REPLICATOR_NEVER_MAKES:
            continue
        runs_with = SDK_OPERATIONS_ONLY_WITH.get((call.service, call.operation), {})
        if any(resolver.params[name] != value for name, value in runs_with.items()):
            continue
        missing += [f"{action} for {call}" for action in actions if not allowed(statements, action)]
    assert not missing, (
        "ReplicatorRole does not grant what the replicator calls:\n  " + "\n  ".join(missing)
        + "\nGrant it in template.yaml, or, if the Lambda never makes the call, add it to "
        "SDK_CALLS_THE_REPLICATOR_NEVER_MAKES with the reason."
    )
    stale = set(SDK_CALLS_THE_REPLICATOR_NEVER_MAKES) - {(c.service, c.operation, c.file) for c in calls}
    assert not stale, f"exempt calls no longer in the sources (remove them): {sorted(stale)}"


def test_exempt_aws_calls_stay_out_of_the_replicators_path(expanded):
    """The reasons in SDK_CALLS_THE_REPLICATOR_NEVER_MAKES still hold."""
    lib = (ROOT / "functions" / "replicator" / "src" / "lib.rs").read_text()
    # The engine restores and reads only its source; in oss-to-s3, S3 is only its sink.
    assert re.search(r"OssToS3\(\s*Replicator<\s*OssClient\s*,\s*S3Store\s*>\s*\)", lib), (
        "the replicator's Engine changed: review SDK_CALLS_THE_REPLICATOR_NEVER_MAKES"
    )
    (function,) = Resolver(expanded).resources("AWS::Lambda::Function").values()
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables.get("DIRECTION", "oss-to-s3") == "oss-to-s3", variables


def test_sdk_call_scan_finds_new_calls_and_unmapped_ones_fail(tmp_path):
    src = tmp_path / "crate" / "src"
    (src / "store").mkdir(parents=True)
    (src / "other").mkdir()
    (src / "lib.rs").write_text("mod store;\nmod other;\nmod queue;\n")
    (src / "store" / "mod.rs").write_text(
        "mod put;\npub struct Store { client: aws_sdk_s3::Client }\n"
        "impl Store { pub fn client(&self) -> &aws_sdk_s3::Client { &self.client } }\n"
    )
    # A child module uses its parent's private field.
    (src / "store" / "put.rs").write_text(
        "impl super::Store {\n    async fn p(&self) {\n        let _ = self.client.clone();\n"
        "        self\n            .client\n            .put_bucket_policy()\n            .send()\n            .await;\n"
        "    }\n}\n"
    )
    # A `client` field that is no AWS client (as the OSS client's), and an accessor used elsewhere.
    (src / "other" / "mod.rs").write_text(
        "struct Oss { client: reqwest::Client }\n"
        "fn f(o: &Oss, store: &crate::store::Store) {\n    o.client.get_object();\n"
        "    let s3 = store.client().clone();\n    s3.head_object().send();\n}\n"
    )
    (src / "queue.rs").write_text(
        "use aws_sdk_sqs::{types::X, Client as Sqs};\n"
        "fn g(sqs: &Sqs) { sqs.send_message().send(); }\n"
    )
    calls = rust_sdk_calls.scan(tmp_path, ["crate/src"])
    assert {(c.service, c.operation, c.file, c.line) for c in calls} == {
        ("s3", "put_bucket_policy", "crate/src/store/put.rs", 6),
        ("s3", "head_object", "crate/src/other/mod.rs", 5),
        ("sqs", "send_message", "crate/src/queue.rs", 2),
    }
    (unmapped,) = [c for c in calls if c.operation == "put_bucket_policy"]
    with pytest.raises(AssertionError, match=r"s3 put_bucket_policy in crate/src/store/put\.rs:6"):
        iam_actions(unmapped)


@pytest.mark.parametrize("mode", ["IamUser", "ManagedPolicyOnly"])
def test_forwarder_may_only_send_to_the_replication_queue(expanded, mode):
    resolver = Resolver(expanded, {"ForwarderCredentials": mode})
    queue_name, _ = replication_queue(resolver)
    (policy,) = resolver.resources("AWS::IAM::ManagedPolicy").values()
    (statement,) = statements_of(policy)
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["sqs:SendMessage"]
    assert [ref_name(r) for r in as_list(statement["Resource"])] == [queue_name]
    users = resolver.resources("AWS::IAM::User")
    assert len(users) == (1 if mode == "IamUser" else 0)
    for user in users.values():
        assert not user["Properties"].get("Policies"), "only the managed policy"


def test_forwarder_secret_key_is_stored_in_secrets_manager_not_in_outputs(expanded):
    resolver = Resolver(expanded, {"ForwarderCredentials": "IamUser"})
    (secret,) = resolver.resources("AWS::SecretsManager::Secret").values()
    assert "SecretAccessKey" in json.dumps(secret["Properties"]["SecretString"])
    assert "SecretAccessKey" not in json.dumps(expanded["Outputs"])
    for name in ("QueueUrl", "QueueArn", "DeadLetterQueueUrl", "DeadLetterQueueArn", "DashboardUrl",
                 "ForwarderAccessKeyId", "ForwarderCredentialsSecretArn", "ForwarderSetup"):
        assert name in expanded["Outputs"], name


@pytest.mark.parametrize("deletes", ["false", "true"])
def test_alarms_watch_the_dlq_the_queue_age_function_errors_failures_and_deletes(expanded, deletes):
    namespace = "custom/oss2s3"
    resolver = Resolver(expanded, {
        "OldestMessageAgeAlarmSeconds": "600",
        "ReplicateDeletes": deletes,
        "DeleteAlarmThreshold": "250",
        "MetricsNamespace": namespace,
    })
    queue_name, queue = replication_queue(resolver)
    dlq_name = ref_name(queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    (topic,) = resolver.resources("AWS::SNS::Topic")
    alarms = {}
    for alarm in resolver.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        dimensions = props.get("Dimensions", [])
        assert len(dimensions) <= 1, props
        dimension = ref_name(dimensions[0]["Value"]) if dimensions else None
        alarms[(props["Namespace"], props["MetricName"], dimension)] = props
        assert props["ComparisonOperator"] == "GreaterThanThreshold", props
        assert props["TreatMissingData"] == "notBreaching", props
        assert [ref_name(a) for a in props["AlarmActions"]] == [topic], props
        assert [ref_name(a) for a in props["OKActions"]] == [topic], props
    assert float(alarms[("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq_name)]["Threshold"]) == 0
    assert float(alarms[("AWS/SQS", "ApproximateAgeOfOldestMessage", queue_name)]["Threshold"]) == 600
    (function_name,) = resolver.resources("AWS::Lambda::Function")
    assert ("AWS/Lambda", "Errors", function_name) in alarms

    # EMF metrics by FunctionName alone: the replicator publishes Failures by FunctionName and
    # Kind and rolled up by FunctionName; FunctionName keeps stacks sharing a namespace apart.
    failures = alarms[(namespace, "Failures", function_name)]
    assert (failures["Statistic"], int(failures["Period"]), float(failures["Threshold"])) == ("Sum", 300, 0)
    deleted = alarms.get((namespace, "ObjectsDeleted", function_name))
    assert (deleted is not None) == (deletes == "true"), "the delete-rate alarm exists only with deletes"
    if deleted is not None:
        assert (deleted["Statistic"], int(deleted["Period"]), float(deleted["Threshold"])) == ("Sum", 300, 250)
    threshold = expanded["Parameters"]["DeleteAlarmThreshold"]
    assert threshold["Type"] == "Number" and int(threshold["Default"]) == 1000
    sources = replicator_sources()
    for metric in ("Failures", "ObjectsDeleted"):
        assert f'"{metric}"' in sources, f"the replicator emits no {metric}"
    assert ".rollup()" in sources, "Failures must also be published without its Kind dimension"


def test_function_runs_the_cargo_lambda_bootstrap_on_al2023(sam_template, expanded):
    resolver = Resolver(expanded)
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    props = function["Properties"]
    assert props["Runtime"] == "provided.al2023" and props["Handler"] == "bootstrap"
    assert props["Architectures"] == ["arm64"]
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    (sam_function,) = (
        r for r in sam_template["Resources"].values() if r["Type"] == "AWS::Serverless::Function"
    )
    assert sam_function["Metadata"]["BuildMethod"] == "rust-cargolambda"
    manifest = tomllib.loads((ROOT / sam_function["Properties"]["CodeUri"] / "Cargo.toml").read_text())
    assert manifest["package"]["name"] == "replicator"
    binaries = [b["name"] for b in manifest.get("bin", [])] or [manifest["package"]["name"]]
    assert sam_function["Metadata"]["BuildProperties"]["Binary"] in binaries


def replicator_sources() -> str:
    sources = [*(ROOT / "functions" / "replicator" / "src").rglob("*.rs"), *(ROOT / "shared" / "src").rglob("*.rs")]
    return "\n".join(p.read_text() for p in sources)


def test_function_sets_only_variables_the_replicator_reads(expanded):
    resolver = Resolver(expanded)
    (function,) = resolver.resources("AWS::Lambda::Function").values()
    variables = set(function["Properties"]["Environment"]["Variables"])
    mentioned = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', replicator_sources()))
    assert variables - mentioned == set(), "set by the template but never read by the replicator"
    assert {"OSS_REGION", "OSS_SECRET_ID", "DST_BUCKET", "QUEUE_URL", "DLQ_URL"} <= variables


def dashboard_widgets(resolver: Resolver) -> list[dict]:
    (dashboard,) = resolver.resources("AWS::CloudWatch::Dashboard").values()
    body, _ = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    # Placeholders stand in for ${...} so that the body can be parsed as it will be deployed.
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))["widgets"]


def test_dashboard_charts_the_emf_metrics_the_replicator_emits(expanded):
    widgets = dashboard_widgets(Resolver(expanded))
    text = json.dumps(widgets)
    sources = replicator_sources()
    for metric in ("ReplicationLatencyMs", "BytesReplicated", "ObjectsReplicated", "ObjectsSkipped",
                   "Failures", "CopyDurationMs"):
        assert metric in text, metric
        assert f'"{metric}"' in sources, f"the replicator emits no {metric}"
    latency = [m for w in widgets for m in w["properties"]["metrics"] if "ReplicationLatencyMs" in m or "..." in m]
    assert {m[-1]["stat"] for m in latency} >= {"p50", "p99"}
    assert "ApproximateNumberOfMessagesVisible" in text and "<Dlq>" in text and "<Queue>" in text
    assert '"<MetricsNamespace>"' in text and "FunctionName" in text
    # All failures by FunctionName alone (the series the failures alarm watches), beside the kinds.
    all_failures = [
        (w, m) for w in widgets for m in w["properties"]["metrics"]
        if m[:4] == ["<MetricsNamespace>", "Failures", "FunctionName", "<Fn>"]
        and all(isinstance(x, dict) for x in m[4:])
    ]
    assert len(all_failures) == 1, "a Failures series by FunctionName alone"
    ((widget, series),) = all_failures
    options = next((x for x in series[4:]), {})
    assert options.get("stat", widget["properties"].get("stat")) == "Sum"


# ---- sam build ---------------------------------------------------------------------------------


def test_sam_build_produces_the_replicator_bootstrap(tmp_path):
    if shutil.which("cargo") is None:
        pytest.fail("cargo is not on PATH")
    env = tool_env()
    # A release build with LTO of the whole AWS SDK takes minutes on two cores. It gets a target
    # directory of its own under target/, kept between runs, so cargo recompiles only what
    # changed and never contends for the debug build's lock.
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "sam"
    env["CARGO_TARGET_DIR"] = str(target)
    build_dir = tmp_path / "build"
    started = time.monotonic()
    run_tool(
        [
            str(VENV_BIN / "sam"), "build", "--beta-features",
            "--template-file", str(TEMPLATE),
            "--build-dir", str(build_dir),
            # arm64 (the default) needs the aarch64 Rust target, which test machines lack.
            "--parameter-overrides", "Architecture=x86_64",
        ],
        timeout=3600,
        env=env,
    )
    print(f"sam build took {time.monotonic() - started:.0f} s", file=sys.stderr)
    bootstraps = list(build_dir.glob("*/bootstrap"))
    assert len(bootstraps) == 1, bootstraps
    header = bootstraps[0].read_bytes()[:20]
    assert header[:4] == b"\x7fELF", "not an ELF executable"
    assert int.from_bytes(header[18:20], "little") == 0x3E, "not x86_64"
    assert os.access(bootstraps[0], os.X_OK)
    built_template = (build_dir / "template.yaml").read_text()
    assert f"CodeUri: {bootstraps[0].parent.name}" in built_template


# ---- Scheduled reconcile -----------------------------------------------------------------------


def rendered_sub(resolver: Resolver, node) -> str:
    """A Fn::Sub string with the parameters substituted."""
    text = node["Fn::Sub"]
    return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: str(resolver.params[m.group(1)]), text)


def test_reconcile_schedule_is_off_by_default(expanded):
    assert Resolver(expanded).resources("AWS::Scheduler::Schedule") == {}
    assert not [
        r for r in Resolver(expanded).resources("AWS::IAM::Role").values()
        if "scheduler.amazonaws.com" in json.dumps(r)
    ]


def test_reconcile_schedule_sends_a_job_message_to_the_replication_queue(expanded):
    resolver = Resolver(
        expanded,
        {"ReconcileSchedule": "cron(0 3 * * ? *)", "SourcePrefix": "photos/", "ReconcileShards": "32"},
    )
    (schedule,) = resolver.resources("AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "cron(0 3 * * ? *)"
    target = props["Target"]
    queue_name, _ = replication_queue(resolver)
    assert ref_name(target["Arn"]) == queue_name
    (role,) = [
        r for name, r in resolver.resources("AWS::IAM::Role").items()
        if name == ref_name(target["RoleArn"])
    ]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]
    statements = statements_of(role)
    assert [set(as_list(s["Action"])) for s in statements] == [{"sqs:SendMessage"}]
    assert [ref_name(r) for s in statements for r in as_list(s["Resource"])] == [queue_name]
    # The message as the scheduler sends it: its context attribute filled in, a job the
    # replicator plans (transfer::job::JobRequest).
    body = rendered_sub(resolver, target["Input"]).replace(
        "<aws.scheduler.scheduled-time>", "2026-12-01T03:00:00Z"
    )
    job = json.loads(body)["job"]
    assert job == {
        "job_id": "reconcile-2026-12-01T03:00:00Z",
        "source_bucket": REQUIRED_PARAMETERS["OssBucket"],
        "prefix": "photos/",
        "shards": 32,
        "overwrite": "changed",
        "report_bucket": REQUIRED_PARAMETERS["DestinationBucket"],
        "report_prefix": "oss2s3-jobs/",
    }


def test_the_replicator_may_write_job_reports_only_under_their_prefix(expanded):
    resolver = Resolver(expanded, {"JobReportPrefix": "audit/jobs/"})
    writes = allowed(role_statements(resolver), "s3:PutObject")
    resources = sorted(r["Fn::Sub"] for s in writes for r in as_list(s["Resource"]))
    assert resources == [
        "arn:${AWS::Partition}:s3:::${DestinationBucket}/${DestinationPrefix}*",
        "arn:${AWS::Partition}:s3:::${DestinationBucket}/${JobReportPrefix}*",
    ]
    assert resolver.params["JobReportPrefix"] == "audit/jobs/"


def test_batch_defaults_match_the_replicators_measured_defaults():
    """BatchSize and MessageConcurrency default to the replicator's constants, which bench P3
    measures; both templates agree, and a batch above 10 gets the window it requires."""
    from samtranslator.yaml_helper import yaml_parse

    source = (ROOT / "functions" / "replicator" / "src" / "batch.rs").read_text()

    def constant(name: str) -> int:
        match = re.search(rf"pub const {name}: usize = (\d+);", source)
        assert match, f"{name} not found in batch.rs"
        return int(match.group(1))

    for path in (TEMPLATE, ROOT / "template-s3-to-oss.yaml"):
        parameters = yaml_parse(path.read_text())["Parameters"]
        batch = int(parameters["BatchSize"]["Default"])
        assert batch == constant("RECOMMENDED_BATCH_SIZE"), path.name
        assert int(parameters["MessageConcurrency"]["Default"]) == constant(
            "DEFAULT_MESSAGE_CONCURRENCY"
        ), path.name
        if batch > 10:
            assert int(parameters["MaximumBatchingWindowInSeconds"]["Default"]) >= 1, path.name
