//! `oss2s3 diff`, `sync` and `verify` as a user runs them: the binary, configured through the
//! environment, against the OSS emulator and moto's S3, on a bucket of odd keys where some
//! objects are already replicated, some changed at the same size, some exist only in the
//! destination and one was uploaded there by another tool.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Stack, data, keys, odd_key};

/// How many objects the job test seeds (`OSS2S3_CLI_OBJECTS` to change; the issue's full run
/// uses 10,000).
fn object_count() -> usize {
    std::env::var("OSS2S3_CLI_OBJECTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_500)
}

fn code(output: &std::process::Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_sync_and_verify_agree_with_what_was_done() {
    let stack = Stack::start().await;
    let n = object_count();
    // Every fifth object lives under pre/ and is replicated first.
    let mut all = BTreeSet::new();
    let mut pre = BTreeSet::new();
    for i in 0..n {
        let dir = if i % 5 == 0 { "pre" } else { "new" };
        let key = odd_key(dir, i);
        stack.seed(&key, &data(1 + i % 700, i as u64)).await;
        if dir == "pre" {
            pre.insert(key.clone());
        }
        all.insert(key);
    }
    let long = "k".repeat(1_023);
    let big = "big/17 MiB object".to_owned();
    stack.seed(&long, b"the longest key").await;
    stack.seed(&big, &data(17 << 20, 17)).await;
    all.insert(long.clone());
    all.insert(big.clone());
    let conflict = "new/00001 written by another tool".to_owned();
    stack.seed(&conflict, b"source bytes").await;
    all.insert(conflict.clone());

    // Replicate pre/ first, with a filter.
    let src = Stack::src_url();
    let dst = stack.dst_url();
    let first = stack
        .run(&[
            "sync",
            &src,
            &dst,
            "--include",
            "pre/**",
            "--job-id",
            "pre",
            "--quiet",
        ])
        .await;
    assert_eq!(code(&first), 0);
    assert_eq!(
        keys(&stack.list("pre", "completed_list")),
        pre.iter().cloned().collect::<Vec<_>>()
    );

    // Then the world moves on: ten same-size overwrites, a deleted source, objects only in the
    // destination (one written from the source by oss2s3, five by another tool), and an object
    // another tool put at a key the source also has.
    let changed: Vec<String> = pre.iter().take(10).cloned().collect();
    for (j, key) in changed.iter().enumerate() {
        let old = stack
            .services
            .emulator
            .head_object_direct(common::SRC, key)
            .expect("exists");
        stack
            .seed(
                key,
                &data(usize::try_from(old.size).expect("small"), 1_000 + j as u64),
            )
            .await;
    }
    let deleted = pre.iter().nth(10).cloned().expect("enough objects");
    assert!(
        stack
            .services
            .emulator
            .delete_object_direct(common::SRC, &deleted)
    );
    all.remove(&deleted);
    let foreign: Vec<String> = (0..5).map(|i| format!("zz-foreign/{i} x+y")).collect();
    for key in &foreign {
        stack.put_s3(key, b"not from oss").await;
    }
    stack.put_s3(&conflict, b"other bytes!").await;
    let missing: BTreeSet<String> = all
        .iter()
        .filter(|k| !pre.contains(*k) && **k != conflict)
        .cloned()
        .collect();

    // diff: a dry run that counts exactly that.
    let diff = stack.run(&["diff", &src, &dst, "--json"]).await;
    assert_eq!(code(&diff), 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&diff)).expect("JSON");
    assert_eq!(json["to_copy"]["missing"], missing.len());
    assert_eq!(json["to_copy"]["changed"], changed.len());
    assert_eq!(json["up_to_date"]["objects"], pre.len() - changed.len() - 1);
    assert_eq!(json["conflicts"]["objects"], 1);
    assert_eq!(json["extra"]["objects"], foreign.len() + 1);
    assert!(
        json["estimate"]["destination_requests"]
            .as_u64()
            .expect("a count")
            > 0
    );
    let before = stack.s3_objects().await;
    assert_eq!(
        before.len(),
        pre.len() + foreign.len() + 1,
        "diff wrote nothing"
    );

    // sync: copies the missing and changed objects, nothing else, and says so in the report.
    let sync = stack
        .run(&["sync", &src, &dst, "--job-id", "j1", "--part-size", "5M"])
        .await;
    assert_eq!(
        code(&sync),
        0,
        "conflicts and extras are skipped, not failures"
    );
    let mut copied: Vec<String> = missing.iter().chain(&changed).cloned().collect();
    copied.sort();
    assert_eq!(keys(&stack.list("j1", "completed_list")), copied);
    assert!(stack.list("j1", "error_list").is_empty());
    let skipped = stack.list("j1", "skipped_list");
    let conflict_row = skipped
        .iter()
        .find(|r| r.key == conflict)
        .expect("the conflict is listed");
    assert_eq!(conflict_row.status, "conflict");
    assert!(
        conflict_row.reason.contains("no oss2s3 marker"),
        "{}",
        conflict_row.reason
    );
    assert_eq!(
        skipped.iter().filter(|r| r.status == "extra").count(),
        foreign.len() + 1
    );
    assert_eq!(
        stack.list("j1", "total_list").len(),
        copied.len() + skipped.len(),
        "the total list is the other lists together"
    );
    let summary = stack.summary("j1");
    assert_eq!(summary["objects"]["completed"], copied.len());
    assert_eq!(summary["objects"]["failed"], 0);
    assert_eq!(summary["job_id"], "j1");
    for field in [
        "started_at",
        "finished_at",
        "duration_seconds",
        "throughput_bytes_per_second",
    ] {
        assert!(!summary[field].is_null(), "summary.json has {field}");
    }
    assert!(stack.job_dir("j1").join("report.html").exists());

    // The destination now holds every source object byte for byte, plus what was there.
    let after = stack.s3_objects().await;
    for key in &all {
        if *key == conflict {
            continue;
        }
        let want = stack
            .services
            .emulator
            .get_object_direct(common::SRC, key)
            .await
            .expect("readable")
            .expect("a source object")
            .0;
        assert_eq!(
            after.get(key).map(Vec::as_slice),
            Some(want.as_ref()),
            "{key}"
        );
    }
    assert_eq!(
        after.get(&conflict).map(Vec::as_slice),
        Some(&b"other bytes!"[..]),
        "kept"
    );
    assert_eq!(stack.services.s3_pending_uploads(&stack.dst).await, 0);

    // A second sync copies nothing.
    let again = stack
        .run(&["sync", &src, &dst, "--job-id", "j2", "--quiet"])
        .await;
    assert_eq!(code(&again), 0);
    assert!(
        stack.list("j2", "completed_list").is_empty(),
        "nothing left to copy"
    );

    // verify fails while the conflict and the extras remain...
    let verify = stack
        .run(&["verify", &src, &dst, "--job-id", "v1", "--quiet"])
        .await;
    assert_eq!(code(&verify), 1);
    let differences = stack.list("v1", "error_list");
    assert_eq!(
        keys(&differences),
        {
            let mut want: Vec<String> = foreign.clone();
            want.push(conflict.clone());
            want.push(deleted.clone());
            want.sort();
            want
        },
        "the conflict and the extras are the differences"
    );
    assert_eq!(stack.summary("v1")["ok"], false);

    // ...until --overwrite always replaces the foreign object and --delete removes the replica
    // whose source is gone (but not the objects another tool wrote).
    let repair = stack
        .run(&[
            "sync",
            &src,
            &dst,
            "--job-id",
            "j3",
            "--overwrite",
            "always",
            "--delete",
            "--quiet",
        ])
        .await;
    assert_eq!(code(&repair), 0);
    let done = stack.list("j3", "completed_list");
    assert_eq!(keys(&done), {
        let mut want = vec![conflict.clone(), deleted.clone()];
        want.sort();
        want
    });
    assert_eq!(
        done.iter()
            .find(|r| r.key == deleted)
            .map(|r| r.status.as_str()),
        Some("deleted")
    );
    let objects = stack.s3_objects().await;
    assert_eq!(
        objects.get(&conflict).map(Vec::as_slice),
        Some(&b"source bytes"[..])
    );
    assert!(!objects.contains_key(&deleted));
    assert!(
        foreign.iter().all(|k| objects.contains_key(k)),
        "foreign objects are kept"
    );

    let verify = stack
        .run(&[
            "verify",
            &src,
            &dst,
            "--job-id",
            "v2",
            "--allow-extra",
            "--quiet",
        ])
        .await;
    assert_eq!(code(&verify), 0, "{}", stdout(&verify));
    assert_eq!(stack.summary("v2")["objects"]["completed"], all.len());
    assert_eq!(stack.summary("v2")["ok"], true);
    assert!(stdout(&verify).contains("report.html"));
}

#[tokio::test(flavor = "multi_thread")]
async fn prefixes_map_keys_and_a_key_too_long_for_the_destination_is_an_error_row() {
    let stack = Stack::start().await;
    stack.seed("data/a b+c", b"one").await;
    stack.seed("data/sub/文件", b"two").await;
    stack
        .seed(
            &format!("data/{}", "k".repeat(1_018)),
            b"too long with backup/",
        )
        .await;
    stack.seed("other/not-in-the-job", b"three").await;
    let src = format!("oss://{}/data/", common::SRC);
    let dst = format!("s3://{}/backup/", stack.dst);
    let sync = stack
        .run(&["sync", &src, &dst, "--job-id", "p", "--quiet"])
        .await;
    assert_eq!(code(&sync), 1, "a failed object fails the job");
    let objects = stack.s3_objects().await;
    assert_eq!(
        objects.keys().cloned().collect::<Vec<_>>(),
        vec!["backup/a b+c".to_owned(), "backup/sub/文件".to_owned()]
    );
    let errors = stack.list("p", "error_list");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].reason.contains("1024"), "{}", errors[0].reason);
    assert_eq!(errors[0].destination_key.len(), "backup/".len() + 1_018);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_error_and_exit_code_2() {
    let stack = Stack::start().await;
    for (args, says) in [
        (vec!["sync", "oss://cli-src/", "gs://x/"], "not oss or s3"),
        (
            vec!["sync", "oss://cli-src/", "oss://other/"],
            "between OSS and S3",
        ),
        (
            vec!["sync", "oss://cli-src/", "s3://d-d/", "--bwlimit", "fast"],
            "unit",
        ),
        (
            vec!["sync", "oss://cli-src/", "s3://d-d/", "--include", "a["],
            "not a glob",
        ),
        (
            vec!["sync", "oss://cli-src/", "s3://d-d/", "--resume", "nope"],
            "no checkpoint",
        ),
        (
            vec!["sync", "oss://cli-src/", "s3://d-d/", "--job-id", "../x"],
            "job ID",
        ),
    ] {
        let output = stack.run(&args).await;
        assert_eq!(code(&output), 2, "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let mut no_keys = stack.command(&["diff", "oss://cli-src/", "s3://d-d/"]);
    no_keys.env_remove("OSS_ACCESS_KEY_ID");
    let output = no_keys.output().expect("runs");
    assert_eq!(code(&output), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("OSS_ACCESS_KEY_SECRET"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_sync_resumes_after_its_checkpoint_and_lists_each_object_once() {
    let stack = Stack::start().await;
    let n = 240;
    for i in 0..n {
        stack.seed(&odd_key("r", i), &data(100 + i, i as u64)).await;
    }
    let src = Stack::src_url();
    let dst = stack.dst_url();
    let mut command = stack.command(&[
        "sync",
        &src,
        &dst,
        "--job-id",
        "r1",
        "--tpslimit",
        "40",
        "--concurrency",
        "4",
    ]);
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let interrupt = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(interrupt.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("exits");
    assert_eq!(
        code(&output),
        130,
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stdout(&output).contains("--resume r1"));
    let partial = stack.list("r1", "total_list").len();
    assert!(
        partial > 0 && partial < n,
        "stopped part way: {partial} of {n}"
    );
    let summary = stack.summary("r1");
    assert_eq!(summary["interrupted"], true);

    let resumed = stack
        .run(&["sync", &src, &dst, "--resume", "r1", "--quiet"])
        .await;
    assert_eq!(code(&resumed), 0);
    let total = stack.list("r1", "total_list");
    let listed: BTreeSet<String> = total.iter().map(|r| r.key.clone()).collect();
    assert_eq!(listed.len(), total.len(), "no object is listed twice");
    assert_eq!(total.len(), n);
    assert!(total.iter().all(|r| r.status == "copied"));
    assert_eq!(stack.summary("r1")["objects"]["completed"], n);
    assert_eq!(stack.s3_objects().await.len(), n);

    let again = stack.run(&["sync", &src, &dst, "--resume", "r1"]).await;
    assert_eq!(code(&again), 2, "a finished job cannot be resumed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bandwidth_limit_holds_within_ten_percent() {
    let stack = Stack::start().await;
    // 100 MiB at 5 MiB/s: about 20 s.
    for i in 0..20 {
        stack.seed(&format!("bw/{i:02}"), &data(5 << 20, i)).await;
    }
    let started = Instant::now();
    let sync = stack
        .run(&[
            "sync",
            &Stack::src_url(),
            &stack.dst_url(),
            "--job-id",
            "bw",
            "--bwlimit",
            "5M",
            "--concurrency",
            "4",
            "--quiet",
        ])
        .await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(code(&sync), 0);
    let rate = (100u64 << 20) as f64 / wall / f64::from(1u32 << 20);
    assert!(
        (4.5..=5.5).contains(&rate),
        "{rate:.2} MiB/s over {wall:.1} s"
    );
    let summary = stack.summary("bw");
    let reported = summary["throughput_bytes_per_second"]
        .as_f64()
        .expect("a rate")
        / f64::from(1u32 << 20);
    assert!(
        (4.5..=5.5).contains(&reported),
        "summary says {reported:.2} MiB/s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emulator_and_s3_both_list_in_utf8_byte_order_across_pages() {
    use futures::TryStreamExt as _;
    use transfer::migrate::{ListingOptions, list_objects};

    let stack = Stack::start().await;
    let mut keys: Vec<String> = (0..40).map(|i| odd_key("o", i)).collect();
    keys.extend(
        [
            "A", "a", "Z", "_", "~", "é", "\u{fffd}", "😀", "文", "a b", "a+b", "a%20b", "a%2Bb",
            "a/b", "a-b",
        ]
        .iter()
        .map(|k| (*k).to_owned()),
    );
    for key in &keys {
        stack.seed(key, key.as_bytes()).await;
        stack.put_s3(key, key.as_bytes()).await;
    }
    let mut want = keys.clone();
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let options = ListingOptions {
        page_size: Some(7),
        ..ListingOptions::default()
    };
    let oss = stack
        .services
        .oss_client(transfer::oss::Credentials::new(common::AK, common::SK));
    let listed: Vec<String> = list_objects(oss, common::SRC, options.clone())
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .expect("the emulator lists in order");
    assert_eq!(listed, want, "the emulator");
    let listed: Vec<String> = list_objects(stack.services.s3_store(), &stack.dst, options)
        .map_ok(|o| o.key)
        .try_collect()
        .await
        .expect("moto lists in order");
    assert_eq!(listed, want, "moto's S3");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_other_direction_syncs_s3_into_oss_and_verifies() {
    let stack = Stack::start().await;
    let mut want = std::collections::BTreeMap::new();
    for i in 0..30 {
        let key = odd_key("s3", i);
        let body = data(1 + i * 97, i as u64);
        stack.put_s3(&key, &body).await;
        want.insert(key, body);
    }
    let big = "s3/big object".to_owned();
    let body = data(12 << 20, 99);
    stack.put_s3(&big, &body).await;
    want.insert(big, body);
    let src = stack.dst_url();
    let dst = format!("oss://{}/from-s3/", common::SRC);
    let sync = stack
        .run(&[
            "sync",
            &src,
            &dst,
            "--job-id",
            "back",
            "--part-size",
            "5M",
            "--quiet",
        ])
        .await;
    assert_eq!(code(&sync), 0);
    assert_eq!(stack.list("back", "completed_list").len(), want.len());
    for (key, body) in &want {
        let (got, info) = stack
            .services
            .emulator
            .get_object_direct(common::SRC, &format!("from-s3/{key}"))
            .await
            .expect("readable")
            .expect("copied into OSS");
        assert_eq!(got.as_ref(), body.as_slice(), "{key}");
        assert_eq!(info.crc64, transfer::crc64::checksum(body), "{key}");
    }
    let verify = stack
        .run(&["verify", &src, &dst, "--job-id", "back-v", "--quiet"])
        .await;
    assert_eq!(code(&verify), 0);
    let again = stack
        .run(&["sync", &src, &dst, "--job-id", "back-2", "--quiet"])
        .await;
    assert_eq!(code(&again), 0);
    assert!(stack.list("back-2", "completed_list").is_empty());
}
