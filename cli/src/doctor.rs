//! `oss2s3 doctor`: checks a deployment as a user would before trusting it. Each finding says
//! what was found and, when something is wrong, how to fix it.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;
use transfer::oss::{OssClient, StaticCredentials, parse_credentials_json};
use transfer::store::{ListRequest, ObjectStore};

use crate::location::{Location, Service};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// As it should be.
    Ok,
    /// Works, but not as recommended.
    Warn,
    /// Broken: replication will lose time or fail.
    Fail,
}

/// One thing checked.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// What was checked.
    pub check: String,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it needs fixing.
    pub fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "[{tag}] {}: {}", self.check, self.detail)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

fn finding(level: Level, check: &str, detail: impl Into<String>, fix: Option<String>) -> Finding {
    Finding {
        level,
        check: check.to_owned(),
        detail: detail.into(),
        fix,
    }
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The task queue's URL.
    pub queue: Option<String>,
    /// The function's timeout in seconds, to compare with the queue's visibility timeout.
    pub function_timeout: Option<u64>,
    /// The Secrets Manager secret with the OSS keys.
    pub secret: Option<String>,
    /// The source bucket (and prefix).
    pub source: Option<Location>,
    /// The destination bucket (and prefix).
    pub destination: Option<Location>,
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> Result<HashMap<QueueAttributeName, String>, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .map(|o| o.attributes().cloned().unwrap_or_default())
        .map_err(|e| DisplayErrorContext(e).to_string())
}

/// The event source mappings that read the queue `arn`, and their functions: returns the
/// function's timeout when exactly one mapping reads it.
async fn check_mappings(
    lambda: &aws_sdk_lambda::Client,
    arn: &str,
    out: &mut Vec<Finding>,
) -> Option<u64> {
    let check = "event source mapping";
    let mappings = match lambda
        .list_event_source_mappings()
        .event_source_arn(arn)
        .send()
        .await
    {
        Ok(o) => o.event_source_mappings().to_vec(),
        Err(e) => {
            out.push(finding(
                Level::Warn,
                check,
                format!(
                    "cannot list the mappings of {arn}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                ),
                Some("allow these credentials lambda:ListEventSourceMappings and lambda:GetFunctionConfiguration, or pass --function-timeout".into()),
            ));
            return None;
        }
    };
    let [mapping] = mappings.as_slice() else {
        if mappings.is_empty() {
            out.push(finding(
                Level::Fail,
                check,
                format!("no function reads {arn}: tasks pile up and nothing is replicated"),
                Some(format!("deploy template.yaml, or: aws lambda create-event-source-mapping --function-name REPLICATOR --event-source-arn {arn} --function-response-types ReportBatchItemFailures --scaling-config MaximumConcurrency=50")),
            ));
        } else {
            out.push(finding(
                Level::Warn,
                check,
                format!("{} mappings read {arn}: each message goes to one of them, whichever polls first", mappings.len()),
                Some("keep one replicator mapping per queue (aws lambda delete-event-source-mapping --uuid ...)".into()),
            ));
        }
        return None;
    };
    let uuid = mapping.uuid().unwrap_or_default();
    let function = mapping.function_arn().unwrap_or_default();
    let state = mapping.state().unwrap_or("unknown");
    out.push(if state == "Enabled" {
        finding(Level::Ok, check, format!("{uuid} feeds {function}"), None)
    } else {
        finding(
            Level::Fail,
            check,
            format!("{uuid} is {state}: tasks are not delivered to {function}"),
            Some(format!(
                "aws lambda update-event-source-mapping --uuid {uuid} --enabled"
            )),
        )
    });
    let reports = mapping
        .function_response_types()
        .iter()
        .any(|t| t.as_str() == "ReportBatchItemFailures");
    out.push(if reports {
        finding(Level::Ok, "partial batch responses", "ReportBatchItemFailures is on", None)
    } else {
        finding(
            Level::Fail,
            "partial batch responses",
            "ReportBatchItemFailures is off: Lambda ignores the replicator's list of failed messages and deletes the whole batch when the invocation returns, so failed copies are lost instead of retried",
            Some(format!("aws lambda update-event-source-mapping --uuid {uuid} --function-response-types ReportBatchItemFailures")),
        )
    });
    let batch = mapping.batch_size().unwrap_or(10);
    let window = mapping.maximum_batching_window_in_seconds().unwrap_or(0);
    out.push(finding(
        Level::Ok,
        "batching",
        format!("up to {batch} messages, gathered for up to {window} s"),
        None,
    ));
    let concurrency = mapping
        .scaling_config()
        .and_then(aws_sdk_lambda::types::ScalingConfig::maximum_concurrency);
    out.push(match concurrency {
        Some(n) => finding(Level::Ok, "maximum concurrency", format!("at most {n} environments read the queue"), None),
        None => finding(
            Level::Warn,
            "maximum concurrency",
            "unbounded: a backfill can take every environment of the account's Lambda concurrency and throttle other functions (and OSS, with requests from all of them)",
            Some(format!("aws lambda update-event-source-mapping --uuid {uuid} --scaling-config MaximumConcurrency=50 (the template's MaximumConcurrency)")),
        ),
    });
    match lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
    {
        Ok(configuration) => configuration.timeout().and_then(|t| u64::try_from(t).ok()),
        Err(e) => {
            out.push(finding(
                Level::Warn,
                "function",
                format!(
                    "cannot read {function}'s configuration: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                ),
                Some("allow these credentials lambda:GetFunctionConfiguration, or pass --function-timeout".into()),
            ));
            None
        }
    }
}

/// The queue and its DLQ.
async fn check_queue(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    function_timeout: Option<u64>,
    out: &mut Vec<Finding>,
) {
    let attributes = match queue_attributes(sqs, url).await {
        Ok(a) => a,
        Err(e) => {
            out.push(finding(
                Level::Fail,
                "task queue",
                format!("cannot read {url}: {e}"),
                Some(
                    "check the URL and that these credentials may call sqs:GetQueueAttributes"
                        .into(),
                ),
            ));
            return;
        }
    };
    let number =
        |name: QueueAttributeName| attributes.get(&name).and_then(|v| v.parse::<u64>().ok());
    out.push(finding(
        Level::Ok,
        "task queue",
        format!("{url} exists"),
        None,
    ));
    let visibility = number(QueueAttributeName::VisibilityTimeout).unwrap_or(30);
    if let Some(timeout) = function_timeout {
        // AWS Lambda's guide for SQS event sources: a visibility timeout of at least six times
        // the function timeout.
        let (level, fix) = if visibility < timeout {
            (Level::Fail, true)
        } else if visibility < 6 * timeout {
            (Level::Warn, true)
        } else {
            (Level::Ok, false)
        };
        out.push(finding(
            level,
            "visibility timeout",
            format!("{visibility} s for a function timeout of {timeout} s"),
            fix.then(|| format!("set the queue's VisibilityTimeout to at least {} s (6 × the function timeout, as AWS recommends for SQS event sources)", 6 * timeout)),
        ));
    }
    let max_size = number(QueueAttributeName::MaximumMessageSize).unwrap_or(262_144);
    out.push(if max_size < 1_048_576 {
        finding(
            Level::Warn,
            "maximum message size",
            format!(
                "{max_size} bytes: continuations of objects with thousands of parts may not fit"
            ),
            Some("set MaximumMessageSize to 1048576 (the template's value)".into()),
        )
    } else {
        finding(
            Level::Ok,
            "maximum message size",
            format!("{max_size} bytes"),
            None,
        )
    });
    let Some(policy) = attributes.get(&QueueAttributeName::RedrivePolicy) else {
        out.push(finding(
            Level::Fail,
            "redrive policy",
            "none: a message that keeps failing is retried until the queue's retention ends and is then lost",
            Some("set RedrivePolicy {\"deadLetterTargetArn\": <DLQ ARN>, \"maxReceiveCount\": 5} (template.yaml does)".into()),
        ));
        return;
    };
    let policy: serde_json::Value = serde_json::from_str(policy).unwrap_or_default();
    let receives = policy["maxReceiveCount"]
        .as_u64()
        .or_else(|| {
            policy["maxReceiveCount"]
                .as_str()
                .and_then(|s| s.parse().ok())
        })
        .unwrap_or(0);
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    out.push(if receives < 3 {
        finding(
            Level::Warn,
            "redrive policy",
            format!("maxReceiveCount {receives}: one throttled or timed-out invocation sends messages to the DLQ"),
            Some("set maxReceiveCount to 5 or more".into()),
        )
    } else {
        finding(Level::Ok, "redrive policy", format!("maxReceiveCount {receives}, DLQ {arn}"), None)
    });
    // arn:aws:sqs:<region>:<account>:<name>
    let parts: Vec<&str> = arn.split(':').collect();
    let (Some(account), Some(name)) = (parts.get(4), parts.get(5)) else {
        out.push(finding(
            Level::Fail,
            "DLQ",
            format!("{arn:?} is not a queue ARN"),
            Some("point deadLetterTargetArn at the DLQ's ARN".into()),
        ));
        return;
    };
    let dlq_url = match sqs
        .get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
    {
        Ok(o) => o.queue_url().unwrap_or_default().to_owned(),
        Err(e) => {
            out.push(finding(
                Level::Fail,
                "DLQ",
                format!("{arn} cannot be found: {}", DisplayErrorContext(e)),
                Some("create the DLQ, or fix deadLetterTargetArn".into()),
            ));
            return;
        }
    };
    let retention = number(QueueAttributeName::MessageRetentionPeriod).unwrap_or(345_600);
    match queue_attributes(sqs, &dlq_url).await {
        Ok(dlq) => {
            let dlq_retention = dlq
                .get(&QueueAttributeName::MessageRetentionPeriod)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(345_600);
            // SQS keeps a moved message's original enqueue time: a DLQ whose retention is not
            // longer than the source queue's can expire messages as soon as they arrive.
            out.push(if dlq_retention <= retention {
                finding(
                    Level::Warn,
                    "DLQ retention",
                    format!("{dlq_retention} s, not longer than the task queue's {retention} s: failures can expire before anyone sees them"),
                    Some("set the DLQ's MessageRetentionPeriod to 1209600 (14 days)".into()),
                )
            } else {
                finding(Level::Ok, "DLQ retention", format!("{dlq_retention} s"), None)
            });
        }
        Err(e) => out.push(finding(
            Level::Fail,
            "DLQ",
            format!("cannot read {dlq_url}: {e}"),
            None,
        )),
    }
}

/// The secret, and that its keys (or the environment's) can list the OSS bucket.
async fn check_oss(
    aws: &aws_config::SdkConfig,
    secret: Option<&str>,
    source: Option<&Location>,
    out: &mut Vec<Finding>,
) {
    let mut client = None;
    if let Some(id) = secret {
        let sm = aws_sdk_secretsmanager::Client::new(aws);
        match sm.get_secret_value().secret_id(id).send().await {
            Err(e) => out.push(finding(
                Level::Fail,
                "OSS secret",
                format!("cannot read {id}: {}", aws_sdk_secretsmanager::error::DisplayErrorContext(e)),
                Some("check the secret's name and that these credentials may call secretsmanager:GetSecretValue".into()),
            )),
            Ok(value) => match parse_credentials_json(value.secret_string().unwrap_or_default()) {
                Err(e) => out.push(finding(
                    Level::Fail,
                    "OSS secret",
                    format!("{id} is not in the replicator's format: {e}"),
                    Some("store {\"access_key_id\": \"...\", \"secret_access_key\": \"...\"}".into()),
                )),
                Ok(credentials) => {
                    out.push(finding(Level::Ok, "OSS secret", format!("{id} holds access key {}", credentials.access_key_id), None));
                    match transfer::env::oss_config(&transfer::env::Env::process()) {
                        Ok(config) => {
                            client = OssClient::with_provider(config, std::sync::Arc::new(StaticCredentials::new(credentials))).ok();
                        }
                        Err(e) => out.push(finding(Level::Fail, "OSS settings", e.to_string(), None)),
                    }
                }
            },
        }
    }
    let Some(source) = source.filter(|s| s.service == Service::Oss) else {
        return;
    };
    let client = match client {
        Some(c) => c,
        None if secret.is_none() => match crate::stores::oss_client(aws) {
            Ok(c) => c,
            Err(e) => {
                out.push(finding(Level::Fail, "OSS access", format!("{e:#}"), None));
                return;
            }
        },
        None => return,
    };
    let request = ListRequest {
        prefix: source.prefix.clone(),
        max_keys: Some(1),
        ..ListRequest::default()
    };
    out.push(match client.list_objects(&source.bucket, &request).await {
        Ok(_) => finding(Level::Ok, "OSS access", format!("the keys can list {source}"), None),
        Err(e) => finding(
            Level::Fail,
            "OSS access",
            format!("listing {source} failed: {e}"),
            Some("grant the key oss:ListObjects and oss:GetObject on the bucket (and check OSS_REGION / OSS_ENDPOINT)".into()),
        ),
    });
}

/// The destination bucket: versioning and the rule that removes abandoned uploads.
async fn check_bucket(s3: &aws_sdk_s3::Client, destination: &Location, out: &mut Vec<Finding>) {
    let bucket = &destination.bucket;
    if let Err(e) = s3.head_bucket().bucket(bucket).send().await {
        out.push(finding(
            Level::Fail,
            "destination bucket",
            format!("{bucket}: {}", aws_sdk_s3::error::DisplayErrorContext(e)),
            Some("create the bucket, or grant s3:ListBucket on it".into()),
        ));
        return;
    }
    out.push(finding(
        Level::Ok,
        "destination bucket",
        format!("{bucket} exists"),
        None,
    ));
    let status = match s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => v
            .status()
            .map_or_else(|| "never enabled".to_owned(), |s| s.as_str().to_owned()),
        Err(e) => format!(
            "unknown (GetBucketVersioning failed: {})",
            aws_sdk_s3::error::DisplayErrorContext(e)
        ),
    };
    out.push(if status == "Enabled" {
        finding(Level::Ok, "versioning", "enabled", None)
    } else {
        finding(
            Level::Warn,
            "versioning",
            format!("{status}: an overwrite or delete replicated by mistake cannot be undone"),
            Some(format!("aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled")),
        )
    });
    let rules = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .map(|c| c.rules().to_vec())
        .unwrap_or_default();
    let covers = rules.iter().any(|rule| {
        let enabled = rule.status().as_str() == "Enabled";
        let aborts = rule
            .abort_incomplete_multipart_upload()
            .and_then(aws_sdk_s3::types::AbortIncompleteMultipartUpload::days_after_initiation)
            .is_some();
        let prefix = rule.filter().and_then(|f| f.prefix()).unwrap_or_default();
        enabled && aborts && destination.prefix.starts_with(prefix)
    });
    out.push(if covers {
        finding(Level::Ok, "abandoned uploads", "a lifecycle rule aborts incomplete multipart uploads", None)
    } else {
        finding(
            Level::Warn,
            "abandoned uploads",
            "no enabled lifecycle rule with AbortIncompleteMultipartUpload covers the destination: parts of uploads cut off by a hard kill are stored and billed forever",
            Some(format!("aws s3api put-bucket-lifecycle-configuration --bucket {bucket} --lifecycle-configuration '{{\"Rules\":[{{\"ID\":\"abort-incomplete-uploads\",\"Status\":\"Enabled\",\"Filter\":{{}},\"AbortIncompleteMultipartUpload\":{{\"DaysAfterInitiation\":7}}}}]}}' (this replaces existing rules; see docs/deploy-aws.md)")),
        )
    });
}

/// Runs every check `target` asks for.
pub async fn run(
    aws: &aws_config::SdkConfig,
    s3: &aws_sdk_s3::Client,
    target: &Target,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some(queue) = &target.queue {
        let sqs = aws_sdk_sqs::Client::new(aws);
        let mut mapped = Vec::new();
        let mut function_timeout = target.function_timeout;
        if let Some(arn) = queue_attributes(&sqs, queue)
            .await
            .ok()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        {
            let timeout =
                check_mappings(&aws_sdk_lambda::Client::new(aws), &arn, &mut mapped).await;
            function_timeout = function_timeout.or(timeout);
        }
        check_queue(&sqs, queue, function_timeout, &mut out).await;
        out.extend(mapped);
    }
    if target.secret.is_some() || target.source.is_some() {
        check_oss(
            aws,
            target.secret.as_deref(),
            target.source.as_ref(),
            &mut out,
        )
        .await;
    }
    if let Some(destination) = &target.destination {
        match destination.service {
            Service::S3 => check_bucket(s3, destination, &mut out).await,
            Service::Oss => out.push(finding(
                Level::Warn,
                "destination bucket",
                "OSS destinations are not checked yet",
                None,
            )),
        }
    }
    out
}
