"""Drives the web page of a running `serve` in headless Chromium (Debian's `chromium` and
`chromium-driver`, through selenium), as a person would: load the page, give the API key it asks
for, search and see hits by source, start a research session, reload the page while it runs and
see it resume to the report and its knowledge graph, click a citation, reload once it ended, index REPO_DIR again as a
job from the page and see it listed with its progress and the new collection.
A screenshot of each state is written to OUT_DIR.

    python web_page.py BASE_URL API_KEY OUT_DIR REPO_DIR

Prints one JSON object with what it saw; exits non-zero (with the reason) when something fails.
"""

import json
import os
import shutil
import sys
import tempfile

# Selenium must not look for drivers or browsers on the network: it is given both.
os.environ["SE_OFFLINE"] = "true"

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def start_browser(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("AIEX_TEST_CHROMIUM") or shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = os.environ.get("AIEX_TEST_CHROMEDRIVER") or shutil.which("chromedriver")
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


class Page:
    def __init__(self, driver, out_dir):
        self.driver = driver
        self.out_dir = out_dir
        self.screenshots = []

    def wait(self, what, condition, seconds=60):
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(lambda d: condition())
        except TimeoutException:
            self.shot(f"failed-{what.replace(' ', '-')}")
            raise AssertionError(f"timed out waiting for {what}") from None

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name):
        path = os.path.join(self.out_dir, f"{name}.png")
        self.driver.save_screenshot(path)
        self.screenshots.append(path)
        return path


def give_key(page, key):
    page.wait("the key dialog", lambda: page.js("return document.querySelector('#key-dialog').open"))
    page.shot("1-key-prompt")
    page.find("#key-input").send_keys(key)
    page.find("#key-submit").click()
    page.wait("the dialog to close", lambda: not page.js("return document.querySelector('#key-dialog').open"))
    page.wait("the collections", lambda: page.all('#search-view input[name=collection][value="demo"]'))


def search(page, query):
    box = page.find("#search-query")
    box.clear()
    box.send_keys(query)
    page.find("#search-form button[type=submit]").click()
    page.wait("the search to end", lambda: page.find("#search-results").get_attribute("data-state") in ("done", "failed"))
    assert page.find("#search-results").get_attribute("data-state") == "done", page.find("#search-status").text
    code_hits = page.all('.source[data-source="code"] .hit')
    assert code_hits, "no code hits"
    places = [hit.find_element(By.CSS_SELECTOR, ".hit-place").text for hit in code_hits]
    assert any(place.startswith("src/table.rs:") for place in places), places
    marks = page.all('.source[data-source="code"] .hit mark')
    assert marks, "no highlighted match"
    fused = page.all(".fused .hit")
    assert fused, "no fused list"
    page.shot("2-search")
    return {"code_hits": len(code_hits), "fused_hits": len(fused), "places": places, "marks": [m.text for m in marks]}


def research(page, question):
    page.find('#tabs a[data-view="research"]').click()
    box = page.find("#research-question")
    box.send_keys(question)
    page.find("#research-form button[type=submit]").click()
    page.wait("the session in the URL", lambda: page.js("return location.hash").startswith("#research/"))
    session = page.js("return decodeURIComponent(location.hash.slice('#research/'.length))")
    # Mid-session: the plan is done and the searches run (the web source is slow on purpose).
    page.wait("a completed stage", lambda: page.all('#session-stages li[data-state="done"]'))
    page.wait("a search", lambda: "Searching" in page.find("#session-activity").get_attribute("textContent"))
    assert page.find("#session").get_attribute("data-status") == "running", "the session ended too soon to reload mid-way"
    page.shot("3-research-running")
    stages_before = [li.get_attribute("data-stage") for li in page.all("#session-stages li")]
    page.wait("the stored state", lambda: page.js(
        "return JSON.parse(sessionStorage.getItem('aiex.session.' + arguments[0]) || '{}').lastId || 0", session) > 0)
    page.driver.refresh()
    page.wait("the resumed session", lambda: page.all("#session[data-resumed-after]"))
    resumed_after = int(page.find("#session").get_attribute("data-resumed-after"))
    page.wait("the report", lambda: page.all("#report .report-title"), seconds=120)
    page.wait("the end", lambda: page.find("#session").get_attribute("data-status") == "complete", seconds=120)
    first_after_reload = int(page.find("#session").get_attribute("data-first-event") or 0)
    stages = {li.get_attribute("data-stage"): li.get_attribute("data-state") for li in page.all("#session-stages li")}
    nodes = page.all("#report svg.graph .node")
    edges = page.all("#report svg.graph .edge")
    assert nodes, "no graph drawn"
    page.shot("4-research-report")
    cites = page.all("#report a.cite")
    assert cites, "no citation links"
    target = cites[0].get_attribute("data-ref")
    page.js("arguments[0].scrollIntoView({block: 'center'})", cites[0])
    cites[0].click()
    page.wait("the reference to show", lambda: "flash" in page.find(f"#ref-{target}").get_attribute("class"))
    in_view = page.js(
        "const r = document.getElementById('ref-' + arguments[0]).getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight;", target)
    assert in_view, "the cited reference is not in view"
    assert page.js("return location.hash").startswith("#research/"), "a citation click changed the URL"
    page.js("document.querySelector('#report .report-graph').scrollIntoView()")
    page.shot("5-research-graph")
    # A reload after the end shows the same report, without a stream.
    page.driver.refresh()
    page.wait("the report again", lambda: page.all("#report .report-title") and page.all("#report svg.graph .node"))
    page.wait("the end again", lambda: page.find("#session").get_attribute("data-status") == "complete")
    return {
        "session": session,
        "stages_before_reload": stages_before,
        "resumed_after": resumed_after,
        "first_event_after_reload": first_after_reload,
        "stages": stages,
        "graph_nodes": len(nodes),
        "graph_edges": len(edges),
        "citations": len(cites),
        "status_line": page.find("#session-status").text,
    }


def collections(page, repo):
    page.find('#tabs a[data-view="collections"]').click()
    page.wait("the collections table", lambda: page.all('#collections-table tr[data-collection="demo"]'))
    page.wait("the jobs list", lambda: page.find("#jobs-status").text == "No jobs yet.")
    form = page.find("#job-form")
    form.find_element(By.NAME, "path").send_keys(repo)
    form.find_element(By.NAME, "name").send_keys("again")
    form.find_element(By.NAME, "embed").click()
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    page.wait("the job to succeed", lambda: page.all("#jobs li.job.state-succeeded"), seconds=120)
    page.wait("the new collection", lambda: page.all('#collections-table tr[data-collection="again"]'))
    job = page.find("#jobs li.job")
    progress = job.find_element(By.CSS_SELECTOR, "progress")
    page.shot("6-collections")
    return {
        "collections": [row.get_attribute("data-collection") for row in page.all("#collections-table tr[data-collection]")],
        "job": job.get_attribute("data-job"),
        "job_progress": [progress.get_attribute("value"), progress.get_attribute("max")],
        "job_text": job.text,
    }


RENDERER_CHECK = """
const done = arguments[arguments.length - 1];
const base = document.querySelector('script[type=module]').src.replace(/app[.]js$/, '');
import(base + 'markdown.js').then(({ markdown }) => {
  const text = [
    '# Title', '', 'Some *em*, **bold** and `co*de*` [1] [9] [2, 1].', '',
    '- a', '- b', '  - nested', '', '- c', '', '1. one', '2. two', '',
    '```rust', 'fn main() { let x = "<b>"; }', '```', '', '> quoted', '',
    '<img src=x onerror="window.pwned=1"> [bad](javascript:window.pwned=1) [ok](https://example.org/x)',
    '', '| a | b |', '|---|---|', '| 1 | 2 |',
  ].join('\\n');
  const cite = (n) => n === 9 ? null : Object.assign(document.createElement('a'), { className: 'cite', textContent: `[${n}]` });
  const box = document.createElement('div');
  box.append(...markdown(text, { cite }));
  const all = (css) => [...box.querySelectorAll(css)];
  done({
    h1: all('h1').map((e) => e.textContent),
    em: all('p em').map((e) => e.textContent),
    strong: all('p strong').map((e) => e.textContent),
    code: all('p code').map((e) => e.textContent),
    cites: all('a.cite').map((e) => e.textContent),
    top_items: all(':scope > ul > li').length,
    nested: all('ul ul li').map((e) => e.textContent),
    ordered: all('ol > li').map((e) => e.textContent),
    fence: all('pre > code.language-rust').map((e) => e.textContent),
    quote: all('blockquote').map((e) => e.textContent.trim()),
    links: all('a[href]').map((e) => e.getAttribute('href')),
    images: all('img').length,
    cells: all('td').map((e) => e.textContent),
    text: box.textContent,
  });
}).catch((error) => done({ error: String(error) }));
"""


GRAPH_CHECK = """
const done = arguments[arguments.length - 1];
const base = document.querySelector('script[type=module]').src.replace(/app[.]js$/, '');
import(base + 'graph.js').then(({ drawGraph }) => {
  const nodes = [];
  const edges = [];
  for (let f = 0; f < 6; f += 1) {
    nodes.push({ id: `file:${f}`, label: `src/file_${f}.rs`, kind: 'file' });
    for (let s = 0; s < 4; s += 1) {
      nodes.push({ id: `sym:${f}:${s}`, label: `function item_${f}_${s}`, kind: 'symbol' });
      edges.push({ from: `file:${f}`, to: `sym:${f}:${s}`, relation: 'contains', citations: [f + 1] });
    }
    if (f > 0) edges.push({ from: `sym:${f}:0`, to: `sym:${f - 1}:1`, relation: 'mentions', citations: [f] });
  }
  nodes.push({ id: 'concept:toml', label: 'toml', kind: 'concept' });
  edges.push({ from: 'sym:0:0', to: 'concept:toml', relation: 'discusses', citations: [1] });
  edges.push({ from: 'sym:0:0', to: 'nowhere', relation: 'mentions', citations: [1] });
  const box = drawGraph({ nodes, edges });
  document.body.appendChild(box);
  const svg = box.querySelector('svg.graph');
  const [, , width, height] = svg.getAttribute('viewBox').split(' ').map(Number);
  const points = [...svg.querySelectorAll('.node')].map((g) => g.getAttribute('transform').match(/[-\\d.]+/g).map(Number));
  let closest = Infinity;
  for (let a = 0; a < points.length; a += 1) {
    for (let b = a + 1; b < points.length; b += 1) {
      closest = Math.min(closest, Math.hypot(points[a][0] - points[b][0], points[a][1] - points[b][1]));
    }
  }
  const inside = points.every(([x, y]) => x >= 0 && x <= width && y >= 0 && y <= height);
  const result = { nodes: points.length, edges: svg.querySelectorAll('.edge').length, closest, inside, width, height };
  box.remove();
  done(result);
}).catch((error) => done({ error: String(error) }));
"""


def graph_layout(page):
    """The graph's layout in this browser: every node drawn inside the picture, none on another."""
    seen = page.driver.execute_async_script(GRAPH_CHECK)
    assert "error" not in seen, seen
    assert seen["nodes"] == 31 and seen["edges"] == 30, seen
    assert seen["inside"], seen
    assert seen["closest"] > 20, seen
    return seen


def renderer(page):
    """The Markdown renderer in this browser: structure right, nothing in the text becomes markup."""
    seen = page.driver.execute_async_script(RENDERER_CHECK)
    assert "error" not in seen, seen
    expected = {
        "h1": ["Title"], "em": ["em"], "strong": ["bold"], "code": ["co*de*"],
        "cites": ["[1]", "[2]", "[1]"], "top_items": 3, "nested": ["nested"], "ordered": ["one", "two"],
        "fence": ['fn main() { let x = "<b>"; }'], "quote": ["quoted"], "links": ["https://example.org/x"],
        "images": 0, "cells": ["1", "2"],
    }
    for name, value in expected.items():
        assert seen[name] == value, (name, seen[name], value)
    assert "[9]" in seen["text"] and "<img src=x" in seen["text"], seen["text"]
    assert not page.js("return window.pwned"), "markup in the text ran"
    return {name: seen[name] for name in expected}


def problems(driver):
    """Console messages that mean the page is broken (401s before the key was given are expected)."""
    bad = []
    for entry in driver.get_log("browser"):
        message = entry.get("message", "")
        expected = " 401 " in message or "(Unauthorized)" in message
        if entry.get("level") == "SEVERE" and not expected:
            bad.append(message)
        elif "Content Security Policy" in message or "Uncaught" in message:
            bad.append(message)
    return bad


def main():
    base, key, out_dir, repo = sys.argv[1:5]
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="aiex-chromium-")
    driver = start_browser(profile)
    page = Page(driver, out_dir)
    summary = {}
    try:
        driver.get(base + "/")
        assert driver.title == "Aiex", driver.title
        give_key(page, key)
        summary["renderer"] = renderer(page)
        summary["graph_layout"] = graph_layout(page)
        summary["search"] = search(page, "parse toml table")
        summary["research"] = research(page, "How are TOML table headers parsed?")
        summary["collections"] = collections(page, repo)
        summary["console_problems"] = problems(driver)
        assert not summary["console_problems"], summary["console_problems"]
    except Exception as error:  # noqa: BLE001 - reported with what was seen so far
        summary["error"] = f"{type(error).__name__}: {error}"
        try:
            summary["console"] = [entry.get("message") for entry in driver.get_log("browser")]
        except Exception:  # noqa: BLE001
            pass
    finally:
        summary["screenshots"] = page.screenshots
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps(summary))
    sys.exit(1 if "error" in summary else 0)


if __name__ == "__main__":
    main()
