//! The cost model (`docs/cost.md`): dollars per million objects and per TB for the two cases
//! Data Transfer Hub publishes (10 KB and 50 MB files), from what the benchmark counted and
//! measured (P1, P3, P6, P7), a deployment's settings, and the cited price table in
//! `bench/prices.json`.
//!
//! Every line is per object: requests counted by the emulator and the S3 proxy, times their
//! price; the function's billed time, from measured rates; and the bytes moved. Nothing here is
//! a constant of the model except the deployment's settings ([`Deployment`]), which are the
//! templates' defaults, and the one figure no loopback run can measure: the round trip from
//! Function Compute to SQS across clouds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// 1 TB, as the price pages count it.
const TB: f64 = 1e12;
/// 1 GB, as traffic is billed.
const GB: f64 = 1e9;

/// Data Transfer Hub's published cost per TB: (object bytes, dollars per TB).
pub(crate) const DTH_PER_TB: [(u64, f64); 2] = [(10_000, 1_113.87), (50_000_000, 94.48)];

/// Unit prices in dollars per request, per second or per GB.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Prices {
    s3_put: f64,
    s3_get: f64,
    sqs_request: f64,
    lambda_request: f64,
    lambda_gb_second: f64,
    fc_invocation: f64,
    fc_vcpu_second: f64,
    fc_gb_second: f64,
    oss_get: f64,
    oss_put: f64,
    oss_egress_gb: f64,
    s3_ingress_gb: f64,
}

impl Prices {
    /// Reads `bench/prices.json` (or another file of the same shape).
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("read the price table {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Self::from_json(&value).with_context(|| format!("the price table {}", path.display()))
    }

    /// The prices of a price table: each entry holds `usd`, or `cny` converted with the
    /// table's `usd_per_cny`, and cites its `source`.
    pub(crate) fn from_json(table: &Value) -> anyhow::Result<Self> {
        let usd_per_cny = table["usd_per_cny"]["value"].as_f64();
        let price = |name: &str, per: f64| -> anyhow::Result<f64> {
            let entry = &table["prices"][name];
            if entry.is_null() {
                bail!("no price {name:?}");
            }
            if !entry["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("https://"))
            {
                bail!("price {name:?} cites no https:// source");
            }
            let dollars = match (entry["usd"].as_f64(), entry["cny"].as_f64(), usd_per_cny) {
                (Some(usd), _, _) => usd,
                (None, Some(cny), Some(rate)) => cny * rate,
                (None, Some(_), None) => bail!("price {name:?} is in CNY and no usd_per_cny"),
                _ => bail!("price {name:?} has neither usd nor cny"),
            };
            if !dollars.is_finite() || dollars < 0.0 {
                bail!("price {name:?} is {dollars}");
            }
            Ok(dollars / per)
        };
        Ok(Self {
            s3_put: price("s3_put_per_1000", 1e3)?,
            s3_get: price("s3_get_per_1000", 1e3)?,
            sqs_request: price("sqs_per_million", 1e6)?,
            lambda_request: price("lambda_requests_per_million", 1e6)?,
            lambda_gb_second: price("lambda_gb_second_arm64", 1.0)?,
            fc_invocation: price("fc_invocations_per_million", 1e6)?,
            fc_vcpu_second: price("fc_vcpu_second", 1.0)?,
            fc_gb_second: price("fc_gb_second", 1.0)?,
            oss_get: price("oss_get_per_10000", 1e4)?,
            oss_put: price("oss_put_per_10000", 1e4)?,
            oss_egress_gb: price("oss_internet_egress_per_gb", 1.0)?,
            s3_ingress_gb: price("s3_data_transfer_in_per_gb", 1.0)?,
        })
    }
}

/// The deployment the model prices: the defaults of `template.yaml` and `deploy/fc/s.yaml`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Deployment {
    /// The replicator's memory (`MemorySize`, 1024 MB), in GB as Lambda bills it.
    lambda_gb: f64,
    /// Messages per invocation (`BatchSize`).
    batch_size: f64,
    /// The forwarder instance's vCPUs and memory (GB).
    fc_vcpu: f64,
    fc_gb: f64,
    /// Invocations one forwarder instance serves at once (`instanceConcurrency`).
    fc_instance_concurrency: f64,
    /// Seconds a SendMessage takes from Function Compute to SQS in another cloud's region: an
    /// assumption, since no loopback run can measure it.
    sqs_round_trip: f64,
}

impl Default for Deployment {
    fn default() -> Self {
        Self {
            // MemorySize 1024 MB, billed as 1 GB.
            lambda_gb: 1.0,
            batch_size: replicator::BatchSettings::RECOMMENDED_BATCH_SIZE as f64,
            fc_vcpu: 0.1,
            fc_gb: 128.0 / 1024.0,
            fc_instance_concurrency: 20.0,
            sqs_round_trip: 0.150,
        }
    }
}

/// Requests per object, by operation, as P7 counted them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Requests {
    pub(crate) oss: BTreeMap<String, f64>,
    pub(crate) s3: BTreeMap<String, f64>,
}

impl Requests {
    fn from_json(value: &Value) -> anyhow::Result<Self> {
        let side = |name: &str| -> anyhow::Result<BTreeMap<String, f64>> {
            value[name]
                .as_object()
                .with_context(|| format!("no {name} request counts"))?
                .iter()
                .map(|(op, n)| {
                    n.as_f64()
                        .map(|n| (op.clone(), n))
                        .with_context(|| format!("{name} {op} is not a number"))
                })
                .collect()
        };
        Ok(Self {
            oss: side("oss")?,
            s3: side("s3")?,
        })
    }
}

/// What the model takes from one benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Measured {
    /// Requests per new small object (P7).
    pub(crate) small: Requests,
    /// Requests for one large object (P7) and its size.
    pub(crate) large: Requests,
    pub(crate) large_bytes: u64,
    /// SQS send calls the forwarder made per event (P6).
    pub(crate) sends_per_event: f64,
    /// The forwarder's CPU-seconds per event (P6).
    pub(crate) forwarder_cpu_seconds: f64,
    /// Small objects per second of one replicator environment with OSS 20 ms away (P3).
    pub(crate) small_objects_per_second: f64,
    /// The replicator's large-object copy rate, bytes per second (P1).
    pub(crate) large_bytes_per_second: f64,
}

/// Where each measured figure came from.
const SOURCES: &str = "P7 request counts, P6 forwarder CPU and send calls, P3 objects/s with OSS 20 ms away, P1 engine MB/s";

impl Measured {
    /// Reads the figures of a results document (`bench/results/latest.json`'s `figures`).
    pub(crate) fn from_figures(figures: &Value) -> anyhow::Result<Self> {
        let number = |path: &str| -> anyhow::Result<f64> {
            figures
                .pointer(path)
                .and_then(Value::as_f64)
                .with_context(|| format!("no figure {path} (the cost model needs {SOURCES})"))
        };
        let large_bytes = number("/P7/cost_large/object_bytes")?;
        Ok(Self {
            small: Requests::from_json(&figures["P7"]["small_per_object"])
                .context("P7 small_per_object")?,
            large: Requests::from_json(&figures["P7"]["cost_large"]).context("P7 cost_large")?,
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "an object size in bytes"
            )]
            large_bytes: large_bytes as u64,
            sends_per_event: number("/P6/forwarder/send_calls_per_event")?,
            forwarder_cpu_seconds: number("/P6/forwarder/cpu_ms_per_event")? / 1000.0,
            small_objects_per_second: number("/P3/with_oss_latency/engine_objects_per_s")?,
            large_bytes_per_second: number("/P1/engine_mb_per_s")? * 1e6,
        })
    }
}

/// One case's cost per object, by line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    /// Bytes per object.
    pub(crate) object_bytes: u64,
    /// Dollars per object, by line: S3 requests, SQS, Lambda, Function Compute, OSS requests,
    /// data transfer.
    pub(crate) lines: Vec<(&'static str, f64)>,
}

/// The lines of a case, in table order.
const LINES: [&str; 6] = [
    "S3 requests",
    "SQS",
    "Lambda",
    "Function Compute",
    "OSS requests",
    "Data transfer",
];

impl Case {
    fn total(&self) -> f64 {
        self.lines.iter().map(|(_, d)| d).sum()
    }

    /// Everything but data transfer.
    pub(crate) fn requests_and_compute(&self) -> f64 {
        self.lines
            .iter()
            .filter(|(name, _)| *name != "Data transfer")
            .map(|(_, d)| d)
            .sum()
    }

    fn objects_per_tb(&self) -> f64 {
        TB / self.object_bytes as f64
    }
}

/// The S3 requests billed at the PUT price (the rest are GET-priced; deletes are free).
fn s3_is_put_class(op: &str) -> bool {
    matches!(
        op,
        "PutObject"
            | "CopyObject"
            | "CreateMultipartUpload"
            | "UploadPart"
            | "UploadPartCopy"
            | "CompleteMultipartUpload"
            | "ListObjectsV2"
            | "ListObjects"
            | "ListMultipartUploads"
            | "ListParts"
    )
}

fn s3_is_free(op: &str) -> bool {
    matches!(
        op,
        "DeleteObject" | "DeleteObjects" | "AbortMultipartUpload"
    )
}

/// OSS bills reads (GET, HEAD) at the GET price and the rest at the PUT price.
fn oss_is_get_class(op: &str) -> bool {
    op.starts_with("Get") || op.starts_with("Head")
}

/// Requests by operation, each at the price `price_of` gives its operation.
fn price_requests(requests: &BTreeMap<String, f64>, price_of: impl Fn(&str) -> f64) -> f64 {
    requests.iter().map(|(op, n)| n * price_of(op)).sum()
}

/// The cost of one object of `object_bytes` that took `requests` and `lambda_seconds`.
fn price_object(
    prices: &Prices,
    deployment: &Deployment,
    measured: &Measured,
    (object_bytes, requests, lambda_seconds): (u64, &Requests, f64),
) -> Case {
    let s3 = price_requests(&requests.s3, |op| {
        if s3_is_free(op) {
            0.0
        } else if s3_is_put_class(op) {
            prices.s3_put
        } else {
            prices.s3_get
        }
    });
    let oss = price_requests(&requests.oss, |op| {
        if oss_is_get_class(op) {
            prices.oss_get
        } else {
            prices.oss_put
        }
    });
    // The forwarder's send(s), then the event source mapping's ReceiveMessage and
    // DeleteMessageBatch, each for at most 10 messages (SQS's limit per call), however large
    // the batch. A task is far below SQS's 64 KB billing unit.
    let per_call = deployment.batch_size.min(10.0);
    let sqs = (measured.sends_per_event + 2.0 / per_call) * prices.sqs_request;
    let lambda = prices.lambda_request / deployment.batch_size
        + deployment.lambda_gb * lambda_seconds * prices.lambda_gb_second;
    // FC bills an instance's active time once for all the invocations it serves at once; a busy
    // instance serves `instanceConcurrency` events, each waiting for its SQS round trip and for
    // its CPU time at the instance's share of a core.
    let fc_seconds = (measured.forwarder_cpu_seconds / deployment.fc_vcpu
        + deployment.sqs_round_trip)
        / deployment.fc_instance_concurrency;
    let fc = prices.fc_invocation
        + fc_seconds
            * (deployment.fc_vcpu * prices.fc_vcpu_second + deployment.fc_gb * prices.fc_gb_second);
    let bytes = object_bytes as f64 / GB;
    let transfer = bytes * (prices.oss_egress_gb + prices.s3_ingress_gb);
    Case {
        object_bytes,
        lines: LINES
            .into_iter()
            .zip([s3, sqs, lambda, fc, oss, transfer])
            .collect(),
    }
}

/// The model's two cases: DTH's 10 KB and 50 MB files.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    pub(crate) small: Case,
    pub(crate) large: Case,
    /// The floor for small files: S3's PUT price alone, per object.
    pub(crate) floor: f64,
}

/// The target: small files' requests and compute within this factor of the floor.
pub(crate) const FLOOR_TARGET: f64 = 1.2;

impl Model {
    /// Prices both cases. A small object costs what P7 counted for one and P3's time per
    /// object; a large one what P7 counted for its large object and the time P1's rate takes.
    pub(crate) fn compute(prices: &Prices, deployment: &Deployment, measured: &Measured) -> Self {
        let (small_bytes, _) = DTH_PER_TB[0];
        let small = price_object(
            prices,
            deployment,
            measured,
            (
                small_bytes,
                &measured.small,
                1.0 / measured.small_objects_per_second.max(1e-9),
            ),
        );
        let large = price_object(
            prices,
            deployment,
            measured,
            (
                measured.large_bytes,
                &measured.large,
                measured.large_bytes as f64 / measured.large_bytes_per_second.max(1.0),
            ),
        );
        Self {
            small,
            large,
            floor: prices.s3_put,
        }
    }

    /// Small files' requests and compute over the floor.
    pub(crate) fn floor_ratio(&self) -> f64 {
        self.small.requests_and_compute() / self.floor
    }

    /// The Markdown table: each line per million objects and per TB, beside DTH's figures.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let head = |case: &Case| {
            format!(
                "{} files: $ per million objects | $ per TB",
                human_bytes(case.object_bytes)
            )
        };
        let _ = writeln!(
            out,
            "| | {} | {} |\n|---|---:|---:|---:|---:|",
            head(&self.small),
            head(&self.large)
        );
        let cell = |case: &Case, dollars: f64| {
            format!(
                "{} | {}",
                money(dollars * 1e6),
                money(dollars * case.objects_per_tb())
            )
        };
        let bold = |case: &Case, dollars: f64| {
            format!(
                "**{}** | **{}**",
                money(dollars * 1e6),
                money(dollars * case.objects_per_tb())
            )
        };
        for (i, name) in LINES.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {name} | {} | {} |",
                cell(&self.small, self.small.lines[i].1),
                cell(&self.large, self.large.lines[i].1)
            );
        }
        let _ = writeln!(
            out,
            "| **all but data transfer** | {} | {} |",
            bold(&self.small, self.small.requests_and_compute()),
            bold(&self.large, self.large.requests_and_compute())
        );
        let _ = writeln!(
            out,
            "| **total** | {} | {} |",
            bold(&self.small, self.small.total()),
            bold(&self.large, self.large.total())
        );
        let dth = |case: &Case| {
            DTH_PER_TB
                .iter()
                .find(|(bytes, _)| *bytes == case.object_bytes)
                .map_or_else(
                    || "| ".to_owned(),
                    |(_, per_tb)| {
                        format!(
                            "{} | {}",
                            money(per_tb / case.objects_per_tb() * 1e6),
                            money(*per_tb)
                        )
                    },
                )
        };
        let _ = writeln!(
            out,
            "| Data Transfer Hub (published) | {} | {} |",
            dth(&self.small),
            dth(&self.large)
        );
        let _ = writeln!(
            out,
            "| floor: S3 PUT price alone | {} | | |",
            cell(&self.small, self.floor)
        );
        out
    }

    /// Every figure, for the results JSON.
    pub(crate) fn json(&self, deployment: &Deployment) -> Value {
        let case = |c: &Case| {
            let lines: serde_json::Map<String, Value> = c
                .lines
                .iter()
                .map(|(name, d)| {
                    (
                        (*name).to_owned(),
                        json!({"per_million_objects": d * 1e6, "per_tb": d * c.objects_per_tb()}),
                    )
                })
                .collect();
            json!({
                "object_bytes": c.object_bytes,
                "objects_per_tb": c.objects_per_tb(),
                "lines": lines,
                "all_but_transfer_per_tb": c.requests_and_compute() * c.objects_per_tb(),
                "total_per_tb": c.total() * c.objects_per_tb(),
            })
        };
        json!({
            "small": case(&self.small),
            "large": case(&self.large),
            "floor_per_tb": self.floor * self.small.objects_per_tb(),
            "floor_ratio": self.floor_ratio(),
            "target_ratio": FLOOR_TARGET,
            "dth_per_tb": DTH_PER_TB.iter().map(|(b, d)| json!({"object_bytes": b, "per_tb": d})).collect::<Vec<_>>(),
            "deployment": {
                "lambda_memory_gb": deployment.lambda_gb,
                "lambda_architecture": "arm64",
                "batch_size": deployment.batch_size,
                "fc_vcpu": deployment.fc_vcpu,
                "fc_memory_gb": deployment.fc_gb,
                "fc_instance_concurrency": deployment.fc_instance_concurrency,
                "assumed_sqs_round_trip_s": deployment.sqs_round_trip,
            },
            "inputs": SOURCES,
        })
    }
}

fn money(dollars: f64) -> String {
    if dollars >= 100.0 {
        format!("${dollars:.0}")
    } else if dollars >= 1.0 {
        format!("${dollars:.2}")
    } else {
        format!("${dollars:.3}")
    }
}

fn human_bytes(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{} MB", bytes / 1_000_000)
    } else {
        format!("{} KB", bytes / 1000)
    }
}

/// `oss2s3-bench cost`: the model from a results file, as Markdown.
pub(crate) fn run(args: &CostArgs) -> anyhow::Result<()> {
    let prices = Prices::load(&args.prices)?;
    let results: Value = serde_json::from_str(
        &std::fs::read_to_string(&args.results)
            .with_context(|| format!("read {}", args.results.display()))?,
    )?;
    let measured = Measured::from_figures(&results["figures"])
        .with_context(|| format!("the figures of {}", args.results.display()))?;
    let model = Model::compute(&prices, &Deployment::default(), &measured);
    println!(
        "{}\nSmall files, all but data transfer: {:.2}× the floor (target ≤ {FLOOR_TARGET}×).",
        model.markdown(),
        model.floor_ratio()
    );
    Ok(())
}

/// Options of `cost`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CostArgs {
    /// A results file of a run that measured P1, P3, P6 and P7.
    #[arg(long, default_value = "bench/results/latest.json")]
    results: std::path::PathBuf,
    /// The price table.
    #[arg(long, default_value = "bench/prices.json")]
    prices: std::path::PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices_file() -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("prices.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("bench/prices.json"))
            .expect("JSON")
    }

    fn measured() -> Measured {
        let ops = |pairs: &[(&str, f64)]| {
            pairs
                .iter()
                .map(|(op, n)| ((*op).to_owned(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        Measured {
            small: Requests {
                oss: ops(&[("GetObject", 1.0)]),
                s3: ops(&[("PutObject", 1.0)]),
            },
            large: Requests {
                oss: ops(&[("GetObject", 3.0), ("HeadObject", 1.0)]),
                s3: ops(&[
                    ("CreateMultipartUpload", 1.0),
                    ("UploadPart", 3.0),
                    ("CompleteMultipartUpload", 1.0),
                    ("HeadObject", 1.0),
                    ("AbortMultipartUpload", 1.0),
                ]),
            },
            large_bytes: 50_000_000,
            sends_per_event: 1.0,
            forwarder_cpu_seconds: 0.000_2,
            small_objects_per_second: 350.0,
            large_bytes_per_second: 100e6,
        }
    }

    #[test]
    fn the_shipped_price_table_parses_and_cites_every_price() {
        let prices = Prices::from_json(&prices_file()).expect("every price has a number");
        // S3's PUT price is the floor: it must be the one the table states.
        assert!(
            prices.s3_put > 0.0 && prices.s3_get < prices.s3_put,
            "{prices:?}"
        );
    }

    #[test]
    fn a_price_without_a_source_or_a_number_is_refused() {
        let mut table = prices_file();
        table["prices"]["sqs_per_million"]["source"] = json!("somewhere");
        let err = Prices::from_json(&table).expect_err("no https source");
        assert!(err.to_string().contains("sqs_per_million"), "{err}");
        let mut table = prices_file();
        table["prices"]["fc_gb_second"] = json!({"source": "https://example.com"});
        assert!(Prices::from_json(&table).is_err());
    }

    #[test]
    fn with_only_the_put_price_the_small_case_costs_exactly_the_floor() {
        let mut table = prices_file();
        for (_, entry) in table["prices"].as_object_mut().expect("prices").iter_mut() {
            if entry.get("usd").is_some() {
                entry["usd"] = json!(0.0);
            }
            if entry.get("cny").is_some() {
                entry["cny"] = json!(0.0);
            }
        }
        table["prices"]["s3_put_per_1000"]["usd"] = json!(0.005);
        let prices = Prices::from_json(&table).expect("prices");
        let model = Model::compute(&prices, &Deployment::default(), &measured());
        assert!((model.floor_ratio() - 1.0).abs() < 1e-12, "{model:?}");
        assert!((model.floor - 0.005 / 1000.0).abs() < 1e-15);
        // The large object pays create + 3 parts + complete at the PUT price; the HEAD and the
        // abort cost nothing here.
        let large = model.large.requests_and_compute();
        assert!((large - 5.0 * 0.005 / 1000.0).abs() < 1e-15, "{large}");
    }

    /// A price table of round numbers, so that every line can be worked out by hand.
    fn round_prices() -> Value {
        let usd = |usd: f64| json!({"usd": usd, "source": "https://example.com/price"});
        let cny = |cny: f64| json!({"cny": cny, "source": "https://example.com/price"});
        json!({
            "usd_per_cny": {"value": 0.1},
            "prices": {
                "s3_put_per_1000": usd(1.0),
                "s3_get_per_1000": usd(0.1),
                "sqs_per_million": usd(1.0),
                "lambda_requests_per_million": usd(1.0),
                "lambda_gb_second_arm64": usd(1.0),
                "fc_invocations_per_million": cny(10.0),
                "fc_vcpu_second": cny(1.0),
                "fc_gb_second": cny(1.0),
                "oss_get_per_10000": cny(1.0),
                "oss_put_per_10000": cny(2.0),
                "oss_internet_egress_per_gb": cny(10.0),
                "s3_data_transfer_in_per_gb": usd(0.0),
            }
        })
    }

    #[test]
    fn every_line_of_a_small_object_matches_the_hand_computed_cost() {
        let prices = Prices::from_json(&round_prices()).expect("prices");
        let measured = Measured {
            forwarder_cpu_seconds: 0.001,
            small_objects_per_second: 100.0,
            ..measured()
        };
        let model = Model::compute(&prices, &Deployment::default(), &measured);
        // Worked out by hand, per object:
        // S3: one PUT at $1 per 1,000. SQS: 1 send + 2/10 for receive and delete (10 messages a
        // call), at $1 per million. Lambda: 1/100 of a $1-per-million request (a batch of 100)
        // + 1 GB × 1/100 s × $1.
        // FC: CNY 10 per million × 0.1, plus (0.001 s / 0.1 vCPU + 0.15 s) / 20 of an instance
        // at 0.1 vCPU × CNY 0.1 + 0.125 GB × CNY 0.1 (USD 0.0225 a second).
        // OSS: one GET at CNY 1 per 10,000 × 0.1. Transfer: 10,000 bytes at CNY 10 × 0.1 per GB.
        let expected = [
            ("S3 requests", 1e-3),
            ("SQS", 1.2e-6),
            ("Lambda", 1e-8 + 0.01),
            ("Function Compute", 1e-6 + 0.008 * 0.0225),
            ("OSS requests", 1e-5),
            ("Data transfer", 1e-5),
        ];
        for ((name, got), (want_name, want)) in model.small.lines.iter().zip(expected) {
            assert_eq!(*name, want_name);
            assert!((got - want).abs() < 1e-12, "{name}: {got} vs {want}");
        }
        assert!((model.floor_ratio() - 0.011_192_21 / 1e-3).abs() < 1e-6);
    }

    #[test]
    fn each_line_moves_with_its_own_measurement() {
        let prices = Prices::from_json(&prices_file()).expect("prices");
        let deployment = Deployment::default();
        let base = Model::compute(&prices, &deployment, &measured());
        let line = |m: &Model, name: &str| {
            m.small
                .lines
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| *d)
                .expect("line")
        };
        // Half the replicator's rate doubles its GB-seconds, and nothing else.
        let slower = Model::compute(
            &prices,
            &deployment,
            &Measured {
                small_objects_per_second: 175.0,
                ..measured()
            },
        );
        let gb_s = |m: &Model| line(m, "Lambda") - prices.lambda_request / deployment.batch_size;
        assert!((gb_s(&slower) / gb_s(&base) - 2.0).abs() < 1e-9);
        assert!((line(&slower, "S3 requests") - line(&base, "S3 requests")).abs() < 1e-18);
        // A second send per event adds one SQS request per object.
        let two_sends = Model::compute(
            &prices,
            &deployment,
            &Measured {
                sends_per_event: 2.0,
                ..measured()
            },
        );
        let added = line(&two_sends, "SQS") - line(&base, "SQS");
        assert!((added - prices.sqs_request).abs() < 1e-15);
        // Data transfer is the bytes times the egress price: 10 KB at the table's price.
        let transfer = line(&base, "Data transfer");
        assert!((transfer - 1e4 / GB * prices.oss_egress_gb).abs() < 1e-15);
        let table = base.markdown();
        assert!(table.contains("Data Transfer Hub (published)"), "{table}");
        assert!(
            table.contains("$1114"),
            "DTH's 10 KB figure per TB: {table}"
        );
    }
}
