//! `switchboard flow graph` as an author runs it: the real binary on the bundled flows, on
//! `fixtures/graph` and on a generated 30-node flow. Mermaid and DOT are compared with golden
//! files (`SWITCHBOARD_BLESS=1` rewrites them); the SVG is parsed as XML and its geometry
//! checked: one box per node, no two boxes overlapping, every edge drawn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph")
}

/// Runs `switchboard ARGS` in the repository.
fn switchboard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .current_dir(repo())
        .args(args)
        .env_remove("SWITCHBOARD_ADMIN_TOKEN")
        .output()
        .unwrap()
}

/// The standard output of a run that must succeed.
#[track_caller]
fn picture(args: &[&str]) -> String {
    let output = switchboard(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Compares `actual` with the golden file `name` (rewritten with `SWITCHBOARD_BLESS=1`).
#[track_caller]
fn golden(name: &str, actual: &str) {
    let path = fixtures().join(name);
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs from the output (run with SWITCHBOARD_BLESS=1 to accept it):\n{actual}",
        path.display()
    );
}

#[test]
fn mermaid_and_dot_match_their_golden_files() {
    for flow in ["restaurant", "support", "bank"] {
        let file = format!("flows/{flow}.yaml");
        golden(
            &format!("{flow}.mmd"),
            &picture(&["flow", "graph", &file, "--format", "mermaid"]),
        );
        golden(
            &format!("{flow}.dot"),
            &picture(&["flow", "graph", &file, "--format", "dot"]),
        );
    }
    let unreachable = fixtures().join("unreachable.yaml");
    let unreachable = unreachable.to_str().unwrap();
    golden(
        "unreachable.mmd",
        &picture(&["flow", "graph", unreachable, "--format", "mermaid"]),
    );
    let report = fixtures().join("report.json");
    let report = report.to_str().unwrap();
    golden(
        "unreachable-report.dot",
        &picture(&[
            "flow",
            "graph",
            unreachable,
            "--format",
            "dot",
            "--report",
            report,
        ]),
    );
    golden(
        "unreachable-report.mmd",
        &picture(&[
            "flow",
            "graph",
            unreachable,
            "--format",
            "mermaid",
            "--report",
            report,
        ]),
    );
}

/// A box of the SVG: node name, classes and rectangle.
#[derive(Debug)]
struct Box_ {
    node: String,
    class: String,
    visits: Option<u64>,
    rect: [f64; 4],
}

/// The boxes and the number of edges of an SVG, which must be well-formed XML.
fn boxes(svg: &str) -> (Vec<Box_>, usize) {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut found = Vec::new();
    for group in doc
        .descendants()
        .filter(|n| n.attribute("data-node").is_some())
    {
        let rect = group
            .children()
            .find(|c| c.attribute("class") == Some("node-box"))
            .expect("a node group holds its box");
        let number = |name| rect.attribute(name).unwrap().parse::<f64>().unwrap();
        found.push(Box_ {
            node: group.attribute("data-node").unwrap().to_owned(),
            class: group.attribute("class").unwrap().to_owned(),
            visits: group.attribute("data-visits").map(|v| v.parse().unwrap()),
            rect: [number("x"), number("y"), number("width"), number("height")],
        });
    }
    let edges = doc
        .descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split(' ').any(|c| c == "edge"))
        })
        .count();
    (found, edges)
}

#[track_caller]
fn assert_no_overlap(boxes: &[Box_]) {
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            let [ax, ay, aw, ah] = a.rect;
            let [bx, by, bw, bh] = b.rect;
            let overlap = ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah;
            assert!(!overlap, "boxes overlap: {a:?} and {b:?}");
        }
    }
}

#[test]
fn the_svg_is_well_formed_with_one_box_per_node_and_no_overlaps() {
    // The flows' nodes (11, 13, 8) plus the built-ins `back` and `hangup`.
    for (flow, boxes_expected) in [("restaurant", 13), ("support", 15), ("bank", 10)] {
        let svg = picture(&["flow", "graph", &format!("flows/{flow}.yaml")]);
        let (found, edges) = boxes(&svg);
        assert_eq!(found.len(), boxes_expected, "{flow}: {found:?}");
        assert!(edges > found.len(), "{flow}: {edges} edges");
        assert_no_overlap(&found);
        assert!(
            found.iter().all(|b| !b.class.contains("unreachable")),
            "{flow}"
        );
    }
}

#[test]
fn the_geometry_check_catches_overlapping_boxes() {
    // The negative control of the check above: two boxes drawn on top of each other.
    let svg = r#"<svg xmlns="http://www.w3.org/2000/svg">
        <g class="node" data-node="a"><rect class="node-box" x="0" y="0" width="100" height="50"/></g>
        <g class="node" data-node="b"><rect class="node-box" x="90" y="40" width="100" height="50"/></g>
        </svg>"#;
    let (found, _) = boxes(svg);
    let caught = std::panic::catch_unwind(|| assert_no_overlap(&found));
    assert!(caught.is_err());
}

/// A generated 30-node flow: a main menu, five department menus of three keys each, a
/// transfer per department, business hours and the usual goodbyes.
fn thirty_nodes(dir: &Path) -> PathBuf {
    let mut yaml = String::from(
        "id: big\nstart: hours\ntimezone: Asia/Singapore\nnodes:\n  hours:\n    branch:\n      - when: { days: mon-fri, time: \"09:00-18:00\" }\n        goto: main\n    default: closed\n  closed:\n    say: \"We are closed.\"\n    next: goodbye\n  goodbye:\n    say: \"Goodbye.\"\n    next: hangup\n  busy:\n    say: \"Everyone is busy.\"\n    next: goodbye\n  main:\n    menu:\n      prompt: \"Choose a department from 1 to 5.\"\n      on_fail: goodbye\n      options: {",
    );
    for d in 1..=5 {
        yaml.push_str(&format!(" \"{d}\": dept{d},"));
    }
    yaml.push_str(" }\n");
    for d in 1..=5 {
        yaml.push_str(&format!(
            "  dept{d}:\n    menu:\n      prompt: \"Department {d}: press 1, 2 or 3 for information, 0 for an agent, 9 to go back.\"\n      on_fail: goodbye\n      options: {{ \"1\": info{d}_1, \"2\": info{d}_2, \"3\": info{d}_3, \"0\": agent{d}, \"9\": back }}\n"
        ));
        for i in 1..=3 {
            yaml.push_str(&format!(
                "  info{d}_{i}:\n    say: \"Information {i} of department {d}.\"\n    next: dept{d}\n"
            ));
        }
        yaml.push_str(&format!(
            "  agent{d}:\n    transfer: {{ to: \"+653158000{d}\" }}\n    on_busy: busy\n    on_no_answer: busy\n    on_error: goodbye\n"
        ));
    }
    let file = dir.join("big.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

#[test]
fn a_thirty_node_flow_is_laid_out_without_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let file = thirty_nodes(dir.path());
    let check = switchboard(&["flow", "check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let svg = picture(&["flow", "graph", file.to_str().unwrap()]);
    let (found, edges) = boxes(&svg);
    // 30 nodes, `back` and `hangup`.
    assert_eq!(found.len(), 32);
    assert_eq!(
        edges,
        // hours 2, closed/goodbye/busy 1 each, main 5 keys + on_fail + retry, each department
        // 5 keys + on_fail + retry, 3 infos and 4 transfer results.
        2 + 3 + 7 + 5 * (7 + 3 + 4)
    );
    assert_no_overlap(&found);
    // Readable: the picture is not a thin strip.
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let width: f64 = doc
        .root_element()
        .attribute("width")
        .unwrap()
        .parse()
        .unwrap();
    let height: f64 = doc
        .root_element()
        .attribute("height")
        .unwrap()
        .parse()
        .unwrap();
    assert!(width < 3000.0 && height < 2000.0, "{width}x{height}");
}

#[test]
fn unreachable_nodes_are_flagged_and_a_saved_report_colours_the_funnel() {
    let file = fixtures().join("unreachable.yaml");
    let report = fixtures().join("report.json");
    let svg = picture(&[
        "flow",
        "graph",
        file.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let (found, _) = boxes(&svg);
    let by_name: BTreeMap<&str, &Box_> = found.iter().map(|b| (b.node.as_str(), b)).collect();
    assert!(by_name["orphan"].class.contains("unreachable"));
    assert!(!by_name["main"].class.contains("unreachable"));
    assert!(by_name["main"].class.contains("start"));
    assert_eq!(by_name["main"].visits, Some(10));
    assert_eq!(by_name["sales"].visits, Some(6));
    assert!(svg.contains("10 visits · 4 left (40%)"), "{svg}");
    // 40 % drop-off is between green (120) and red (0).
    assert!(svg.contains("hsl(72, 70%, 82%)"), "{svg}");
    assert!(svg.contains("⚠ unreachable"));
}

#[test]
fn a_report_for_another_flow_or_a_broken_one_is_refused() {
    let report = fixtures().join("report.json");
    let output = switchboard(&[
        "flow",
        "graph",
        "flows/bank.yaml",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.contains("is for flow 'unreachable', not for flow 'bank'"),
        "{err}"
    );
    let output = switchboard(&[
        "flow",
        "graph",
        "flows/bank.yaml",
        "--report",
        "/nonexistent/report.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(
        err.starts_with("switchboard: cannot read the report file '/nonexistent/report.json'"),
        "{err}"
    );
}

#[test]
fn the_picture_in_the_docs_is_what_the_tool_draws_today() {
    // docs/flows.md shows docs/images/support.svg; regenerate it with
    // `switchboard flow graph flows/support.yaml -o docs/images/support.svg`
    // (or run this test with SWITCHBOARD_BLESS=1) when the drawing or the flow changes.
    let drawn = picture(&["flow", "graph", "flows/support.yaml"]);
    let path = repo().join("docs/images/support.svg");
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        std::fs::write(&path, &drawn).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == drawn,
        "docs/images/support.svg is out of date: run `switchboard flow graph flows/support.yaml -o docs/images/support.svg`"
    );
    let docs = std::fs::read_to_string(repo().join("docs/flows.md")).unwrap();
    assert!(
        docs.contains("![The support flow, drawn by switchboard flow graph](images/support.svg)")
    );
}
