// Collections and indexing jobs: the collections with their vectors' progress, the jobs with
// each directory's state, and the running ones followed live through their event streams.

import { json, readEvents, request } from "./api.js";
import { $, el, formatBytes, formatMs, replace } from "./dom.js";

const POLL_MS = 3000;

/** Live streams of running jobs, by job id. */
const following = new Map();
let pollTimer = null;
let visible = false;
let onCollections = () => {};

export function initAdmin({ collectionsChanged }) {
  onCollections = collectionsChanged;
  $("#admin-refresh").addEventListener("click", () => refresh());
  $("#job-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await createJob(event.target);
  });
}

export function showAdmin() {
  visible = true;
  refresh();
}

export function hideAdmin() {
  visible = false;
  clearTimeout(pollTimer);
  for (const controller of following.values()) controller.abort();
  following.clear();
}

async function refresh() {
  await Promise.all([loadCollections(), loadJobs()]);
}

/** The collections, into the table and (through the callback) the search filters. */
export async function loadCollections() {
  const body = $("#collections-table tbody");
  try {
    const { collections } = await json("/v1/collections");
    replace(
      body,
      collections.length === 0 ? el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No collections yet.")) : null,
      collections.map((c) =>
        el(
          "tr",
          { dataset: { collection: c.name } },
          el("td", {}, c.name),
          el("td", {}, c.kind),
          el("td", { class: "number" }, c.files),
          el("td", { class: "number" }, c.chunks),
          el(
            "td",
            {},
            el("progress", { max: Math.max(c.chunks, 1), value: c.embedded_chunks }),
            ` ${c.embedded_chunks}/${c.chunks}${c.vectors_complete ? "" : " (incomplete)"}`,
          ),
          el("td", { class: "number" }, formatBytes(c.size_bytes)),
          el("td", { class: "number" }, c.generation),
        ),
      ),
    );
    onCollections(collections);
    return collections;
  } catch (error) {
    replace(body, el("tr", {}, el("td", { colspan: 7 }, `Could not list collections: ${error.message}`)));
    return [];
  }
}

async function loadJobs() {
  const list = $("#jobs");
  const status = $("#jobs-status");
  clearTimeout(pollTimer);
  let jobs;
  try {
    ({ jobs } = await json("/v1/index/jobs"));
  } catch (error) {
    status.textContent = `Could not list jobs: ${error.message}`;
    return;
  }
  jobs.sort((a, b) => b.created_at - a.created_at);
  status.textContent = jobs.length === 0 ? "No jobs yet." : "";
  replace(list, jobs.map(jobView));
  const active = jobs.filter((job) => job.state === "queued" || job.state === "running");
  for (const job of active) follow(job.id, job.last_event_id);
  if (visible && active.length > 0) pollTimer = setTimeout(loadJobs, POLL_MS);
}

function jobView(job) {
  const finished = job.items.filter((item) => !["queued", "running"].includes(item.state)).length;
  return el(
    "li",
    { class: `job state-${job.state}`, dataset: { job: job.id } },
    el(
      "div",
      { class: "job-head" },
      el("code", {}, job.id),
      " ",
      el("span", { class: `badge status-${job.state}` }, job.state),
      " ",
      el("span", { class: "muted" }, new Date(job.created_at * 1000).toLocaleString()),
    ),
    el("div", {}, el("progress", { max: job.items.length, value: finished }), ` ${finished}/${job.items.length} directories`),
    el("ul", { class: "job-items" }, job.items.map((item, i) => itemView(item, i))),
  );
}

function itemView(item, index) {
  const summary = item.summary
    ? `${item.summary.changed} changed, ${item.summary.chunks} chunks, ${formatMs(item.summary.timings?.total_ms)}`
    : "";
  return el(
    "li",
    { dataset: { item: index } },
    el("code", {}, item.path),
    item.name ? ` as ${item.name}` : "",
    ` (${item.kind}): `,
    el("span", { class: `badge status-${item.state}` }, item.state),
    " ",
    el("span", { class: "item-progress muted" }, item.error ?? summary),
  );
}

function progressText(progress) {
  switch (progress.type) {
    case "walked":
      return `walked: ${progress.files} files`;
    case "chunking":
      return `chunking ${progress.done}/${progress.total}`;
    case "keyword_committed":
      return `keyword index committed: ${progress.chunks} chunks`;
    case "embedding":
      return `embedding ${progress.done}/${progress.total}`;
    case "optimizing":
      return "optimizing the vector index";
    default:
      return progress.type;
  }
}

/** Follows a running job's events after `after` until it ends; its item lines show the progress. */
async function follow(id, after) {
  if (following.has(id)) return;
  const controller = new AbortController();
  following.set(id, controller);
  try {
    const response = await request(`/v1/index/jobs/${encodeURIComponent(id)}/events?after=${after ?? 0}`, {
      accept: "text/event-stream",
      signal: controller.signal,
    });
    if (response.status === 204 || !response.body) return;
    for await (const frame of readEvents(response)) {
      const event = JSON.parse(frame.data);
      const line = $(`li[data-job="${CSS.escape(id)}"] li[data-item="${event.item}"] .item-progress`);
      if (event.type === "progress" && line) line.textContent = progressText(event.progress);
      if (event.type === "item_finished" || event.type === "item_failed") loadJobs();
      if (event.type === "done") {
        loadJobs();
        loadCollections();
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") $("#jobs-status").textContent = `Lost the job's stream: ${error.message}`;
  } finally {
    following.delete(id);
  }
}

async function createJob(form) {
  const data = new FormData(form);
  const item = { path: String(data.get("path")).trim(), kind: data.get("kind") };
  const name = String(data.get("name") ?? "").trim();
  if (name) item.name = name;
  const status = $("#jobs-status");
  try {
    await request("/v1/index/jobs", { method: "POST", body: { items: [item], embed: data.get("embed") === "on" } });
    status.textContent = "Queued.";
    form.reset();
    await loadJobs();
  } catch (error) {
    status.textContent = `Could not start the job: ${error.message}`;
  }
}
