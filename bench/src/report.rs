//! The results: a Markdown table for people, JSON with every figure and its parameters.

use serde_json::{Map, Value};
use std::fmt::Write as _;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Meets the target.
    Met,
    /// Misses the target.
    Missed,
    /// A figure without a target of its own.
    Info,
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub(crate) fn of(ok: bool) -> Self {
        if ok { Self::Met } else { Self::Missed }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::Missed => "**missed**",
            Self::Info => "",
        }
    }
}

/// One table row.
#[derive(Debug, Clone)]
struct Row {
    id: String,
    figure: String,
    value: String,
    target: String,
    verdict: Verdict,
}

/// Everything measured in one run.
#[derive(Debug, Default)]
pub(crate) struct Report {
    rows: Vec<Row>,
    figures: Map<String, Value>,
    notes: Vec<String>,
}

impl Report {
    /// Adds a table row.
    pub(crate) fn row(
        &mut self,
        id: &str,
        figure: &str,
        value: impl Into<String>,
        target: &str,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            id: id.to_owned(),
            figure: figure.to_owned(),
            value: value.into(),
            target: target.to_owned(),
            verdict,
        });
    }

    /// Records a measurement's figures and parameters in the JSON.
    pub(crate) fn figures(&mut self, id: &str, value: Value) {
        self.figures.insert(id.to_owned(), value);
    }

    /// The figures recorded so far, by measurement.
    pub(crate) fn recorded(&self) -> &Map<String, Value> {
        &self.figures
    }

    /// A note printed under the table (and stored in the JSON).
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        eprintln!("bench: {note}");
        self.notes.push(note);
    }

    /// The Markdown table and notes.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::from("| # | Figure | Value | Target | |\n|---|---|---|---|---|\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.id,
                r.figure,
                r.value,
                r.target,
                r.verdict.as_str()
            );
        }
        for note in &self.notes {
            let _ = write!(out, "\n- {note}");
        }
        out.push('\n');
        out
    }

    /// The JSON document: `meta`, then every row and figure.
    pub(crate) fn json(&self, meta: &Value) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "figure": r.figure, "value": r.value,
                    "target": r.target, "verdict": format!("{:?}", r.verdict),
                })
            })
            .collect();
        serde_json::json!({
            "meta": meta,
            "table": rows,
            "figures": self.figures,
            "notes": self.notes,
        })
    }
}

/// The median of `values` (0 when empty).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// The `q` quantile (0..=1) of `values` by nearest rank (0 when empty).
pub(crate) fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    // The nearest-rank quantile: q in 0..=1, so the rank is within the values' count.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "q * len is in 0..=len"
    )]
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(
        clippy::float_cmp,
        reason = "nearest-rank quantiles return one of the values"
    )]
    fn median_and_quantiles_use_nearest_rank() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&v, 0.5), 50.0);
    }
}
