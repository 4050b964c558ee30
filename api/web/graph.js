// The knowledge graph of a report as SVG: a force-directed layout (Fruchterman–Reingold, run to
// rest before drawing, from a fixed start so the same graph is drawn the same way), arrows for
// relations, colours by node kind. An edge with citations leads to its first reference.

import { el, svg } from "./dom.js";

const WIDTH = 860;
const MAX_HEIGHT = 520;
const MARGIN = 40;
const RADIUS = 7;
const STEPS = 300;
const KINDS = ["file", "symbol", "page", "concept"];

function layout(nodes, edges, height) {
  const count = nodes.length;
  nodes.forEach((node, i) => {
    const angle = (2 * Math.PI * i) / Math.max(count, 1);
    node.x = WIDTH / 2 + (WIDTH / 3) * Math.cos(angle);
    node.y = height / 2 + (height / 3) * Math.sin(angle);
  });
  if (count < 2) return;
  const k = 0.75 * Math.sqrt(((WIDTH - 2 * MARGIN) * (height - 2 * MARGIN)) / count);
  let temperature = WIDTH / 10;
  for (let step = 0; step < STEPS; step += 1) {
    for (const node of nodes) {
      node.dx = 0;
      node.dy = 0;
    }
    for (let a = 0; a < count; a += 1) {
      for (let b = a + 1; b < count; b += 1) {
        const u = nodes[a];
        const v = nodes[b];
        const dx = u.x - v.x;
        const dy = u.y - v.y;
        const distance = Math.max(Math.hypot(dx, dy), 0.01);
        const force = (k * k) / distance;
        u.dx += (dx / distance) * force;
        u.dy += (dy / distance) * force;
        v.dx -= (dx / distance) * force;
        v.dy -= (dy / distance) * force;
      }
    }
    for (const { source: u, target: v } of edges) {
      const dx = u.x - v.x;
      const dy = u.y - v.y;
      const distance = Math.max(Math.hypot(dx, dy), 0.01);
      const force = (distance * distance) / k;
      u.dx -= (dx / distance) * force;
      u.dy -= (dy / distance) * force;
      v.dx += (dx / distance) * force;
      v.dy += (dy / distance) * force;
    }
    for (const node of nodes) {
      // A little gravity keeps parts that share no edge on the canvas.
      node.dx += (WIDTH / 2 - node.x) * 0.005 * k;
      node.dy += (height / 2 - node.y) * 0.005 * k;
      const length = Math.max(Math.hypot(node.dx, node.dy), 0.01);
      const move = Math.min(length, temperature);
      node.x = Math.min(WIDTH - MARGIN, Math.max(MARGIN, node.x + (node.dx / length) * move));
      node.y = Math.min(height - MARGIN, Math.max(MARGIN, node.y + (node.dy / length) * move));
    }
    temperature = Math.max(temperature * 0.97, 0.5);
  }
}

function shorten(text, length = 28) {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

/**
 * The graph `{nodes: [{id, label, kind}], edges: [{from, to, relation, citations}]}` as an
 * element; `onCite(n)` is called when an edge with citations is clicked.
 */
export function drawGraph(graph, { onCite } = {}) {
  const nodes = (graph?.nodes ?? []).map((node) => ({ ...node }));
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const edges = (graph?.edges ?? [])
    .filter((edge) => byId.has(edge.from) && byId.has(edge.to))
    .map((edge) => ({ ...edge, source: byId.get(edge.from), target: byId.get(edge.to) }));
  if (nodes.length === 0) return el("p", { class: "muted" }, "No graph: the evidence named no files, symbols or pages.");
  // Small graphs get a shorter canvas.
  const height = Math.min(MAX_HEIGHT, 160 + 28 * nodes.length);
  layout(nodes, edges, height);
  const picture = svg(
    "svg",
    {
      class: "graph",
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "img",
      "aria-label": `Knowledge graph: ${nodes.length} nodes, ${edges.length} relations`,
      dataset: { nodes: nodes.length, edges: edges.length },
    },
    svg(
      "defs",
      {},
      svg(
        "marker",
        { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }),
      ),
    ),
    svg("g", { class: "edges" }, edges.map((edge) => edgeView(edge, onCite))),
    svg("g", { class: "nodes" }, nodes.map(nodeView)),
  );
  const legend = el(
    "ul",
    { class: "legend" },
    KINDS.map((kind) => el("li", {}, svg("svg", { viewBox: "0 0 10 10", class: `swatch kind-${kind}` }, svg("circle", { cx: 5, cy: 5, r: 4 })), kind)),
    el("li", { class: "muted" }, "arrows: contains, mentions, discusses; click one to see its source"),
  );
  return el("div", { class: "graph-box" }, picture, legend);
}

function edgeView(edge, onCite) {
  const { source, target } = edge;
  const dx = target.x - source.x;
  const dy = target.y - source.y;
  const length = Math.max(Math.hypot(dx, dy), 0.01);
  const end = { x: target.x - (dx / length) * (RADIUS + 2), y: target.y - (dy / length) * (RADIUS + 2) };
  const cited = edge.citations?.length ? ` [${edge.citations.join(", ")}]` : "";
  const line = svg(
    "line",
    {
      class: `edge rel-${edge.relation}${cited ? " cited" : ""}`,
      x1: source.x.toFixed(1),
      y1: source.y.toFixed(1),
      x2: end.x.toFixed(1),
      y2: end.y.toFixed(1),
      "marker-end": "url(#arrow)",
    },
    svg("title", {}, `${source.label} ${edge.relation} ${target.label}${cited}`),
  );
  if (cited && onCite) line.addEventListener("click", () => onCite(edge.citations[0]));
  return line;
}

function nodeView(node) {
  return svg(
    "g",
    { class: `node kind-${node.kind}`, transform: `translate(${node.x.toFixed(1)},${node.y.toFixed(1)})` },
    svg("circle", { r: RADIUS }),
    svg("text", { x: 0, y: RADIUS + 13, "text-anchor": "middle" }, shorten(node.label)),
    svg("title", {}, `${node.label} (${node.kind})`),
  );
}
