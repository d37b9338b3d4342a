//! `--html FILE`: the run's report as one self-contained page that a person opens in a
//! browser, mails, or keeps beside a release.
//!
//! Everything is in the file: the style sheet inline, the charts inline SVG drawn here
//! ([`crate::chart`]), no script, no font, no image, no link to anything. A
//! `Content-Security-Policy` of `default-src 'none'` makes a browser refuse any load anyway.
//! The markup is XHTML-compatible (every element closed, text escaped), so an XML parser
//! checks it is well-formed.
//!
//! The page has: the verdict, the run's parameters, the summary table (calls, webhooks,
//! errors, latency quantiles per event type), throughput per second, latency p50/p99/p99.9
//! per second, errors per second by kind, the latency histogram of each event type, call
//! outcomes and transfers, each replica (target), and samples of the problems found.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::chart::{self, Series, escape};
use crate::report::{Quantiles, Report};
use crate::series::ErrorKind;

const STYLE: &str = "
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; max-width: 960px; }
h1 { font-size: 24px; margin-bottom: 4px; }
h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; font-size: 13px; }
th { background: #f3f3f3; }
td.name, th.name { text-align: left; }
.verdict { display: inline-block; padding: 4px 10px; border-radius: 4px; color: #fff;
  font-weight: bold; }
.pass { background: #2a7d2a; }
.fail { background: #b22222; }
.chart { display: block; margin: 8px 0; }
.chart .title { font-size: 14px; font-weight: bold; fill: #222; }
.chart .tick, .chart .legend { font-size: 11px; fill: #444; }
.chart .grid { stroke: #e4e4e4; stroke-width: 1; }
.chart .axis { stroke: #888; stroke-width: 1; }
pre { background: #f7f7f7; padding: 8px; overflow-x: auto; font-size: 12px; }
p.note { color: #555; font-size: 13px; }
";

/// The page of `report`.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\
         <meta http-equiv=\"Content-Security-Policy\" \
         content=\"default-src 'none'; style-src 'unsafe-inline'\"/>\
         <title>switchboard-loadgen report</title><style>",
    );
    out.push_str(STYLE);
    out.push_str("</style></head><body>");
    header(&mut out, report);
    parameters(&mut out, report);
    summary(&mut out, report);
    over_time(&mut out, report);
    histograms(&mut out, report);
    outcomes(&mut out, report);
    replicas(&mut out, report);
    problems(&mut out, report);
    out.push_str("</body></html>\n");
    out
}

fn header(out: &mut String, r: &Report) {
    let (class, word) = if r.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = write!(
        out,
        "<h1>switchboard-loadgen report</h1>\
         <p><span class=\"verdict {class}\">{word}</span> {} errors in {} webhooks \
         (rate {:.4}, tolerated {}) over {:.1} s; seed {}</p>",
        r.errors, r.webhooks.sent, r.error_rate, r.max_error_rate, r.elapsed_seconds, r.seed
    );
}

fn parameters(out: &mut String, r: &Report) {
    out.push_str("<h2>Run parameters</h2>");
    if r.parameters.is_empty() {
        out.push_str("<p class=\"note\">Not recorded.</p>");
        return;
    }
    out.push_str("<table><tr><th class=\"name\">setting</th><th class=\"name\">value</th></tr>");
    for (name, value) in &r.parameters {
        let _ = write!(
            out,
            "<tr><td class=\"name\">{}</td><td class=\"name\">{}</td></tr>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</table>");
}

fn quantile_table(out: &mut String, caption: &str, by_kind: &BTreeMap<&'static str, Quantiles>) {
    let _ = write!(
        out,
        "<table><tr><th class=\"name\">{}</th><th>count</th><th>p50</th><th>p90</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>",
        escape(caption)
    );
    for (kind, q) in by_kind {
        let _ = write!(
            out,
            "<tr><td class=\"name\">{kind}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            q.count, q.p50, q.p90, q.p99, q.p999, q.max
        );
    }
    out.push_str("</table>");
}

fn summary(out: &mut String, r: &Report) {
    let c = &r.calls;
    let _ = write!(
        out,
        "<h2>Summary</h2><table>\
         <tr><th class=\"name\">calls started</th><td>{}</td></tr>\
         <tr><th class=\"name\">calls completed</th><td>{}</td></tr>\
         <tr><th class=\"name\">calls skipped</th><td>{}</td></tr>\
         <tr><th class=\"name\">webhooks sent</th><td>{}</td></tr>\
         <tr><th class=\"name\">webhooks/s</th><td>{:.1}</td></tr>\
         <tr><th class=\"name\">fault-injected copies</th><td>{}</td></tr>\
         <tr><th class=\"name\">errors</th><td>{}</td></tr>\
         <tr><th class=\"name\">error rate</th><td>{:.4}</td></tr>\
         <tr><th class=\"name\">wall time (s)</th><td>{:.1}</td></tr></table>",
        c.started,
        c.completed,
        c.skipped,
        r.webhooks.sent,
        r.webhooks.per_second,
        r.webhooks.copies,
        r.errors,
        r.error_rate,
        r.elapsed_seconds
    );
    if r.latency_ms.is_empty() {
        out.push_str("<p class=\"note\">No answer was timed.</p>");
        return;
    }
    quantile_table(out, "latency from intended send (ms)", &r.latency_ms);
    quantile_table(out, "service time from actual send (ms)", &r.service_ms);
}

fn over_time(out: &mut String, r: &Report) {
    out.push_str("<h2>Over time</h2>");
    let x = |i: usize| i as f64;
    let count_series = |name: &str, f: &dyn Fn(usize) -> u64| Series {
        name: name.to_owned(),
        points: (0..r.series.len())
            .map(|i| (x(i), per_second(f(i), i, r.elapsed_seconds)))
            .collect(),
    };
    out.push_str(&chart::lines(
        "Throughput per second",
        "seconds since start",
        "per second",
        &[
            count_series("webhooks", &|i| r.series[i].webhooks),
            count_series("calls started", &|i| r.series[i].calls_started),
            count_series("calls completed", &|i| r.series[i].calls_completed),
        ],
    ));
    let latency = |name: &str, f: fn(&crate::series::SecondLatency) -> f64| Series {
        name: name.to_owned(),
        points: r
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let drawn = per_second(1, i, r.elapsed_seconds).is_some();
                (x(i), s.latency_ms.as_ref().filter(|_| drawn).map(f))
            })
            .collect(),
    };
    out.push_str(&chart::lines(
        "Latency per second (from intended send, all events)",
        "seconds since start",
        "ms",
        &[
            latency("p50", |l| l.p50),
            latency("p99", |l| l.p99),
            latency("p99.9", |l| l.p999),
        ],
    ));
    if r.errors == 0 {
        out.push_str("<p class=\"note\">No errors in this run.</p>");
        return;
    }
    let kinds: Vec<(String, Vec<u64>)> = ErrorKind::ALL
        .iter()
        .map(|kind| {
            let label = kind.label();
            let per_second: Vec<u64> = r
                .series
                .iter()
                .map(|s| s.errors_by_kind.get(label).copied().unwrap_or(0))
                .collect();
            (label.to_owned(), per_second)
        })
        .filter(|(_, v)| v.iter().any(|&n| n > 0))
        .collect();
    out.push_str(&chart::stacked(
        "Errors per second by kind",
        "seconds since start",
        "errors",
        &kinds,
    ));
}

/// Shortest end of a run drawn as a rate: a shorter stub would be a spike or a dip of noise.
const SHORTEST_STUB: f64 = 0.25;

/// `count` of second `i` as a rate: the last second of a run is usually partial, so it is
/// divided by its length, and not drawn when it lasted less than [`SHORTEST_STUB`].
fn per_second(count: u64, i: usize, elapsed: f64) -> Option<f64> {
    let span = (elapsed - i as f64).min(1.0);
    if span >= 1.0 || i == 0 {
        Some(count as f64 / span.clamp(SHORTEST_STUB, 1.0))
    } else if span >= SHORTEST_STUB {
        Some(count as f64 / span)
    } else {
        None
    }
}

fn histograms(out: &mut String, r: &Report) {
    out.push_str("<h2>Latency distribution</h2>");
    if r.latency_histogram_ms.is_empty() {
        out.push_str("<p class=\"note\">No answer was timed.</p>");
    }
    for (kind, bins) in &r.latency_histogram_ms {
        let mut lower = 0.0;
        let items: Vec<(String, u64)> = bins
            .iter()
            .map(|bin| {
                let label = format!("{} to {} ms", ms(lower), ms(bin.le));
                lower = bin.le;
                (label, bin.count)
            })
            .collect();
        out.push_str(&chart::bars(
            &format!("{kind}: answers by latency"),
            "answers",
            &items,
        ));
    }
}

/// A bin bound in ms: `0.05`, `2`, `500`.
fn ms(value: f64) -> String {
    if value >= 1.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

fn outcomes(out: &mut String, r: &Report) {
    out.push_str("<h2>Call outcomes</h2>");
    let items: Vec<(String, u64)> = r
        .calls
        .by_outcome
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect();
    if items.is_empty() {
        out.push_str("<p class=\"note\">No call completed.</p>");
    } else {
        out.push_str(&chart::bars("Completed calls by outcome", "calls", &items));
    }
    if !r.calls.transfers.is_empty() {
        let items: Vec<(String, u64)> = r
            .calls
            .transfers
            .iter()
            .map(|(k, n)| ((*k).to_owned(), *n))
            .collect();
        out.push_str(&chart::bars("makeCall results", "transfers", &items));
    }
}

fn replicas(out: &mut String, r: &Report) {
    out.push_str(
        "<h2>Replicas</h2><table><tr><th class=\"name\">target</th><th>webhooks</th>\
         <th>failed</th><th>p50 (ms)</th><th>p99 (ms)</th><th>p99.9 (ms)</th><th>max (ms)</th>\
         </tr>",
    );
    for replica in &r.replicas {
        let q = |f: fn(&Quantiles) -> f64| {
            replica
                .latency_ms
                .as_ref()
                .map_or_else(|| "-".to_owned(), |q| format!("{:.2}", f(q)))
        };
        let _ = write!(
            out,
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            escape(&replica.target),
            replica.webhooks,
            replica.failed,
            q(|q| q.p50),
            q(|q| q.p99),
            q(|q| q.p999),
            q(|q| q.max)
        );
    }
    out.push_str("</table>");
    if r.replicas.len() > 1 {
        let series: Vec<Series> = r
            .replicas
            .iter()
            .enumerate()
            .map(|(t, replica)| Series {
                name: replica.target.clone(),
                points: r
                    .series
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let n = s.webhooks_by_target.get(t).copied().unwrap_or(0);
                        (i as f64, per_second(n, i, r.elapsed_seconds))
                    })
                    .collect(),
            })
            .collect();
        out.push_str(&chart::lines(
            "Webhooks per second by replica",
            "seconds since start",
            "webhooks",
            &series,
        ));
    }
}

fn problems(out: &mut String, r: &Report) {
    if r.errors == 0 {
        return;
    }
    out.push_str("<h2>Problems</h2><table><tr><th class=\"name\">kind</th><th>count</th></tr>");
    for (kind, n) in r.errors_by_kind.iter().filter(|(_, n)| **n > 0) {
        let _ = write!(out, "<tr><td class=\"name\">{kind}</td><td>{n}</td></tr>");
    }
    for (status, n) in &r.http_errors {
        let _ = write!(
            out,
            "<tr><td class=\"name\">HTTP {}</td><td>{n}</td></tr>",
            escape(status)
        );
    }
    for (kind, t) in &r.transport_errors {
        let _ = write!(
            out,
            "<tr><td class=\"name\">connection ({}): e.g. {}</td><td>{}</td></tr>",
            escape(kind),
            escape(&t.example),
            t.count
        );
    }
    out.push_str("</table>");
    for s in &r.protocol_violations.samples {
        let _ = write!(
            out,
            "<p class=\"note\">Protocol violation: session {} {} from {}</p><pre>{}\n\nanswer: {}</pre>",
            escape(&s.session_id),
            s.event,
            escape(&s.target),
            escape(&s.violations.join("\n")),
            escape(&s.body)
        );
    }
    for s in &r.duplicate_consistency.samples {
        let _ = write!(
            out,
            "<p class=\"note\">Duplicate answered differently: session {} {} ({} copy)</p>\
             <pre>first:  {}\nsecond: {}</pre>",
            escape(&s.session_id),
            s.event,
            s.delivery,
            escape(&s.first),
            escape(&s.second)
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::client::Reply;
    use crate::stats::{Stats, ViolationSample};

    fn parse(html: &str) -> roxmltree::Document<'_> {
        let options = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        };
        roxmltree::Document::parse_with_options(html, options)
            .unwrap_or_else(|e| panic!("not well-formed: {e}\n{html}"))
    }

    #[test]
    fn a_run_with_nothing_answered_still_makes_a_page() {
        let stats = Stats::new(1);
        let t = Instant::now();
        stats.delivery(
            crate::stats::EventKind::CallReceived,
            0,
            t,
            t,
            t,
            &Reply::Timeout,
            false,
        );
        let page = render(&Report::new(&stats, Duration::from_millis(300), 1, 0.0));
        let doc = parse(&page);
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("No answer was timed."), "{text}");
        assert!(text.contains("FAIL"));
        assert!(page.contains("Errors per second by kind"));
    }

    #[test]
    fn what_a_server_answered_is_shown_as_text_never_as_markup() {
        let stats = Stats::new(1);
        stats.violation([-1009], || ViolationSample {
            session_id: "s".into(),
            event: "CALL_RECEIVED",
            event_id: "e".into(),
            target: "http://x/webhooks".into(),
            violations: vec!["-1009 $.callflow: bad & worse".into()],
            body: "<script>alert(1)</script><img src=x onerror=y>\u{7}".into(),
        });
        let page = render(
            &Report::new(&stats, Duration::from_secs(1), 1, 0.0)
                .with_run(BTreeMap::from([("--target".into(), "a<b".into())]), &[]),
        );
        let doc = parse(&page);
        assert!(
            !doc.descendants()
                .any(|n| n.has_tag_name("script") || n.has_tag_name("img"))
        );
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(text.contains("<script>alert(1)</script>"), "{text}");
        assert!(text.contains("bad & worse"));
        assert!(text.contains("a<b"));
    }
}
