// Research sessions: start one, follow its events live with an EventSource (a stream token in
// the URL, since an EventSource cannot send the key), show its stages and activity, render the
// report. The session id is in the URL (`#research/ID`) and what the page has seen is kept in
// sessionStorage with the id of the last event, so a reload shows the same state and the stream
// resumes after that event.

import { json } from "./api.js";
import { $, checked, el, formatMs, replace } from "./dom.js";
import { clearReport, renderReport } from "./report.js";

const EVENT_TYPES = [
  "session_started", "resumed", "stage_started", "stage_completed", "stage_skipped", "planned",
  "search_started", "search_completed", "search_failed", "page_fetched", "page_failed",
  "evidence_selected", "synthesis_delta", "citations_removed", "llm_usage", "budget_exhausted",
  "warning", "report_ready", "cancelled", "failed", "done",
];
const FINAL = { done: "complete", failed: "failed", cancelled: "cancelled" };
const ENDED = new Set(["complete", "complete_with_errors", "failed", "cancelled"]);
const STORE = "aiex.session.";
const MAX_ACTIVITY = 400;
const MAX_RETRY_MS = 15000;

/** The session shown, and its stream. */
let current = null;
/** Called when a session shown here ends. */
let onSessionEnded = null;

export function initResearch({ onEnded }) {
  const form = $("#research-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    await start(form);
  });
  $("#session-cancel").addEventListener("click", async () => {
    if (!current) return;
    try {
      await json(`/v1/research/${encodeURIComponent(current.model.id)}`, { method: "DELETE" });
      setStatus(current, "Cancelling…");
    } catch (error) {
      setStatus(current, `Could not cancel: ${error.message}`);
    }
  });
  onSessionEnded = onEnded;
  // What a pending save holds is written before the page goes away.
  window.addEventListener("pagehide", () => {
    if (current?.saveTimer) save(current);
  });
}

async function start(form) {
  const data = new FormData(form);
  const body = { question: String(data.get("question") ?? "").trim() };
  const sources = checked(form, "source");
  if (sources.length > 0 && sources.length < 3) body.sources = sources;
  const collections = checked(form, "collection");
  if (collections.length > 0) body.collections = collections;
  if (data.get("depth")) body.depth = Number(data.get("depth"));
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const created = await json("/v1/research", { method: "POST", body });
    sessionStorage.removeItem(STORE + created.id);
    window.location.hash = `#research/${encodeURIComponent(created.id)}`;
  } catch (error) {
    $("#session").hidden = false;
    $("#session-status").textContent = `Could not start: ${error.message}`;
  } finally {
    button.disabled = false;
  }
}

function newModel(id) {
  return {
    id, lastId: 0, question: "", status: "running", error: null, stages: [], activity: [],
    draft: "", searches: 0, found: 0, pages: 0, passages: 0, hasReport: false,
  };
}

function load(id) {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORE + id));
    return stored && stored.id === id ? { ...newModel(id), ...stored } : null;
  } catch {
    return null;
  }
}

function save(follower) {
  clearTimeout(follower.saveTimer);
  follower.saveTimer = null;
  try {
    sessionStorage.setItem(STORE + follower.model.id, JSON.stringify(follower.model));
  } catch {
    // Storage full or refused: a reload replays the session from its start instead.
  }
}

function saveSoon(follower) {
  if (!follower.saveTimer) follower.saveTimer = setTimeout(() => save(follower), 200);
}

/** Shows session `id` (from the URL): what was seen before, then its stream from there. */
export async function showSession(id) {
  if (current?.model.id === id) return;
  stopFollowing();
  const stored = load(id);
  const follower = { model: stored ?? newModel(id), source: null, retries: 0, closed: false };
  current = follower;
  if (stored && stored.lastId > 0) follower.model.resumedAfter = stored.lastId;
  clearReport();
  $("#session-activity-box").open = true;
  renderAll(follower);
  let info;
  try {
    info = await json(`/v1/research/${encodeURIComponent(id)}`);
  } catch (error) {
    setStatus(follower, `Could not load session ${id}: ${error.message}`);
    return;
  }
  if (follower.closed) return;
  follower.model.question = info.question;
  $("#session-question").textContent = info.question;
  if (info.report) renderReport(info.report);
  if (ENDED.has(info.status) && follower.model.lastId >= info.last_event_id) {
    finish(follower, info.status);
    return;
  }
  if (info.status === "incomplete" || info.status === "running") follower.model.status = info.status;
  renderStatus(follower);
  connect(follower);
}

function stopFollowing() {
  if (!current) return;
  current.closed = true;
  current.source?.close();
  clearTimeout(current.retryTimer);
  if (current.saveTimer) save(current);
  current = null;
}

/** Opens the stream after the last event seen, with a fresh stream token. */
async function connect(follower) {
  if (follower.closed) return;
  const id = encodeURIComponent(follower.model.id);
  let token;
  try {
    token = await json(`/v1/research/${id}/stream-token`, { method: "POST" });
  } catch (error) {
    if (error.status === 404) setStatus(follower, `No such session: ${error.message}`);
    else retryLater(follower, error.message);
    return;
  }
  if (follower.closed) return;
  const source = new EventSource(`${token.events}&after=${follower.model.lastId}`);
  follower.source = source;
  for (const type of EVENT_TYPES) source.addEventListener(type, (event) => onEvent(follower, event));
  source.addEventListener("open", () => {
    follower.retries = 0;
    renderStatus(follower);
  });
  source.addEventListener("error", (event) => onError(follower, event));
}

function retryLater(follower, why) {
  if (follower.closed) return;
  const delay = Math.min(1000 * 2 ** follower.retries, MAX_RETRY_MS);
  follower.retries += 1;
  setStatus(follower, `Connection lost (${why}); retrying in ${Math.round(delay / 1000)} s…`);
  follower.retryTimer = setTimeout(() => connect(follower), delay);
}

/** A stream-level `error` event, or the connection failing. */
async function onError(follower, event) {
  if (follower.closed) return;
  if (event.data) {
    // The server's last word before it stops (`shutting_down`): the EventSource reconnects
    // after the event's id by itself.
    let data = {};
    try {
      data = JSON.parse(event.data);
    } catch {
      // Not JSON: say so plainly below.
    }
    setStatus(follower, `The stream stopped: ${data.message ?? data.code ?? event.data}; reconnecting…`);
    return;
  }
  if (follower.source?.readyState !== EventSource.CLOSED) return; // reconnecting by itself
  follower.source.close();
  // Closed for good: the session ended (204), or the token expired or was refused.
  try {
    const info = await json(`/v1/research/${encodeURIComponent(follower.model.id)}`);
    if (ENDED.has(info.status) && follower.model.lastId >= info.last_event_id) {
      if (info.report) renderReport(info.report);
      finish(follower, info.status);
      return;
    }
  } catch (error) {
    retryLater(follower, error.message);
    return;
  }
  retryLater(follower, "the stream closed");
}

function onEvent(follower, message) {
  if (follower.closed) return;
  const id = Number(message.lastEventId);
  if (id && id <= follower.model.lastId) return;
  const event = JSON.parse(message.data);
  if (follower.firstId === undefined) {
    follower.firstId = id;
    $("#session").dataset.firstEvent = id;
  }
  apply(follower, event);
  if (id) follower.model.lastId = id;
  if (event.type in FINAL) {
    follower.source?.close();
    finish(follower, event.type === "done" && event.status ? event.status : FINAL[event.type]);
  } else saveSoon(follower);
}

function stageOf(model, stage, round) {
  let entry = model.stages.find((s) => s.stage === stage && s.round === round);
  if (!entry) {
    entry = { stage, round, state: "running" };
    model.stages.push(entry);
  }
  return entry;
}

function note(follower, text, kind = "info") {
  const model = follower.model;
  model.activity.push({ text, kind });
  if (model.activity.length > MAX_ACTIVITY) model.activity.splice(0, model.activity.length - MAX_ACTIVITY);
  const list = $("#session-activity");
  list.appendChild(activityItem({ text, kind }));
  while (list.childElementCount > MAX_ACTIVITY) list.firstElementChild.remove();
  $("#session-activity-count").textContent = `(${model.activity.length})`;
}

/** Updates the model and the page for one research event. */
function apply(follower, event) {
  const model = follower.model;
  switch (event.type) {
    case "session_started":
      model.question = event.request?.question ?? model.question;
      $("#session-question").textContent = model.question;
      note(follower, "Session started");
      break;
    case "resumed":
      model.status = "running";
      note(follower, `Taken up again by the server (done before: ${event.completed.join(", ") || "nothing"})`);
      break;
    case "stage_started":
      stageOf(model, event.stage, event.round).state = "running";
      break;
    case "stage_completed":
      Object.assign(stageOf(model, event.stage, event.round), { state: "done", took_ms: event.took_ms });
      break;
    case "stage_skipped":
      Object.assign(stageOf(model, event.stage, event.round), { state: "skipped", reason: event.reason });
      note(follower, `Skipped ${event.stage}: ${event.reason}`);
      break;
    case "planned": {
      const subs = event.plan?.sub_questions ?? [];
      note(follower, `Plan: ${subs.length} sub-question${subs.length === 1 ? "" : "s"} (${event.plan?.planner ?? "planner"})`);
      subs.forEach((sub, i) => note(follower, `Sub-question ${i + 1}: ${sub.text}`));
      break;
    }
    case "search_started":
      note(follower, `Searching “${event.query}”`);
      break;
    case "search_completed":
      model.searches += 1;
      model.found += event.found?.length ?? 0;
      note(follower, `Found ${event.found?.length ?? 0} for “${event.query}” in ${formatMs(event.took_ms)}`);
      break;
    case "search_failed":
      note(follower, `Search “${event.query}” failed: ${event.error}`, "warn");
      break;
    case "page_fetched":
      model.pages += 1;
      note(follower, `Read ${event.page?.url ?? event.page?.title}`);
      break;
    case "page_failed":
      note(follower, `Could not read ${event.url}: ${event.error}`, "warn");
      break;
    case "evidence_selected":
      model.passages = event.passages?.length ?? 0;
      note(follower, `Selected ${model.passages} passages${event.gaps?.length ? `, ${event.gaps.length} gaps` : ""}`);
      break;
    case "synthesis_delta":
      model.draft += event.text;
      renderDraft(model);
      break;
    case "citations_removed":
      note(follower, `Removed ${event.removed.length} citations that named no evidence`, "warn");
      break;
    case "llm_usage":
      note(follower, `LLM (${event.stage}): ${event.usage?.input_tokens ?? 0} in, ${event.usage?.output_tokens ?? 0} out`);
      break;
    case "budget_exhausted":
      note(follower, `Budget reached: ${event.budget} during ${event.stage}`, "warn");
      break;
    case "warning":
      note(follower, event.message, "warn");
      break;
    case "report_ready":
      model.hasReport = true;
      renderReport(event.report);
      renderDraft(model);
      break;
    case "failed":
      model.error = event.error;
      note(follower, `Failed: ${event.error}`, "warn");
      break;
    case "cancelled":
      note(follower, "Cancelled");
      break;
    case "done":
      note(follower, `Done in ${formatMs(event.took_ms)}`);
      if (event.failures?.length) {
        note(follower, `${event.failures.length} searches failed: evidence may be missing`, "warn");
      }
      break;
    default:
      break;
  }
  renderStages(model);
  renderStatus(follower);
}

function finish(follower, status) {
  follower.model.status = status;
  for (const stage of follower.model.stages) if (stage.state === "running") stage.state = "stopped";
  save(follower);
  follower.closed = true;
  renderAll(follower);
  // The activity steps aside for the report.
  $("#session-activity-box").open = false;
  onSessionEnded?.();
}

function activityItem({ text, kind }) {
  return el("li", { class: kind }, text);
}

function renderAll(follower) {
  const model = follower.model;
  $("#session").hidden = false;
  $("#session").dataset.session = model.id;
  $("#session-question").textContent = model.question;
  replace($("#session-activity"), model.activity.map(activityItem));
  $("#session-activity-count").textContent = `(${model.activity.length})`;
  renderStages(model);
  renderDraft(model);
  renderStatus(follower);
}

function renderStages(model) {
  const rounds = model.stages.some((s) => s.round > 1);
  replace(
    $("#session-stages"),
    model.stages.map((s) =>
      el(
        "li",
        { class: `stage ${s.state}`, dataset: { stage: s.stage, state: s.state }, title: s.reason ?? null },
        rounds && s.round > 0 ? `${s.stage} ${s.round}` : s.stage,
        s.took_ms !== undefined ? el("span", { class: "took" }, formatMs(s.took_ms)) : null,
      ),
    ),
  );
}

function renderDraft(model) {
  const draft = $("#session-draft");
  draft.textContent = model.draft;
  draft.hidden = model.hasReport || !model.draft;
}

function renderStatus(follower) {
  const model = follower.model;
  const section = $("#session");
  section.dataset.status = model.status;
  if (model.resumedAfter) section.dataset.resumedAfter = model.resumedAfter;
  else delete section.dataset.resumedAfter;
  $("#session-cancel").hidden = model.status !== "running";
  const counts = `${model.searches} searches, ${model.found} texts found, ${model.pages} pages read, ${model.passages} passages`;
  const resumed = model.resumedAfter ? ` · resumed after event ${model.resumedAfter}` : "";
  const words = {
    running: `Running: ${counts}`,
    incomplete: `Stopped mid-way (the server takes it up again when it restarts): ${counts}`,
    complete: `Complete: ${counts}`,
    complete_with_errors: `Complete, but some searches failed (the report lists them): ${counts}`,
    failed: `Failed: ${model.error ?? "see the activity"}`,
    cancelled: "Cancelled",
  };
  $("#session-status").textContent = (words[model.status] ?? model.status) + resumed;
}

function setStatus(follower, text) {
  if (follower === current || !current) $("#session-status").textContent = text;
}

/** The recent sessions, newest first. */
export async function refreshSessions() {
  const list = $("#recent-sessions");
  try {
    const page = await json("/v1/sessions?limit=10");
    replace(
      list,
      page.sessions.length === 0 ? el("li", { class: "muted" }, "No sessions yet.") : null,
      page.sessions.map((s) =>
        el(
          "li",
          {},
          el("a", { href: `#research/${encodeURIComponent(s.id)}` }, s.question || s.id),
          " ",
          el("span", { class: `badge status-${s.status}` }, s.status),
          " ",
          el("span", { class: "muted" }, s.started_at),
        ),
      ),
    );
  } catch (error) {
    replace(list, el("li", { class: "muted" }, `Could not list sessions: ${error.message}`));
  }
}
