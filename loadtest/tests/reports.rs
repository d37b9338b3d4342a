//! The run's report as people and scripts read it, from the built binary against real
//! `switchboard serve` processes (two replicas on a private redis-server where replicas
//! matter): the per-second series add up to the totals, the live progress of a log is one
//! line per interval, the HTML page is well-formed, self-contained and renders in headless
//! Chromium, and `--compare` puts two reports side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use switchboard_tests::{RedisServer, Server, browser};

/// Runs `switchboard-loadgen ARGS` to completion.
fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard-loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the load generator runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no JSON report at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no count at {pointer} in {v}"))
}

/// Two replicas of the restaurant IVR on one Redis, loaded for 2 s with duplicates, stale
/// copies and a step limit low enough that some calls hit it (errors of a known kind). Returns
/// the servers (kept alive), the JSON report and the HTML page's path.
struct ReplicatedRun {
    _redis: RedisServer,
    _servers: [Server; 2],
    dir: tempfile::TempDir,
    output: Output,
    report: Value,
}

impl ReplicatedRun {
    fn start() -> Self {
        let redis = RedisServer::start();
        let url = redis.url();
        let prefix = format!("loadgen-{}", switchboard_tests::uuid());
        let server = || Server::start(&["--redis", &url, "--redis-prefix", &prefix]);
        let servers = [server(), server()];
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("report.json");
        let page = dir.path().join("report.html");
        let output = loadgen(&[
            "--target",
            &servers[0].base(),
            "--target",
            &servers[1].base(),
            "--duration",
            "2s",
            "--concurrency",
            "4",
            "--seed",
            "16",
            "--invalid",
            "0.3",
            "--max-steps",
            "2",
            "--duplicate",
            "0.1",
            "--reorder",
            "0.1",
            "--quiet",
            "--json",
            json.to_str().unwrap(),
            "--html",
            page.to_str().unwrap(),
        ]);
        let report = read_json(&json);
        Self {
            _redis: redis,
            _servers: servers,
            dir,
            output,
            report,
        }
    }

    fn html(&self) -> PathBuf {
        self.dir.path().join("report.html")
    }
}

fn column(series: &[Value], field: &str) -> u64 {
    series
        .iter()
        .map(|s| {
            s[field]
                .as_u64()
                .unwrap_or_else(|| panic!("{field} in {s}"))
        })
        .sum()
}

#[test]
fn the_per_second_series_add_up_to_the_totals() {
    let run = ReplicatedRun::start();
    let r = &run.report;
    let (stdout, stderr) = (text(&run.output.stdout), text(&run.output.stderr));
    assert_eq!(run.output.status.code(), Some(1), "{stdout}\n{stderr}");
    let series = r["series"].as_array().unwrap();
    let elapsed = r["elapsed_seconds"].as_f64().unwrap();
    assert_eq!(
        series.len(),
        elapsed.ceil() as usize,
        "{elapsed} s: {series:?}"
    );
    for (i, s) in series.iter().enumerate() {
        assert_eq!(s["second"], i, "{s}");
    }
    assert_eq!(column(series, "webhooks"), num(r, "/webhooks/sent"));
    assert_eq!(column(series, "calls_started"), num(r, "/calls/started"));
    assert_eq!(
        column(series, "calls_completed"),
        num(r, "/calls/completed")
    );
    assert_eq!(column(series, "errors"), num(r, "/errors"));
    // The errors are real, and of the kind the step limit makes.
    assert!(
        num(r, "/errors_by_kind/step_limit") > 0,
        "{}",
        r["errors_by_kind"]
    );
    assert!(
        num(r, "/webhooks/copies") > 0,
        "no fault-injected copies: {stdout}"
    );
    let kinds = r["errors_by_kind"].as_object().unwrap();
    assert_eq!(
        kinds.values().filter_map(Value::as_u64).sum::<u64>(),
        num(r, "/errors")
    );
    for (kind, total) in kinds {
        let per_second: u64 = series
            .iter()
            .map(|s| s["errors_by_kind"][kind].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(per_second, total.as_u64().unwrap(), "errors of kind {kind}");
    }
    // Answers timed per second, against the per-event counts.
    let timed: u64 = series
        .iter()
        .map(|s| s["latency_ms"]["count"].as_u64().unwrap_or(0))
        .sum();
    let by_event: u64 = r["latency_ms"]
        .as_object()
        .unwrap()
        .values()
        .map(|q| q["count"].as_u64().unwrap())
        .sum();
    assert_eq!(timed, by_event);
    for (kind, bins) in r["latency_histogram_ms"].as_object().unwrap() {
        let binned: u64 = bins
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        assert_eq!(
            binned,
            num(r, &format!("/latency_ms/{kind}/count")),
            "{kind}"
        );
    }
    // Per replica: both got traffic, and the per-second split adds up to each one's total.
    let replicas = r["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2);
    let mut all = 0;
    for (t, replica) in replicas.iter().enumerate() {
        let sent = replica["webhooks"].as_u64().unwrap();
        assert!(sent > 0, "{replica}");
        let per_second: u64 = series
            .iter()
            .map(|s| s["webhooks_by_target"][t].as_u64().unwrap())
            .sum();
        assert_eq!(per_second, sent, "{replica}");
        all += sent;
    }
    assert_eq!(all, num(r, "/webhooks/sent"));
    assert!(
        replicas[0]["target"]
            .as_str()
            .unwrap()
            .ends_with("/webhooks")
    );
    // The summary keeps its lines, and names the replicas.
    assert!(
        stdout.contains("latency from intended send time (ms):"),
        "{stdout}"
    );
    assert!(stdout.contains("replicas:"), "{stdout}");
    assert!(stdout.contains("FAIL:"), "{stdout}");
}

/// Whether `html` loads nothing from anywhere: no element that fetches, no attribute with a
/// URL, no CSS `url(` or `@import`. Returns what it found otherwise.
fn external_references(doc: &roxmltree::Document<'_>, raw: &str) -> Vec<String> {
    let mut found = Vec::new();
    let fetching = [
        "link", "script", "img", "iframe", "object", "embed", "audio", "video", "source", "image",
        "use", "base", "form",
    ];
    let mut text_urls = 0;
    for node in doc.descendants() {
        if node.is_text() {
            text_urls += node.text().unwrap_or("").matches("://").count();
        }
        if !node.is_element() {
            continue;
        }
        let name = node.tag_name().name();
        if fetching.contains(&name) {
            found.push(format!("a <{name}> element"));
        }
        for attr in node.attributes() {
            let value = attr.value().to_lowercase();
            if ["src", "href", "srcset", "action", "data", "poster"].contains(&attr.name()) {
                found.push(format!("{}={:?} on <{name}>", attr.name(), attr.value()));
            }
            if value.contains("url(") || value.contains("://") {
                found.push(format!("{}={:?} on <{name}>", attr.name(), attr.value()));
            }
        }
        if name == "style" {
            let css = node.text().unwrap_or("").to_lowercase();
            if css.contains("url(") || css.contains("@import") {
                found.push("a url( or @import in the style sheet".to_owned());
            }
        }
    }
    // Every "://" of the page is in text a person reads (the targets' URLs), none in markup.
    if raw.matches("://").count() != text_urls {
        found.push("a URL outside the text".to_owned());
    }
    found
}

/// Parses the page as XML (its `<!DOCTYPE html>` is a DTD to the parser).
fn parse(html: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(html, options)
}

#[test]
fn the_html_report_is_well_formed_self_contained_and_renders() {
    let run = ReplicatedRun::start();
    let raw = std::fs::read_to_string(run.html()).expect("--html wrote the page");
    let doc = parse(&raw).unwrap_or_else(|e| panic!("the HTML report is not well-formed: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "html");
    assert_eq!(external_references(&doc, &raw), Vec::<String>::new());
    // The negative control: the same check finds a fetched image and a linked style sheet.
    let leaky = raw.replacen(
        "<body>",
        "<body><img src=\"https://cdn.example/x.png\"/><link rel=\"stylesheet\" href=\"s.css\"/>",
        1,
    );
    let leaky_doc = parse(&leaky).unwrap();
    let leaks = external_references(&leaky_doc, &leaky);
    for leak in [
        "a <img> element",
        "a <link> element",
        "a URL outside the text",
    ] {
        assert!(
            leaks.iter().any(|l| l == leak),
            "{leak:?} not found: {leaks:?}"
        );
    }
    assert!(raw.contains("Content-Security-Policy"));

    let headings: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("h2"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(
        headings,
        [
            "Run parameters",
            "Summary",
            "Over time",
            "Latency distribution",
            "Call outcomes",
            "Replicas",
            "Problems"
        ]
    );
    let charts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("svg"))
        .map(|n| n.attribute("aria-label").unwrap_or("").to_owned())
        .collect();
    for title in [
        "Throughput per second",
        "Latency per second (from intended send, all events)",
        "Errors per second by kind",
        "CALL_RECEIVED: answers by latency",
        "ACTION_COMPLETED: answers by latency",
        "Completed calls by outcome",
        "Webhooks per second by replica",
    ] {
        assert!(
            charts.iter().any(|c| c == title),
            "no {title:?} chart in {charts:?}"
        );
    }
    for replica in run.report["replicas"].as_array().unwrap() {
        assert!(
            raw.contains(replica["target"].as_str().unwrap()),
            "{replica}"
        );
    }

    let url = format!("file://{}", run.html().display());
    let png = run.dir.path().join("report.png");
    browser::screenshot(&url, &png, 1000, 1400, 2000).unwrap();
    let ink = browser::ink(&png).unwrap();
    assert!(ink.is_non_blank(), "the report renders blank: {ink:?}");
    let dom = browser::dump_dom(&url, 1000).unwrap();
    assert!(dom.contains("Throughput per second"), "{dom}");
    assert!(dom.matches("<svg").count() >= 7, "{dom}");
}

/// The label the binary gives the end of interval `k` of `ms` milliseconds.
fn label(k: u64, ms: u64) -> String {
    let at = k * ms;
    let (secs, millis) = (at / 1000, at % 1000);
    if millis == 0 {
        format!("{secs}s")
    } else {
        format!("{secs}.{}s", format!("{millis:03}").trim_end_matches('0'))
    }
}

#[test]
fn progress_in_a_log_is_one_line_per_interval() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    // stderr is a pipe here, not a terminal: plain lines.
    let out = loadgen(&[
        "--target",
        &server.base(),
        "--duration",
        "2s",
        "--concurrency",
        "2",
        "--progress-interval",
        "500ms",
        "--json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report = read_json(&json);
    let elapsed = report["elapsed_seconds"].as_f64().unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = (elapsed / 0.5).floor() as u64;
    assert!(expected >= 4, "a 2 s run lasted {elapsed} s");
    assert_eq!(lines.len() as u64, expected, "{elapsed} s:\n{stderr}");
    let mut started = 0;
    for (k, line) in (1..).zip(&lines) {
        let prefix = format!("progress {}/2s: calls ", label(k, 500));
        assert!(
            line.starts_with(&prefix),
            "line {k} is not {prefix:?}...: {line}"
        );
        assert!(
            !line.contains('\x1b'),
            "a terminal escape in a log: {line:?}"
        );
        for field in ["completed; webhooks ", "/s); p99 ", "; errors 0"] {
            assert!(line.contains(field), "no {field:?} in {line}");
        }
        let now: u64 = line[prefix.len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no call count in {line}"));
        assert!(now >= started, "calls started went down: {line}");
        started = now;
    }
    assert!(started <= num(&report, "/calls/started"));
    assert!(
        !stdout.contains("progress "),
        "progress went to stdout: {stdout}"
    );

    let quiet = loadgen(&["--target", &server.base(), "--calls", "3", "--quiet"]);
    assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
    assert_eq!(text(&quiet.stderr), "");
    assert!(text(&quiet.stdout).contains("calls: 3 started, 3 completed"));
}

#[test]
fn progress_on_a_terminal_is_a_bar_redrawn_in_place() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let (typescript, summary) = (dir.path().join("typescript"), dir.path().join("summary"));
    // util-linux's `script` runs the generator on a pseudo-terminal and records what it drew;
    // stdout goes to a file, as `loadgen > summary` would.
    let command = format!(
        "{} --target {} --calls 300 --concurrency 2 > {}",
        env!("CARGO_BIN_EXE_switchboard-loadgen"),
        server.base(),
        summary.display()
    );
    let status = Command::new("script")
        .args(["-qfec", &command])
        .arg(&typescript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("util-linux's `script` runs (apt-get install bsdutils)");
    assert!(status.success(), "{status}");
    let screen = std::fs::read_to_string(&typescript).unwrap();
    let frames: Vec<&str> = screen.split("\r\x1b[2K").skip(1).collect();
    assert!(frames.len() >= 2, "no bar drawn and erased: {screen:?}");
    assert!(
        frames[0].starts_with(&format!(
            "[{}] 0s  calls 0 done / 0/300 started",
            "-".repeat(24)
        )),
        "{:?}",
        frames[0]
    );
    // Redrawn in place: no frame ends a line, and the last one erased the bar.
    for frame in &frames[..frames.len() - 1] {
        assert!(!frame.contains('\n'), "{frame:?}");
    }
    let after = frames.last().unwrap();
    assert!(
        !after.contains("calls "),
        "the bar was not erased: {after:?}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(
        summary.starts_with("calls: 300 started, 300 completed"),
        "{summary}"
    );
    assert!(!summary.contains('\x1b'), "{summary:?}");
}

#[test]
fn compare_prints_two_runs_side_by_side_with_ratios() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, concurrency: &str| {
        let json = dir.path().join(name);
        let out = loadgen(&[
            "--target",
            &server.base(),
            "--calls",
            "40",
            "--concurrency",
            concurrency,
            "--quiet",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        json
    };
    let (a, b) = (run("a.json", "1"), run("b.json", "4"));
    let out = loadgen(&["--compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}\n{}", text(&out.stderr));
    let row = |label: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} row in\n{table}"))[label.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("calls started"), ["40", "40", "1.00"]);
    assert_eq!(row("errors"), ["0", "0", "="]);
    let p99 = row("CALL_RECEIVED p99 (ms)");
    let (pa, pb, ratio): (f64, f64, f64) = (
        p99[0].parse().unwrap(),
        p99[1].parse().unwrap(),
        p99[2].parse().unwrap(),
    );
    // The cells are rounded to 2 decimals, the ratio is of the exact figures.
    assert!((pb / pa - ratio).abs() <= 0.1 * ratio + 0.02, "{p99:?}");
    assert!(table.starts_with(&format!("A: {}\nB: {}\n", a.display(), b.display())));

    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a report").unwrap();
    let bad = loadgen(&["--compare", a.to_str().unwrap(), notes.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let message = text(&bad.stderr);
    assert!(message.contains("notes.txt: not JSON"), "{message}");
}
