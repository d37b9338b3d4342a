//! Writing a [`Graph`] out: SVG (laid out by [`super::layout`]), Mermaid and Graphviz DOT.
//!
//! All three show the same things: a box per node with its name, kind and short text; an
//! arrow per transition with its label; unhappy paths (retry, on_fail, busy, no answer, error)
//! dashed and coloured by kind; the start node in bold; unreachable nodes greyed and flagged;
//! with a report, each box's visits and drop-off, its fill going from green (few callers
//! leave here) to red (most do).
//!
//! The SVG marks its parts for tools and tests: `<g class="node" data-node="main">` around a
//! `<rect class="node-box">`, `<path class="edge edge-fail">`, `data-visits`/`data-exits` with a
//! report.

use std::fmt::Write as _;

use super::layout::{Layout, Point, layout};
use super::{EdgeKind, Funnel, Graph, GraphNode, shorten};

/// Characters per line of a box's text in the SVG.
const LINE_CHARS: usize = 32;
/// Height of the legend under the SVG picture.
const LEGEND_HEIGHT: f64 = 34.0;

/// The stroke colour of an edge kind.
fn colour(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Next | EdgeKind::Option => "#37474f",
        EdgeKind::Retry => "#90a4ae",
        EdgeKind::Fail => "#c62828",
        EdgeKind::Busy => "#ef6c00",
        EdgeKind::NoAnswer => "#6a1b9a",
        EdgeKind::Error => "#ad1457",
    }
}

/// The SVG dash pattern of an edge kind (`None`: solid).
fn dashes(kind: EdgeKind) -> Option<&'static str> {
    match kind {
        EdgeKind::Next | EdgeKind::Option => None,
        EdgeKind::Retry => Some("2 4"),
        EdgeKind::Fail | EdgeKind::Error => Some("7 4"),
        EdgeKind::Busy | EdgeKind::NoAnswer => Some("4 3"),
    }
}

/// The fill of a box without a report, by kind.
fn kind_fill(node: &GraphNode) -> &'static str {
    if !node.reachable {
        return "#f5f5f5";
    }
    match node.kind {
        "menu" => "#e3f2fd",
        "say" => "#f1f8e9",
        "play" => "#e0f7fa",
        "capture" => "#fff8e1",
        "transfer" => "#fce4ec",
        "branch" => "#ede7f6",
        "set" => "#eceff1",
        _ => "#eeeeee",
    }
}

/// The fill of a box with a report: green (nobody leaves here) to red (everybody does), and
/// grey where no caller came.
fn drop_fill(funnel: Funnel) -> String {
    if funnel.visits == 0 {
        return "#eceff1".to_owned();
    }
    let hue = 120.0 * (1.0 - funnel.drop_rate());
    format!("hsl({hue:.0}, 70%, 82%)")
}

/// `12 visits · 3 left (25%)`.
fn funnel_text(funnel: Funnel) -> String {
    let visits = if funnel.visits == 1 {
        "visit"
    } else {
        "visits"
    };
    format!(
        "{} {visits} · {} left ({:.0}%)",
        funnel.visits,
        funnel.exits,
        funnel.drop_rate() * 100.0
    )
}

/// The lines of text in a box after its title.
fn box_lines(node: &GraphNode) -> Vec<String> {
    let mut lines = wrap(&node.text, LINE_CHARS, 2);
    if !node.reachable {
        lines.truncate(1);
        lines.push("⚠ unreachable".to_owned());
    } else if let Some(funnel) = node.funnel {
        lines.truncate(2);
        while lines.len() < 2 {
            lines.push(String::new());
        }
        lines.push(funnel_text(funnel));
    }
    lines
}

/// `text` in at most `lines` lines of `width` characters, at word boundaries; the last line
/// ends with `…` if text is left over.
fn wrap(text: &str, width: usize, lines: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut cut = false;
    for word in text.split_whitespace() {
        let needed = current.chars().count() + 1 + word.chars().count();
        if needed > width && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            if out.len() == lines {
                cut = true;
                break;
            }
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !cut && !current.is_empty() {
        out.push(current);
    }
    if cut && let Some(last) = out.last_mut() {
        let short = shorten(last, width.saturating_sub(1));
        *last = if short.ends_with('…') {
            short
        } else {
            short + "…"
        };
    }
    out.into_iter().map(|l| shorten(&l, width)).collect()
}

/// Escapes text for XML content and attribute values.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The graph as a standalone SVG document.
pub fn svg(graph: &Graph) -> String {
    let laid = layout(graph);
    let height = laid.height + LEGEND_HEIGHT;
    let width = laid.width.max(760.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" data-flow="{}" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="11">"#,
        xml(&graph.flow),
        w = width,
        h = height,
    );
    let _ = writeln!(out, "<title>Flow '{}'</title>", xml(&graph.flow));
    out.push_str("<defs>\n");
    for kind in KINDS {
        let _ = writeln!(
            out,
            r#"<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>"#,
            name = kind.name(),
            colour = colour(kind)
        );
    }
    out.push_str("</defs>\n");
    let _ = writeln!(
        out,
        r##"<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>"##
    );
    edges_svg(graph, &laid, &mut out);
    nodes_svg(graph, &laid, &mut out);
    legend_svg(laid.height, &mut out);
    out.push_str("</svg>\n");
    out
}

/// Every kind of edge, in legend order.
const KINDS: [EdgeKind; 7] = [
    EdgeKind::Option,
    EdgeKind::Next,
    EdgeKind::Retry,
    EdgeKind::Fail,
    EdgeKind::Busy,
    EdgeKind::NoAnswer,
    EdgeKind::Error,
];

fn edge_style(kind: EdgeKind) -> String {
    let dash = dashes(kind)
        .map(|d| format!(r#" stroke-dasharray="{d}""#))
        .unwrap_or_default();
    format!(
        r#"fill="none" stroke="{}" stroke-width="1.4"{dash} marker-end="url(#arrow-{})""#,
        colour(kind),
        kind.name()
    )
}

fn edges_svg(graph: &Graph, laid: &Layout, out: &mut String) {
    out.push_str("<g class=\"edges\">\n");
    let mut labels = String::new();
    for (i, edge) in graph.edges.iter().enumerate() {
        let points = &laid.edges[i];
        let class = format!("edge edge-{}", edge.kind.name());
        let (d, anchor) = if points.is_empty() {
            // A loop onto the node itself, on the box's left side.
            let b = laid.boxes[edge.from];
            let (x, top, bottom) = (b.x, b.y + b.h * 0.3, b.y + b.h * 0.7);
            (
                format!(
                    "M {x:.1} {top:.1} C {:.1} {top:.1}, {:.1} {bottom:.1}, {x:.1} {bottom:.1}",
                    x - 34.0,
                    x - 34.0
                ),
                Point {
                    x: x - 30.0,
                    y: b.y + b.h / 2.0,
                },
            )
        } else {
            (path(points), label_anchor(points, laid.upward[i]))
        };
        let _ = writeln!(
            out,
            r#"<path class="{class}" data-from="{}" data-to="{}" d="{d}" {}/>"#,
            xml(&graph.nodes[edge.from].name),
            xml(&graph.nodes[edge.to].name),
            edge_style(edge.kind)
        );
        if !edge.label.is_empty() {
            let w = text_width(&edge.label, 10.0) + 6.0;
            let _ = writeln!(
                labels,
                r##"<g class="edge-label"><rect x="{:.1}" y="{:.1}" width="{w:.1}" height="14" rx="3" fill="#ffffff" fill-opacity="0.85"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="{}">{}</text></g>"##,
                anchor.x - w / 2.0,
                anchor.y - 10.0,
                anchor.x,
                anchor.y,
                colour(edge.kind),
                xml(&edge.label)
            );
        }
    }
    out.push_str(&labels);
    out.push_str("</g>\n");
}

/// A polyline with rounded corners: straight segments joined by quadratic curves.
fn path(points: &[Point]) -> String {
    let mut d = format!("M {:.1} {:.1}", points[0].x, points[0].y);
    if points.len() == 2 {
        let _ = write!(d, " L {:.1} {:.1}", points[1].x, points[1].y);
        return d;
    }
    for i in 1..points.len() - 1 {
        let (p, q) = (points[i], points[i + 1]);
        let mid = Point {
            x: (p.x + q.x) / 2.0,
            y: (p.y + q.y) / 2.0,
        };
        if i == points.len() - 2 {
            let _ = write!(d, " Q {:.1} {:.1}, {:.1} {:.1}", p.x, p.y, q.x, q.y);
        } else {
            let _ = write!(d, " Q {:.1} {:.1}, {:.1} {:.1}", p.x, p.y, mid.x, mid.y);
        }
    }
    d
}

/// Where an edge's label goes: near its start for downward edges (where the keys fan out),
/// at its middle waypoint for upward ones.
fn label_anchor(points: &[Point], upward: bool) -> Point {
    if upward {
        let p = points[points.len() / 2];
        return Point { x: p.x, y: p.y };
    }
    let (a, b) = (points[0], points[1]);
    Point {
        x: a.x + (b.x - a.x) * 0.3,
        y: a.y + (b.y - a.y) * 0.3 + 14.0,
    }
}

/// Roughly how wide `text` is at `size` pixels (an average glyph is 0.6 em).
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

fn nodes_svg(graph: &Graph, laid: &Layout, out: &mut String) {
    out.push_str("<g class=\"nodes\">\n");
    for (node, b) in graph.nodes.iter().zip(&laid.boxes) {
        let fill = match node.funnel {
            Some(funnel) if node.reachable => drop_fill(funnel),
            _ => kind_fill(node).to_owned(),
        };
        let figures = node
            .funnel
            .map(|f| format!(r#" data-visits="{}" data-exits="{}""#, f.visits, f.exits))
            .unwrap_or_default();
        let mut class = format!("node node-{}", node.kind);
        if node.start {
            class.push_str(" start");
        }
        if !node.reachable {
            class.push_str(" unreachable");
        }
        let _ = writeln!(
            out,
            r#"<g class="{class}" data-node="{}"{figures}>"#,
            xml(&node.name)
        );
        let stroke = if node.reachable { "#455a64" } else { "#9e9e9e" };
        let width = if node.start { 3.0 } else { 1.2 };
        let dash = if node.reachable {
            ""
        } else {
            r#" stroke-dasharray="5 3""#
        };
        let radius = if node.builtin { b.h / 2.0 } else { 8.0 };
        let _ = writeln!(
            out,
            r#"<rect class="node-box" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{radius:.1}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>"#,
            b.x, b.y, b.w, b.h
        );
        let centre = b.x + b.w / 2.0;
        if node.builtin {
            let _ = writeln!(
                out,
                r##"<text x="{centre:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="bold" fill="#263238">{}</text>"##,
                b.y + b.h / 2.0 + 4.0,
                xml(&node.name)
            );
        } else {
            let _ = writeln!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="bold" fill="#263238">{}<tspan font-weight="normal" font-size="10" fill="#546e7a"> · {}</tspan></text>"##,
                b.x + 8.0,
                b.y + 17.0,
                xml(&shorten(&node.name, 22)),
                node.kind
            );
            for (k, line) in box_lines(node).iter().enumerate() {
                let bold = if k == 2 || line.starts_with('⚠') {
                    r#" font-weight="bold""#
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    r##"<text x="{:.1}" y="{:.1}" fill="#37474f"{bold}>{}</text>"##,
                    b.x + 8.0,
                    b.y + 35.0 + 15.0 * k as f64,
                    xml(line)
                );
            }
        }
        out.push_str("</g>\n");
    }
    out.push_str("</g>\n");
}

fn legend_svg(top: f64, out: &mut String) {
    out.push_str("<g class=\"legend\">\n");
    let y = top + 14.0;
    let mut x = 24.0;
    for kind in KINDS {
        let _ = writeln!(
            out,
            r#"<path d="M {x:.1} {y:.1} L {:.1} {y:.1}" {}/><text x="{:.1}" y="{:.1}" fill="{}">{}</text>"#,
            x + 30.0,
            edge_style(kind),
            x + 36.0,
            y + 4.0,
            colour(kind),
            kind.name()
        );
        x += 36.0 + text_width(kind.name(), 11.0) + 24.0;
    }
    out.push_str("</g>\n");
}

/// Escapes a Mermaid label (inside `"..."`).
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// The graph as a Mermaid flowchart (a ```` ```mermaid ```` block in a GitHub README).
pub fn mermaid(graph: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut lines = vec![if node.builtin {
            node.name.clone()
        } else {
            format!("{} · {}", node.name, node.kind)
        }];
        if !node.builtin {
            lines.push(node.text.clone());
        }
        if !node.reachable {
            lines.push("⚠ unreachable".to_owned());
        } else if let Some(funnel) = node.funnel {
            lines.push(funnel_text(funnel));
        }
        let label = lines
            .iter()
            .map(|l| mermaid_text(l))
            .collect::<Vec<_>>()
            .join("<br/>");
        if node.builtin {
            let _ = writeln!(out, "  n{i}([\"{label}\"])");
        } else {
            let _ = writeln!(out, "  n{i}[\"{label}\"]");
        }
    }
    for edge in &graph.edges {
        let arrow = if edge.kind.is_unhappy() {
            "-.->"
        } else {
            "-->"
        };
        if edge.label.is_empty() {
            let _ = writeln!(out, "  n{} {arrow} n{}", edge.from, edge.to);
        } else {
            let _ = writeln!(
                out,
                "  n{} {arrow}|\"{}\"| n{}",
                edge.from,
                mermaid_text(&edge.label),
                edge.to
            );
        }
    }
    for (i, edge) in graph.edges.iter().enumerate() {
        if edge.kind.is_unhappy() {
            let _ = writeln!(out, "  linkStyle {i} stroke:{}", colour(edge.kind));
        }
    }
    out.push_str("  classDef start stroke-width:3px\n");
    out.push_str(
        "  classDef unreachable fill:#f5f5f5,stroke:#9e9e9e,stroke-dasharray:5 3,color:#757575\n",
    );
    for (i, node) in graph.nodes.iter().enumerate() {
        if node.start {
            let _ = writeln!(out, "  class n{i} start");
        }
        if !node.reachable {
            let _ = writeln!(out, "  class n{i} unreachable");
        } else if let Some(funnel) = node.funnel {
            let _ = writeln!(
                out,
                "  style n{i} fill:{}",
                drop_fill(funnel).replace(' ', "")
            );
        }
    }
    out
}

/// Escapes a DOT string (inside `"..."`).
fn dot_text(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The graph in Graphviz DOT.
pub fn dot(graph: &Graph) -> String {
    let mut out = format!("digraph \"{}\" {{\n", dot_text(&graph.flow));
    out.push_str("  rankdir=TB;\n");
    out.push_str(
        "  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\", fontsize=11];\n",
    );
    out.push_str("  edge [fontname=\"sans-serif\", fontsize=10];\n");
    for (i, node) in graph.nodes.iter().enumerate() {
        let mut label = if node.builtin {
            node.name.clone()
        } else {
            format!("{} · {}\\n{}", node.name, node.kind, dot_text(&node.text))
        };
        let mut attrs = Vec::new();
        if !node.reachable {
            label.push_str("\\n⚠ unreachable");
            attrs.push("style=\"rounded,filled,dashed\"".to_owned());
            attrs.push("color=\"#9e9e9e\"".to_owned());
        } else if let Some(funnel) = node.funnel {
            label.push_str("\\n");
            label.push_str(&funnel_text(funnel));
        }
        let fill = match node.funnel {
            Some(funnel) if node.reachable && funnel.visits > 0 => {
                let hue = (1.0 - funnel.drop_rate()) / 3.0;
                format!("{hue:.3} 0.45 0.95")
            }
            Some(_) if node.reachable => "#eceff1".to_owned(),
            _ => kind_fill(node).to_owned(),
        };
        attrs.insert(0, format!("fillcolor=\"{fill}\""));
        if node.builtin {
            attrs.push("shape=oval".to_owned());
        }
        if node.start {
            attrs.push("penwidth=3".to_owned());
        }
        let _ = writeln!(out, "  n{i} [label=\"{label}\", {}];", attrs.join(", "));
    }
    for edge in &graph.edges {
        let mut attrs = Vec::new();
        if !edge.label.is_empty() {
            attrs.push(format!("label=\"{}\"", dot_text(&edge.label)));
        }
        if edge.kind.is_unhappy() {
            let style = if edge.kind == EdgeKind::Retry {
                "dotted"
            } else {
                "dashed"
            };
            attrs.push(format!("style={style}"));
            attrs.push(format!("color=\"{}\"", colour(edge.kind)));
            attrs.push(format!("fontcolor=\"{}\"", colour(edge.kind)));
        }
        if attrs.is_empty() {
            let _ = writeln!(out, "  n{} -> n{};", edge.from, edge.to);
        } else {
            let _ = writeln!(
                out,
                "  n{} -> n{} [{}];",
                edge.from,
                edge.to,
                attrs.join(", ")
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_words_and_marks_what_is_cut() {
        assert_eq!(wrap("one two three", 8, 2), vec!["one two", "three"]);
        let cut = wrap("one two three four five six", 8, 2);
        assert_eq!(cut.len(), 2);
        assert!(cut[1].ends_with('…'), "{cut:?}");
        assert_eq!(xml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
