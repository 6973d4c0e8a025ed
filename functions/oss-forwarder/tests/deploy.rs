//! Structural checks of `deploy/fc/s.yaml` (Serverless Devs, component `fc3`).
//!
//! `s preview` needs the fc3 component, which the CLI downloads from the Serverless Devs
//! registry, so it cannot run offline; this test parses the file (PyYAML from the project venv)
//! and checks what the forwarder depends on.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::Command;

use serde_json::Value;
use transfer::trigger::EventFilter;

fn s_yaml() -> Value {
    let path = testkit::repo_root().join("deploy/fc/s.yaml");
    let output = Command::new(testkit::python())
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
        ])
        .arg(&path)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "s.yaml does not parse: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn props() -> Value {
    let doc = s_yaml();
    assert_eq!(doc["edition"], "3.0.0");
    let resource = &doc["resources"]["oss-forwarder"];
    assert_eq!(resource["component"], "fc3");
    resource["props"].clone()
}

#[test]
fn s_yaml_declares_custom_runtime_on_port_9000() {
    let props = props();
    assert_eq!(props["runtime"], "custom.debian10");
    assert_eq!(props["customRuntimeConfig"]["port"], 9000);
    assert_eq!(
        props["customRuntimeConfig"]["command"],
        serde_json::json!(["/code/bootstrap"])
    );
    assert_eq!(props["code"], "../../target/fc/oss-forwarder.zip");
    for field in ["memorySize", "timeout", "instanceConcurrency"] {
        assert!(props[field].as_u64().is_some_and(|v| v > 0), "{field}");
    }
}

#[test]
fn s_yaml_sets_the_variables_the_forwarder_requires() {
    let env = &props()["environmentVariables"];
    for var in [
        "SQS_QUEUE_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        assert!(env[var].is_string(), "{var} missing");
    }
    // Secrets are references to the deployer's environment, never literals.
    assert!(
        env["AWS_SECRET_ACCESS_KEY"]
            .as_str()
            .unwrap()
            .starts_with("${env(")
    );
}

#[test]
fn s_yaml_retries_failed_events_and_keeps_them() {
    let config = &props()["asyncInvokeConfig"];
    let retries = config["maxAsyncRetryAttempts"].as_u64().unwrap();
    assert!((1..=8).contains(&retries), "{retries}");
    assert!(config["maxAsyncEventAgeInSeconds"].as_u64().unwrap() > 0);
    assert!(config["destinationConfig"]["onFailure"]["destination"].is_string());
}

#[test]
fn s_yaml_trigger_events_are_all_forwarded_by_default() {
    let props = props();
    let trigger = &props["triggers"][0];
    assert_eq!(trigger["triggerType"], "oss");
    assert!(trigger["invocationRole"].is_string());
    assert!(
        trigger["sourceArn"]
            .as_str()
            .unwrap()
            .starts_with("acs:oss:")
    );
    let filter = &trigger["triggerConfig"]["filter"]["key"];
    assert!(filter.get("prefix").is_some() && filter.get("suffix").is_some());
    let events = trigger["triggerConfig"]["events"].as_array().unwrap();
    assert!(!events.is_empty());
    let default = EventFilter::default();
    for event in events {
        let event = event.as_str().unwrap();
        assert!(event.starts_with("oss:"), "{event}");
        assert!(default.forwards_event(event), "{event} would be dropped");
    }
}

/// The Serverless Devs CLI, installed with npm into `target/sdevs` on first use.
fn serverless_devs_cli() -> std::path::PathBuf {
    let prefix = testkit::repo_root().join("target/sdevs");
    let cli = prefix.join("node_modules/.bin/s");
    if !cli.exists() {
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&prefix)
            .arg("@serverless-devs/s@3")
            .status()
            .expect("run npm (Node.js is needed for the s.yaml check)");
        assert!(status.success(), "npm install @serverless-devs/s failed");
    }
    cli
}

#[test]
fn s_preview_renders_s_yaml() {
    let cli = serverless_devs_cli();
    let home = testkit::repo_root().join("target/sdevs/home");
    std::fs::create_dir_all(&home).unwrap();
    let output = Command::new(cli)
        .arg("preview")
        .current_dir(testkit::repo_root().join("deploy/fc"))
        .env("HOME", &home)
        .env("NO_COLOR", "1")
        .env("SOURCE_BUCKET", "preview-bucket")
        .env(
            "SQS_QUEUE_URL",
            "https://sqs.example/123456789012/preview-queue",
        )
        .env("SQS_REGION", "eu-west-1")
        .env("FORWARDER_AWS_ACCESS_KEY_ID", "AKIDPREVIEW")
        .env("FORWARDER_AWS_SECRET_ACCESS_KEY", "preview-secret")
        .env(
            "ON_FAILURE_DESTINATION",
            "acs:mns:cn-hangzhou:1:/queues/failed/messages",
        )
        .output()
        .expect("run s preview");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "s preview failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "custom.debian10",
        "/code/bootstrap",
        "preview-queue",
        "acs:oss:cn-hangzhou:",
        "preview-bucket",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} not rendered:\n{stdout}"
        );
    }
}
