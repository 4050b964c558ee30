// The API client: JSON calls with the bearer key, a prompt for the key when the API answers 401,
// and server-sent events read from a fetch response (for streams that need a header or a POST).

import { $ } from "./dom.js";

const KEY_NAME = "aiex.apiKey";

/** The key kept for this tab, or for this browser when the user asked to remember it. */
export function storedKey() {
  return sessionStorage.getItem(KEY_NAME) ?? localStorage.getItem(KEY_NAME);
}

export function saveKey(key, remember) {
  sessionStorage.setItem(KEY_NAME, key);
  if (remember) localStorage.setItem(KEY_NAME, key);
  else localStorage.removeItem(KEY_NAME);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_NAME);
  localStorage.removeItem(KEY_NAME);
}

/** An error answer of the API: `{"error": {"code", "message"}}`, or what the status says. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: the status says enough.
  }
  const error = body?.error ?? {};
  return new ApiError(
    response.status,
    error.code ?? `http_${response.status}`,
    error.message ?? `the server answered ${response.status} ${response.statusText}`.trim(),
  );
}

let pendingPrompt = null;

/** Asks for a key (one dialog however many requests were refused); null when cancelled. */
export function askForKey(message) {
  if (!pendingPrompt) {
    pendingPrompt = promptForKey(message).finally(() => {
      pendingPrompt = null;
    });
  }
  return pendingPrompt;
}

function promptForKey(message) {
  const dialog = $("#key-dialog");
  const input = $("#key-input");
  $("#key-message").textContent = message;
  input.value = "";
  $("#key-remember").checked = localStorage.getItem(KEY_NAME) !== null;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        const key = input.value.trim();
        input.value = "";
        if (dialog.returnValue === "ok" && key) {
          saveKey(key, $("#key-remember").checked);
          resolve(key);
        } else resolve(null);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
}

/**
 * A request to the API. `body` is sent as JSON; on 401 the user is asked for a key and the
 * request is sent again with it; other error statuses throw an `ApiError`.
 */
export async function request(path, { method = "GET", body, accept, signal, headers = {} } = {}) {
  for (;;) {
    const sent = { ...headers };
    if (body !== undefined) sent["content-type"] = "application/json";
    if (accept) sent.accept = accept;
    const key = storedKey();
    if (key) sent.authorization = `Bearer ${key}`;
    const response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
    });
    if (response.status === 401) {
      const error = await errorOf(response);
      const prompt = key ? `The key was refused: ${error.message}` : "This server needs an API key.";
      if ((await askForKey(prompt)) === null) throw error;
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

/** A JSON request; null for a 204. */
export async function json(path, options) {
  const response = await request(path, options);
  return response.status === 204 ? null : response.json();
}

function parseFrame(frame) {
  let id = null;
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") id = value;
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { id, event, data: data.join("\n") } : null;
}

/** The events of a `text/event-stream` response, as `{id, event, data}`, until it ends. */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame) yield frame;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
