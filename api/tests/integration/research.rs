//! Research end to end on local sources only (a code fixture and real Rust book pages), with no
//! LLM and no network: every citation resolves to a passage that exists; `kill -9` mid-run and
//! `sessions resume` repeat no finished stage or search and give the same citations; budgets end
//! stages gracefully and say which.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::Value;

use crate::{aiex, json_lines, run_ok, stdout};

const BOOK: &str = "/usr/share/doc/rust-doc/html/book";
const PAGES: &[&str] = &[
    "ch03-01-variables-and-mutability.html",
    "ch15-01-box.html",
    "ch05-03-method-syntax.html",
];
const QUESTION: &str = "What is shadowing and how is it different from making a variable mutable?";

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    code: PathBuf,
}

/// One indexed data directory for every test here (indexing the pages takes seconds); the tests
/// take turns, since one vector store has one owner process at a time.
fn fixture() -> (MutexGuard<'static, ()>, &'static Fixture) {
    static LOCK: Mutex<()> = Mutex::new(());
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let fixture = FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let code = dir.path().join("code");
        let book = dir.path().join("book");
        aiex_tests::write_files(
            &code,
            &[
                (
                    "src/queue.rs",
                    "/// A first-in first-out queue of jobs.\npub struct JobQueue {\n    jobs: Vec<String>,\n}\n\nimpl JobQueue {\n    /// Adds a job at the back of the queue.\n    pub fn push(&mut self, job: String) {\n        self.jobs.push(job);\n    }\n\n    /// Takes the oldest job, if any.\n    pub fn pop(&mut self) -> Option<String> {\n        if self.jobs.is_empty() { None } else { Some(self.jobs.remove(0)) }\n    }\n}\n",
                ),
                (
                    "src/worker.rs",
                    "use crate::queue::JobQueue;\n\n/// Runs every job of the queue in order, shadowing the queue binding with a mutable one.\npub fn run_jobs(queue: JobQueue) -> usize {\n    let mut queue = queue;\n    let mut done = 0;\n    while let Some(_job) = queue.pop() {\n        done += 1;\n    }\n    done\n}\n",
                ),
            ],
        );
        std::fs::create_dir_all(&book).expect("book dir");
        for page in PAGES {
            std::fs::copy(Path::new(BOOK).join(page), book.join(page))
                .expect("rust-doc is installed (scripts/setup installs Debian's rust-doc)");
        }
        run_ok(aiex(&data).arg("index").arg(&code).args(["--name", "fixture"]));
        run_ok(aiex(&data).args(["docs", "add", "book"]).arg(&book));
        Fixture {
            _dir: dir,
            data,
            code,
        }
    });
    (guard, fixture)
}

/// Every `[n]` of the report's summary and sections.
fn citations(report: &Value) -> BTreeSet<u64> {
    let mut texts = vec![report["summary"].as_str().unwrap_or_default().to_string()];
    for section in report["sections"].as_array().expect("sections") {
        texts.push(section["body"].as_str().unwrap_or_default().to_string());
    }
    // What a reader takes for a citation: a bracketed number in prose, not in code (a fenced
    // block or a backtick span, where `list[5]` or `[5]` is code) and not indexing or a link.
    let mut out = BTreeSet::new();
    for text in texts {
        let mut in_fence = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                continue;
            }
            if in_fence {
                continue;
            }
            for (index, prose) in line.split('`').enumerate() {
                if index % 2 == 1 {
                    continue;
                }
                let mut rest = prose;
                let mut previous = None;
                while let Some(open) = rest.find('[') {
                    previous = rest[..open].chars().last().or(previous);
                    let after = &rest[open + 1..];
                    let Some(close) = after.find(']') else { break };
                    let indexing = previous
                        .is_some_and(|c: char| c.is_alphanumeric() || matches!(c, '_' | ')'));
                    let link = after[close + 1..].starts_with('(');
                    if let Ok(n) = after[..close].parse::<u64>() {
                        if !indexing && !link {
                            out.insert(n);
                        }
                    }
                    previous = Some(']');
                    rest = &after[close + 1..];
                }
            }
        }
    }
    out
}

/// Asserts that every citation resolves to a reference whose passage the session really found.
fn assert_grounded(report: &Value, events: &[Value], code_root: &Path) {
    let references = report["references"].as_array().expect("references");
    let cited = citations(report);
    assert!(!cited.is_empty(), "the report cites nothing: {report}");
    let numbers: HashSet<u64> = references
        .iter()
        .map(|r| r["n"].as_u64().expect("n"))
        .collect();
    for n in &cited {
        assert!(
            numbers.contains(n),
            "citation [{n}] resolves to no reference"
        );
    }
    // The texts the searches found (full chunks).
    let found: Vec<String> = events
        .iter()
        .filter(|event| event["type"] == "search_completed")
        .flat_map(|event| event["found"].as_array().cloned().unwrap_or_default())
        .filter_map(|found| found["text"].as_str().map(str::to_string))
        .collect();
    for reference in references {
        let excerpt = reference["excerpt"].as_str().expect("excerpt");
        assert!(
            found.iter().any(|text| text.contains(excerpt)),
            "reference {} is no passage of a found text",
            reference["n"]
        );
        assert!(reference["retrieved_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z')));
        let path = reference["path"]
            .as_str()
            .expect("local references have a path");
        assert!(
            !path.starts_with('/'),
            "paths are relative to the collection root: {path}"
        );
        if reference["source"] == "code" {
            let file = std::fs::read_to_string(code_root.join(path)).expect("cited file exists");
            let lines: Vec<&str> = file.lines().collect();
            let start = reference["start_line"].as_u64().expect("start") as usize;
            let end = reference["end_line"].as_u64().expect("end") as usize;
            assert!(start >= 1 && end <= lines.len() && start <= end);
            assert_eq!(lines[start - 1..end].join("\n").trim(), excerpt.trim());
        } else {
            assert!(PAGES.contains(&path), "{path}");
        }
    }
}

fn session_events(data: &Path, id: &str) -> Vec<Value> {
    json_lines(&stdout(&run_ok(
        aiex(data).args(["sessions", "show", id, "--events"]),
    )))
}

#[test]
fn research_cites_only_real_passages_and_replays() {
    let (_guard, fixture) = fixture();
    let out = fixture.data.join("report.json");
    let run = run_ok(
        aiex(&fixture.data)
            .args([
                "research",
                QUESTION,
                "--collections",
                "fixture,book",
                "--depth",
                "2",
            ])
            .args(["--format", "json", "--json", "--out"])
            .arg(&out),
    );
    let events = json_lines(&stdout(&run));
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "ids are 1, 2, 3, …"
    );
    assert_eq!(events[0]["type"], "session_started");
    assert_eq!(events.last().expect("events")["type"], "done");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    for key in [
        "references",
        "usage",
        "graph",
        "sections",
        "summary",
        "title",
    ] {
        assert!(report.get(key).is_some(), "report has `{key}`");
    }
    assert_eq!(report["usage"]["input_tokens"], 0);
    assert_eq!(report["synthesis"], "extractive");
    assert_grounded(&report, &events, &fixture.code);
    let pages: HashSet<&str> = report["references"]
        .as_array()
        .expect("refs")
        .iter()
        .filter_map(|r| r["path"].as_str())
        .collect();
    assert!(
        pages.contains("ch03-01-variables-and-mutability.html"),
        "{pages:?}"
    );
    assert!(report["graph"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .all(|edge| !edge["citations"].as_array().expect("citations").is_empty()));

    // The log replays the same events, and from any id.
    let id = events[0]["session"].as_str().expect("session id");
    let stored = session_events(&fixture.data, id);
    assert_eq!(stored, events);
    let after = json_lines(&stdout(&run_ok(
        aiex(&fixture.data).args(["sessions", "show", id, "--events", "--after", "5"]),
    )));
    assert_eq!(after.first().expect("events")["id"], 6);
    let list = stdout(&run_ok(aiex(&fixture.data).args(["sessions", "list"])));
    assert!(list.contains(id) && list.contains("complete"), "{list}");
    let markdown = stdout(&run_ok(aiex(&fixture.data).args(["sessions", "show", id])));
    assert!(
        markdown.contains("## References") && markdown.contains("```mermaid"),
        "{markdown}"
    );
}

/// A session of `QUESTION` killed (`kill -9`) after its first search completed: its id and the
/// events it wrote.
fn interrupted_session(data: &Path) -> (String, Vec<Value>) {
    let mut child = aiex(data)
        .args([
            "research",
            QUESTION,
            "--collections",
            "fixture,book",
            "--json",
            "-q",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut id = String::new();
    for line in reader.lines() {
        let event: Value = serde_json::from_str(&line.expect("line")).expect("event");
        if event["type"] == "session_started" {
            id = event["session"].as_str().expect("id").to_string();
        }
        if event["type"] == "search_completed" {
            child.kill().expect("kill -9");
            break;
        }
    }
    child.wait().expect("reap");
    assert!(!id.is_empty());
    let before = session_events(data, &id);
    assert!(
        before.iter().all(|e| e["type"] != "done"),
        "killed before the end"
    );
    (id, before)
}

#[cfg(unix)]
#[test]
fn an_interrupted_session_resumes_in_a_running_server() {
    let (_guard, fixture) = fixture();
    let (id, before) = interrupted_session(&fixture.data);
    let server = crate::delegate::Server::start(&fixture.data);
    let resumed =
        run_ok(aiex(&fixture.data).args(["-v", "sessions", "resume", &id, "--json", "-q"]));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(crate::delegate::sent_to_server(&stderr), "{stderr}");
    let events = json_lines(&stdout(&resumed));
    assert_eq!(events[0]["type"], "resumed", "{events:?}");
    let last_before = before.last().expect("events")["id"].as_u64().expect("id");
    assert_eq!(
        events[0]["id"].as_u64(),
        Some(last_before + 1),
        "ids continue"
    );
    assert!(events.iter().any(|e| e["type"] == "report_ready"));
    assert_eq!(events.last().expect("events")["type"], "done");

    // It has ended: resuming it again is refused, through the server as locally.
    let again = aiex(&fixture.data)
        .args(["sessions", "resume", &id])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(2));
    let message = String::from_utf8_lossy(&again.stderr);
    assert!(message.contains("already ended"), "{message}");
    let (exit, _) = server.stop();
    assert!(exit.success());
    let listed = stdout(&run_ok(aiex(&fixture.data).args(["sessions", "list"])));
    let line = listed
        .lines()
        .find(|line| line.starts_with(&id))
        .expect("listed");
    assert!(line.contains("complete"), "{line}");
}

#[test]
fn kill_during_search_then_resume_repeats_nothing() {
    let (_guard, fixture) = fixture();
    let (id, before) = interrupted_session(&fixture.data);
    let finished: HashSet<(u64, String)> = before
        .iter()
        .filter(|e| e["type"] == "search_completed")
        .map(|e| {
            (
                e["sub_question"].as_u64().expect("sub"),
                e["query"].as_str().expect("q").to_string(),
            )
        })
        .collect();
    assert!(!finished.is_empty());
    let listed = stdout(&run_ok(aiex(&fixture.data).args(["sessions", "list"])));
    assert!(
        listed.contains(&id) && listed.contains("incomplete"),
        "{listed}"
    );

    let resumed = json_lines(&stdout(&run_ok(
        aiex(&fixture.data).args(["sessions", "resume", &id, "--json", "-q"]),
    )));
    assert_eq!(resumed[0]["type"], "resumed");
    let last_before = before.last().expect("events")["id"].as_u64().expect("id");
    assert_eq!(
        resumed[0]["id"].as_u64(),
        Some(last_before + 1),
        "ids continue"
    );
    assert!(
        !resumed
            .iter()
            .any(|e| e["type"] == "stage_started" && e["stage"] == "plan"),
        "the plan is not made again"
    );
    let completed: HashSet<(String, u64)> = before
        .iter()
        .filter(|e| e["type"] == "stage_completed")
        .map(|e| {
            (
                e["stage"].as_str().expect("stage").to_string(),
                e["round"].as_u64().expect("round"),
            )
        })
        .collect();
    assert!(completed.contains(&("plan".to_string(), 0)));
    for event in resumed.iter().filter(|e| e["type"] == "stage_started") {
        let key = (
            event["stage"].as_str().expect("stage").to_string(),
            event["round"].as_u64().expect("round"),
        );
        assert!(!completed.contains(&key), "stage {key:?} ran twice");
    }
    for event in resumed.iter().filter(|e| e["type"] == "search_started") {
        let key = (
            event["sub_question"].as_u64().expect("sub"),
            event["query"].as_str().expect("q").to_string(),
        );
        assert!(!finished.contains(&key), "search {key:?} ran twice");
    }
    let report = resumed
        .iter()
        .find(|e| e["type"] == "report_ready")
        .map(|e| e["report"].clone())
        .expect("report after resume");
    let all = session_events(&fixture.data, &id);
    assert_grounded(&report, &all, &fixture.code);

    // An uninterrupted run of the same question cites the same passages.
    let fresh = json_lines(&stdout(&run_ok(aiex(&fixture.data).args([
        "research",
        QUESTION,
        "--collections",
        "fixture,book",
        "--json",
        "-q",
    ]))));
    let fresh_report = fresh
        .iter()
        .find(|e| e["type"] == "report_ready")
        .map(|e| e["report"].clone())
        .expect("report");
    let cited = |report: &Value| -> Vec<(String, String)> {
        report["references"]
            .as_array()
            .expect("refs")
            .iter()
            .map(|r| {
                (
                    r["path"].as_str().unwrap_or_default().to_string(),
                    r["excerpt"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(cited(&report), cited(&fresh_report));
    assert_eq!(citations(&report), citations(&fresh_report));
    // A complete session cannot be resumed.
    let again = aiex(&fixture.data)
        .args(["sessions", "resume", &id])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn budgets_end_stages_and_say_which() {
    let (_guard, fixture) = fixture();
    let run = run_ok(
        aiex(&fixture.data)
            .env("AIEX__RESEARCH__MAX_SEARCHES", "3")
            .env("AIEX__RESEARCH__MAX_SUB_QUESTIONS", "2")
            .env("AIEX__RESEARCH__EVIDENCE_TOKENS", "300")
            .args([
                "research",
                QUESTION,
                "--collections",
                "book",
                "--json",
                "-q",
                "--format",
                "json",
            ]),
    );
    let events = json_lines(&stdout(&run));
    let budgets: HashSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "budget_exhausted")
        .filter_map(|e| e["budget"].as_str())
        .collect();
    assert!(budgets.contains("searches"), "{budgets:?}");
    assert!(budgets.contains("sub_questions"), "{budgets:?}");
    assert!(budgets.contains("evidence_tokens"), "{budgets:?}");
    let searches = events
        .iter()
        .filter(|e| e["type"] == "search_started")
        .count();
    assert_eq!(searches, 3);
    let plan = events
        .iter()
        .find(|e| e["type"] == "planned")
        .expect("plan");
    assert_eq!(
        plan["plan"]["sub_questions"]
            .as_array()
            .expect("subs")
            .len(),
        2
    );
    let report = events
        .iter()
        .find(|e| e["type"] == "report_ready")
        .map(|e| e["report"].clone())
        .expect("a report despite the budgets");
    assert!(report["budgets_hit"].as_array().expect("budgets").len() >= 3);
    assert_eq!(events.last().expect("events")["type"], "done");
}

#[test]
fn templates_are_listed_and_used() {
    let (_guard, fixture) = fixture();
    let list = stdout(&run_ok(aiex(&fixture.data).args(["templates", "list"])));
    for name in [
        "library-comparison",
        "bug-investigation",
        "api-howto",
        "migration-guide",
        "architecture-overview",
    ] {
        assert!(list.contains(name), "{list}");
    }
    let report = stdout(&run_ok(aiex(&fixture.data).args([
        "research",
        "How can Box enable recursive types like a cons list?",
        "--template",
        "api-howto",
        "--collections",
        "book",
        "-q",
    ])));
    assert!(report.starts_with("# How to: Box"), "{report}");
    for heading in [
        "## Answer",
        "## Relevant APIs",
        "## Steps",
        "## Example",
        "## Pitfalls",
        "## References",
    ] {
        assert!(report.contains(heading), "{heading} missing: {report}");
    }
    let unknown = aiex(&fixture.data)
        .args(["research", "q", "--template", "nope"])
        .output()
        .expect("run");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown template"));
}

/// With a real (tiny) local model: synthesis streams, usage is counted, and whatever the model
/// cites, every citation left in the report names a passage. Protocol only, never facts.
#[test]
fn llm_synthesis_streams_and_its_citations_are_checked() {
    let server = aiex_tests::LlamaServer::start(&["-c", "4096"]);
    let (_guard, fixture) = fixture();
    let run = run_ok(
        aiex(&fixture.data)
            .env("AIEX__LLM__URL", &server.url)
            .env("AIEX__LLM__MODEL", "smollm2")
            .env("AIEX__LLM__MAX_RETRIES", "0")
            .env("AIEX__RESEARCH__EVIDENCE_TOKENS", "500")
            .env("AIEX__RESEARCH__MAX_TOKENS", "1500")
            .args([
                "research",
                "How can Box enable recursive types like a cons list?",
            ])
            .args([
                "--template",
                "api-howto",
                "--collections",
                "book",
                "--json",
                "-q",
            ]),
    );
    let events = json_lines(&stdout(&run));
    assert_eq!(events.last().expect("events")["type"], "done");
    assert!(events.iter().any(|e| e["type"] == "synthesis_delta"));
    let usage = events
        .iter()
        .find(|e| e["type"] == "llm_usage")
        .expect("llm usage event");
    assert_eq!(usage["usage"]["calls"], 1);
    assert!(usage["usage"]["output_tokens"].as_u64().expect("tokens") > 0);
    let report = events
        .iter()
        .find(|e| e["type"] == "report_ready")
        .map(|e| e["report"].clone())
        .expect("report");
    assert_eq!(report["synthesis"], "llm");
    assert!(report["usage"]["input_tokens"].as_u64().expect("input") > 0);
    let count = report["references"].as_array().expect("refs").len() as u64;
    for n in citations(&report) {
        assert!(
            n >= 1 && n <= count,
            "citation [{n}] survived with {count} passages: {}",
            report["sections"]
        );
    }
    let removed = events
        .iter()
        .find(|e| e["type"] == "citations_removed")
        .map(|e| e["removed"].clone())
        .unwrap_or_else(|| serde_json::json!([]));
    assert_eq!(removed, report["removed_citations"]);
}
