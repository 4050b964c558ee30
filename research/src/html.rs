//! A report as one self-contained HTML page (`--format html`): the Markdown rendered by a
//! CommonMark renderer with raw HTML from the evidence escaped (only the report's own reference
//! anchors pass), the knowledge graph drawn as inline SVG, a little inline CSS; nothing loaded
//! from anywhere, no script.

use std::fmt::Write;

use pulldown_cmark::{html, Event, Parser};

use crate::graph::{Graph, NodeKind};
use crate::report::Report;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;\
padding:0 1rem;color:#1b1b1b}pre{background:#f4f4f4;padding:.75rem;overflow-x:auto}\
code{font-size:.9em}blockquote{color:#555;border-left:3px solid #ccc;margin-left:0;padding-left:1rem}\
svg{max-width:100%;height:auto;border:1px solid #ddd}:target{background:#fff3b0}";

/// The report as an HTML document.
pub fn report_html(report: &Report) -> String {
    let markdown = report.to_markdown();
    // The graph is drawn here, not left as Mermaid source.
    let (before, after) = match markdown.split_once("## Knowledge graph\n\n```mermaid\n") {
        Some((before, rest)) => (
            before.to_string(),
            rest.split_once("```\n\n")
                .map_or("", |(_, after)| after)
                .to_string(),
        ),
        None => (markdown.clone(), String::new()),
    };
    let mut body = render(&before);
    if !report.graph.nodes.is_empty() {
        body.push_str("<h2>Knowledge graph</h2>\n");
        body.push_str(&graph_svg(&report.graph));
    }
    body.push_str(&render(&after));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&report.title)
    )
}

/// Markdown to HTML; raw HTML is shown as text, except the reference anchors `<a id="ref-N"></a>`.
fn render(markdown: &str) -> String {
    let events = Parser::new(markdown).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) if !is_reference_anchor(&raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

fn is_reference_anchor(raw: &str) -> bool {
    let raw = raw.trim();
    raw == "</a>"
        || raw
            .strip_prefix("<a id=\"ref-")
            .and_then(|rest| rest.strip_suffix("\">"))
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The graph on a circle: nodes in their order, edges as lines, labels beside the nodes.
fn graph_svg(graph: &Graph) -> String {
    const SIZE: f64 = 720.0;
    let count = graph.nodes.len().max(1) as f64;
    let radius = SIZE / 2.0 - 150.0;
    let center = SIZE / 2.0;
    let position = |index: usize| {
        let angle = std::f64::consts::TAU * index as f64 / count - std::f64::consts::FRAC_PI_2;
        (center + radius * angle.cos(), center + radius * angle.sin())
    };
    let index_of = |id: &str| graph.nodes.iter().position(|node| node.id == id);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {SIZE} {SIZE}\" role=\"img\" \
         aria-label=\"Knowledge graph\">\n"
    );
    for edge in &graph.edges {
        let (Some(from), Some(to)) = (index_of(&edge.from), index_of(&edge.to)) else {
            continue;
        };
        let ((x1, y1), (x2, y2)) = (position(from), position(to));
        let _ = writeln!(
            out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#999\"><title>{:?} {}</title></line>",
            edge.relation,
            edge.citations
                .iter()
                .map(|n| format!("[{n}]"))
                .collect::<String>()
        );
    }
    for (index, node) in graph.nodes.iter().enumerate() {
        let (x, y) = position(index);
        let colour = match node.kind {
            NodeKind::File => "#4e79a7",
            NodeKind::Symbol => "#f28e2b",
            NodeKind::Page => "#59a14f",
            NodeKind::Concept => "#b07aa1",
        };
        let anchor = if x < center { "end" } else { "start" };
        let dx = if x < center { -9.0 } else { 9.0 };
        let _ = writeln!(
            out,
            "<circle class=\"node\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"{anchor}\">{}</text>",
            x + dx,
            y + 4.0,
            escape(&node.label)
        );
    }
    out.push_str("</svg>\n");
    out
}
