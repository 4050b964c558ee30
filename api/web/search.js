// Search: the query and filters go to `POST /v1/search` as a stream; each source's results show
// as they arrive, then the fused list of all sources.

import { readEvents, request } from "./api.js";
import { $, checked, el, externalLink, formatMs, replace } from "./dom.js";

const GROUP_ORDER = ["code", "docs", "web"];

let running = null;

export function initSearch() {
  const form = $("#search-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch(form);
  });
}

/** The request body of the form: only what narrows the search is sent. */
function searchBody(form) {
  const data = new FormData(form);
  const body = { query: String(data.get("query") ?? "").trim() };
  const sources = checked(form, "source");
  if (sources.length > 0 && sources.length < 3) body.sources = sources;
  const collections = checked(form, "collection");
  if (collections.length > 0) body.collections = collections;
  const language = data.get("language");
  if (language) body.languages = [language];
  const mode = data.get("mode");
  if (mode) body.mode = mode;
  const path = String(data.get("path") ?? "").trim();
  if (path) body.path = path;
  return body;
}

async function runSearch(form) {
  running?.abort();
  const controller = new AbortController();
  running = controller;
  const results = $("#search-results");
  const status = $("#search-status");
  const view = new ResultsView(results);
  status.textContent = "Searching…";
  results.dataset.state = "running";
  try {
    const response = await request("/v1/search", {
      method: "POST",
      body: searchBody(form),
      accept: "text/event-stream",
      signal: controller.signal,
    });
    for await (const frame of readEvents(response)) {
      const event = JSON.parse(frame.data);
      const line = view.apply(event);
      if (line) status.textContent = line;
    }
    results.dataset.state = view.failed ? "failed" : "done";
  } catch (error) {
    if (error.name === "AbortError") return;
    status.textContent = `Search failed: ${error.message}`;
    results.dataset.state = "failed";
  } finally {
    if (running === controller) running = null;
  }
}

/** The results area of one search, updated event by event. */
class ResultsView {
  constructor(root) {
    this.fused = el("section", { class: "fused", hidden: true });
    this.bySource = el("div", { class: "by-source" });
    this.panels = new Map();
    this.failed = false;
    replace(root, this.fused, this.bySource);
  }

  panel(source) {
    let panel = this.panels.get(source);
    if (!panel) {
      const state = el("span", { class: "panel-state" }, "searching…");
      const hits = el("ol", { class: "hits" });
      const notes = el("ul", { class: "notes" });
      const node = el(
        "section",
        { class: "source", dataset: { source, state: "running" } },
        el("h3", {}, source, " ", state),
        notes,
        hits,
      );
      panel = { node, state, hits, notes };
      this.panels.set(source, panel);
      this.placePanel(source, node);
    }
    return panel;
  }

  /** Keeps the panels in the order code, docs, web (then any other source). */
  placePanel(source, node) {
    const rank = (name) => {
      const group = GROUP_ORDER.indexOf(name.split(":")[0]);
      return group < 0 ? GROUP_ORDER.length : group;
    };
    const after = [...this.panels.keys()].find(
      (other) => other !== source && rank(other) > rank(source),
    );
    this.bySource.insertBefore(node, after ? this.panels.get(after).node : null);
  }

  /** Applies one search event; returns a status line when there is news. */
  apply(event) {
    switch (event.type) {
      case "source_started":
        this.panel(event.source);
        return null;
      case "results": {
        const panel = this.panel(event.source);
        panel.node.dataset.state = "done";
        const cached = event.cached ? ", cached" : "";
        panel.state.textContent = `${event.hits.length} hits · ${formatMs(event.took_ms)}${cached}`;
        replace(panel.hits, event.hits.map(hitView));
        replace(panel.notes, (event.notes ?? []).map((note) => el("li", {}, note)));
        return null;
      }
      case "source_failed": {
        const panel = this.panel(event.source);
        panel.node.dataset.state = "failed";
        panel.state.textContent = `failed: ${event.error}`;
        return null;
      }
      case "merged":
        this.fused.hidden = false;
        replace(
          this.fused,
          el("h3", {}, "All sources, fused ", el("span", { class: "panel-state" }, `${event.hits.length} hits`)),
          el("ol", { class: "hits" }, event.hits.map(hitView)),
        );
        return null;
      case "done":
        return `${this.fused.querySelectorAll(".hit").length} hits in ${formatMs(event.timings?.total_ms)}`;
      case "error":
        this.failed = true;
        return `The search stopped: ${event.message ?? event.code}`;
      default:
        return null;
    }
  }
}

/** `snippet` with its byte ranges `ranges` (UTF-8, as the API gives them) marked. */
export function highlighted(snippet, ranges) {
  const bytes = new TextEncoder().encode(snippet);
  const decoder = new TextDecoder();
  const sorted = (ranges ?? [])
    .map(([start, end]) => [Math.max(0, start), Math.min(bytes.length, end)])
    .filter(([start, end]) => start < end)
    .sort((a, b) => a[0] - b[0]);
  const parts = [];
  let at = 0;
  for (const [start, end] of sorted) {
    if (end <= at) continue;
    const from = Math.max(start, at);
    if (from > at) parts.push(decoder.decode(bytes.subarray(at, from)));
    parts.push(el("mark", {}, decoder.decode(bytes.subarray(from, end))));
    at = end;
  }
  if (at < bytes.length) parts.push(decoder.decode(bytes.subarray(at)));
  return parts;
}

/** Where a hit is: its URL as a link, or `path:start-end`. */
export function placeOf(hit) {
  if (hit.url) return externalLink(hit.url);
  const lines = hit.start_line ? `:${hit.start_line}-${hit.end_line ?? hit.start_line}` : "";
  return el("code", { class: "place" }, `${hit.path ?? hit.title}${lines}`);
}

function hitView(hit) {
  const badges = [hit.collection, hit.language, hit.kind, hit.published]
    .filter(Boolean)
    .map((text) => el("span", { class: "badge" }, text));
  const title = hit.symbol && !hit.title.includes(hit.symbol) ? `${hit.symbol} · ${hit.title}` : hit.title;
  return el(
    "li",
    { class: "hit", dataset: { source: hit.source } },
    el("div", { class: "hit-head" }, el("span", { class: "hit-title" }, title), " ", badges),
    el("div", { class: "hit-place" }, placeOf(hit)),
    hit.snippet ? el("pre", { class: "snippet" }, highlighted(hit.snippet, hit.highlights)) : null,
  );
}
