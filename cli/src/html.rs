//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external asset).

use std::fmt::Write as _;

use crate::report::Summary;
use crate::stats::{Point, SIZE_BUCKETS, Stats, bucket_label, human_bytes, whole};

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const PAD: f64 = 40.0;

/// A line chart of `value(point)` over time.
fn line_chart(
    id: &str,
    title: &str,
    points: &[Point],
    value: impl Fn(&Point) -> f64,
    label: impl Fn(f64) -> String,
) -> String {
    let mut svg = format!(
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    let t_max = points.last().map_or(1.0, |p| p.t).max(1.0);
    let v_max = points.iter().map(&value).fold(0.0, f64::max).max(1.0);
    let x = |t: f64| PAD + (W - 2.0 * PAD) * t / t_max;
    let y = |v: f64| H - PAD - (H - 2.0 * PAD) * v / v_max;
    let _ = write!(
        svg,
        r##"<line x1="{PAD}" y1="{0}" x2="{1}" y2="{0}" stroke="#888"/><line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{0}" stroke="#888"/>"##,
        H - PAD,
        W - PAD
    );
    let mut path = format!("M{:.1},{:.1}", x(0.0), y(0.0));
    for p in points {
        let _ = write!(path, " L{:.1},{:.1}", x(p.t), y(value(p)));
    }
    let _ = write!(
        svg,
        r##"<path d="{path}" fill="none" stroke="#1f6feb" stroke-width="2"/><text x="{PAD}" y="{}" font-size="11">{}</text><text x="{}" y="{}" font-size="11" text-anchor="end">{:.0} s</text></svg></figure>"##,
        PAD - 8.0,
        esc(&label(v_max)),
        W - PAD,
        H - PAD + 16.0,
        t_max
    );
    svg
}

/// A horizontal bar chart of `(label, count)`.
fn bar_chart(id: &str, title: &str, bars: &[(String, u64)]) -> String {
    let row = 22.0;
    let height = (PAD + row * bars.len() as f64).max(120.0);
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let mut svg = format!(
        r#"<figure><figcaption>{}</figcaption><svg id="{id}" class="chart" width="{W}" height="{height}" viewBox="0 0 {W} {height}" role="img" aria-label="{}">"#,
        esc(title),
        esc(title)
    );
    for (i, (label, n)) in bars.iter().enumerate() {
        let top = 10.0 + row * i as f64;
        let width = (W - 260.0) * (*n as f64) / max;
        let _ = write!(
            svg,
            r##"<text x="150" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect x="160" y="{top:.1}" width="{width:.1}" height="16" fill="#2da44e"/><text x="{:.1}" y="{:.1}" font-size="12">{n}</text>"##,
            top + 12.0,
            esc(label),
            165.0 + width,
            top + 12.0
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The whole page.
pub fn page(summary: &Summary, stats: &Stats) -> String {
    let s = summary;
    let verdict = if s.interrupted {
        "interrupted"
    } else if s.ok {
        "passed"
    } else {
        "differences or failures"
    };
    let mut html = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>oss2s3 {command} {job}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #1f2328; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #d0d7de; padding: 4px 10px; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 1.5em 0; }} figcaption {{ font-weight: 600; margin-bottom: .5em; }}
.chart {{ background: #f6f8fa; border: 1px solid #d0d7de; }}
.ok {{ color: #1a7f37; }} .bad {{ color: #cf222e; }}
code {{ word-break: break-all; }}
</style></head><body>
<h1>oss2s3 {command}: <span class="{class}">{verdict}</span></h1>
<table id="summary">
<tr><th>job</th><td>{job}</td></tr>
<tr><th>source</th><td><code>{src}</code></td></tr>
<tr><th>destination</th><td><code>{dst}</code></td></tr>
<tr><th>started</th><td>{start}</td></tr>
<tr><th>finished</th><td>{end}</td></tr>
<tr><th>duration</th><td>{dur:.1} s</td></tr>
<tr><th>throughput</th><td>{rate}/s</td></tr>
</table>
<table id="counts"><tr><th></th><th>total</th><th>completed</th><th>skipped</th><th>failed</th></tr>
<tr><th>objects</th><td class="n">{ot}</td><td class="n">{oc}</td><td class="n">{os}</td><td class="n">{of}</td></tr>
<tr><th>bytes</th><td class="n">{bt}</td><td class="n">{bc}</td><td class="n">{bs}</td><td class="n">{bf}</td></tr>
</table>
"#,
        command = esc(&s.command),
        job = esc(&s.job_id),
        class = if s.ok && !s.interrupted { "ok" } else { "bad" },
        src = esc(&s.source),
        dst = esc(&s.destination),
        start = s.started_at.to_rfc3339(),
        end = s.finished_at.to_rfc3339(),
        dur = s.duration_seconds,
        rate = human_bytes(whole(s.throughput_bytes_per_second)),
        ot = s.objects.total,
        oc = s.objects.completed,
        os = s.objects.skipped,
        of = s.objects.failed,
        bt = human_bytes(s.bytes.total),
        bc = human_bytes(s.bytes.completed),
        bs = human_bytes(s.bytes.skipped),
        bf = human_bytes(s.bytes.failed),
    );
    html.push_str(&line_chart(
        "bytes-chart",
        "Bytes copied over time",
        &stats.points,
        |p| p.bytes as f64,
        |v| human_bytes(whole(v)),
    ));
    html.push_str(&line_chart(
        "objects-chart",
        "Objects done over time",
        &stats.points,
        |p| p.objects as f64,
        |v| format!("{v:.0} objects"),
    ));
    let sizes: Vec<(String, u64)> = (0..SIZE_BUCKETS)
        .map(|i| (bucket_label(i), stats.sizes.get(i).copied().unwrap_or(0)))
        .collect();
    html.push_str(&bar_chart("size-histogram", "Object sizes", &sizes));
    let statuses: Vec<(String, u64)> = stats.reasons.iter().map(|(k, v)| (k.clone(), *v)).collect();
    html.push_str(&bar_chart("status-chart", "Statuses", &statuses));
    html.push_str("<h2>First errors</h2>\n");
    if stats.first_errors.is_empty() {
        html.push_str("<p id=\"errors\">None.</p>\n");
    } else {
        html.push_str("<table id=\"errors\"><tr><th>key</th><th>reason</th></tr>\n");
        for (key, reason) in &stats.first_errors {
            let _ = writeln!(
                html,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                esc(key),
                esc(reason)
            );
        }
        html.push_str("</table>\n");
    }
    html.push_str("<p>Every object is listed in <code>total_list.csv.gz</code>, and by outcome in <code>completed_list.csv.gz</code>, <code>skipped_list.csv.gz</code> and <code>error_list.csv.gz</code>.</p>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_a_key_can_hold() {
        assert_eq!(
            esc("<a href=\"x\">&'\n"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{FFFD}"
        );
    }
}
