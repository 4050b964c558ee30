// A research report: title, question, summary and sections (Markdown, citations as links to
// their reference), the knowledge graph, the references, and how it was made.

import { $, el, externalLink, replace } from "./dom.js";
import { drawGraph } from "./graph.js";
import { markdown } from "./markdown.js";

/** Scrolls to reference `n` and marks it for a moment. */
export function showReference(n) {
  const target = document.getElementById(`ref-${n}`);
  if (!target) return;
  target.scrollIntoView({ block: "center" });
  target.classList.remove("flash");
  // Restart the animation when the same reference is shown twice.
  void target.offsetWidth;
  target.classList.add("flash");
  target.focus({ preventScroll: true });
}

function citeLink(known) {
  return (n) => {
    if (!known.has(n)) return null;
    return el(
      "a",
      {
        href: `#ref-${n}`,
        class: "cite",
        dataset: { ref: n },
        onclick: (event) => {
          event.preventDefault();
          showReference(n);
        },
      },
      `[${n}]`,
    );
  };
}

function place(reference) {
  if (reference.url) return externalLink(reference.url);
  const lines = reference.start_line ? `:${reference.start_line}-${reference.end_line ?? reference.start_line}` : "";
  const where = `${reference.path ?? reference.title}${lines}`;
  return el("code", { class: "place" }, reference.collection ? `${reference.collection}: ${where}` : where);
}

function referenceView(reference) {
  return el(
    "li",
    { id: `ref-${reference.n}`, value: reference.n, tabindex: -1, class: "reference" },
    el("span", { class: "ref-n" }, `[${reference.n}]`),
    " ",
    el("span", { class: "ref-title" }, reference.title),
    " — ",
    place(reference),
    " ",
    el("span", { class: "muted" }, `retrieved ${reference.retrieved_at}`),
    reference.excerpt
      ? el("details", {}, el("summary", {}, "passage"), el("pre", { class: "snippet" }, reference.excerpt))
      : null,
  );
}

function footer(report) {
  const notes = [];
  const usage = report.usage ?? {};
  notes.push(
    `Synthesis: ${report.synthesis}; LLM usage: ${usage.input_tokens ?? 0} input and ${usage.output_tokens ?? 0} output tokens, $${Number(usage.cost_usd ?? 0).toFixed(4)}.`,
  );
  if (report.budgets_hit?.length) {
    notes.push(`Budgets reached: ${report.budgets_hit.map((b) => `${b.budget} (during ${b.stage})`).join(", ")}.`);
  }
  if (report.removed_citations?.length) {
    notes.push(`Citations removed because they named no evidence: ${report.removed_citations.map((c) => c.raw).join(", ")}.`);
  }
  notes.push(`Session ${report.session}, ${report.created_at}.`);
  return el("footer", { class: "report-footer muted" }, notes.map((note) => el("p", {}, note)));
}

/** Renders `report` into the page's report area. */
export function renderReport(report) {
  const article = $("#report");
  const known = new Set((report.references ?? []).map((reference) => reference.n));
  const options = { cite: citeLink(known) };
  const sections = (report.sections ?? []).map((section) =>
    el(
      "section",
      { class: "report-section" },
      el("h3", {}, section.heading),
      section.heading !== section.sub_question ? el("p", { class: "sub-question" }, section.sub_question) : null,
      markdown(section.body, options),
    ),
  );
  replace(
    article,
    el("h2", { class: "report-title" }, report.title),
    el("blockquote", { class: "report-question" }, report.question),
    el("section", { class: "report-section summary" }, el("h3", {}, report.summary_heading), markdown(report.summary, options)),
    sections,
    el("section", { class: "report-graph" }, el("h3", {}, "Knowledge graph"), drawGraph(report.graph, { onCite: showReference })),
    el(
      "section",
      { class: "report-references" },
      el("h3", {}, "References"),
      el("ol", { class: "references" }, (report.references ?? []).map(referenceView)),
    ),
    footer(report),
  );
  article.hidden = false;
}

export function clearReport() {
  const article = $("#report");
  replace(article);
  article.hidden = true;
}
