// The page: views chosen by the URL's fragment (`#search`, `#research`, `#research/ID`,
// `#collections`), the key button, and the collection filters shared by search and research.

import { hideAdmin, initAdmin, loadCollections, showAdmin } from "./admin.js";
import { askForKey, forgetKey, storedKey } from "./api.js";
import { $, $$, el, replace } from "./dom.js";
import { refreshSessions, initResearch, showSession } from "./research.js";
import { initSearch } from "./search.js";

const VIEWS = ["search", "research", "collections"];

function route() {
  const [name, ...rest] = window.location.hash.replace(/^#/, "").split("/");
  const view = VIEWS.includes(name) ? name : "search";
  for (const other of VIEWS) $(`#${other}-view`).hidden = other !== view;
  for (const tab of $$("#tabs a")) {
    if (tab.dataset.view === view) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (view === "research") {
    const id = decodeURIComponent(rest.join("/"));
    if (id) showSession(id);
    refreshSessions();
  }
  if (view === "collections") showAdmin();
  else hideAdmin();
}

/** Offers the collections as filters (none ticked: all of them). */
function fillCollectionFilters(collections) {
  for (const holder of $$(".collection-choices")) {
    const ticked = new Set($$("input[name=collection]:checked", holder).map((input) => input.value));
    replace(
      holder,
      collections.length === 0 ? el("span", { class: "muted" }, "none indexed yet") : null,
      collections.map((c) =>
        el(
          "label",
          { title: `${c.kind}: ${c.files} files, ${c.chunks} chunks` },
          el("input", { type: "checkbox", name: "collection", value: c.name, checked: ticked.has(c.name) }),
          ` ${c.name}`,
        ),
      ),
    );
  }
}

function renderKeyButton() {
  const button = $("#key-button");
  button.textContent = storedKey() ? "API key ✓" : "API key";
}

async function changeKey() {
  const had = storedKey();
  const key = await askForKey(had ? "Enter another key, or forget the one kept here." : "Enter the server's API key.");
  if (key === null && $("#key-dialog").returnValue === "forget") forgetKey();
  renderKeyButton();
  if (key) loadCollections();
}

function init() {
  initSearch();
  initResearch({ onEnded: refreshSessions });
  initAdmin({ collectionsChanged: fillCollectionFilters });
  $("#key-button").addEventListener("click", changeKey);
  window.addEventListener("hashchange", route);
  window.addEventListener("storage", renderKeyButton);
  route();
  loadCollections().then(renderKeyButton);
}

init();
