//! Searches that fail: a local source that misses its deadline is asked once more with the whole
//! search budget; what still fails is named in the report, the `done` event and the session's
//! status (`complete_with_errors`), never reported as "no evidence was found".

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aiex_search::source::BoxFuture as SourceFuture;
use aiex_search::{Coordinator, CoordinatorOptions, Hit, SourceError, SourceQuery, SourceResults};

use super::tests::{config, request, run_to_end, FakePlanner};
use super::*;
use crate::event::{Completion, EventKind, SearchFailure};
use crate::session::SessionStatus;

#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// Never answers the first time a query is asked, answers every later time at once.
    HangFirst,
    /// Never answers.
    Hang,
    /// Fails at once.
    Refuse,
    /// Answers at once, with nothing.
    Empty,
}

/// A source named `name` that behaves as told and counts its calls.
struct Scripted {
    name: &'static str,
    behaviour: Behaviour,
    calls: AtomicUsize,
    asked: Mutex<HashSet<String>>,
}

impl Scripted {
    fn new(name: &'static str, behaviour: Behaviour) -> Arc<Self> {
        Arc::new(Scripted {
            name,
            behaviour,
            calls: AtomicUsize::new(0),
            asked: Mutex::new(HashSet::new()),
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Source for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> SourceFuture<'a, std::result::Result<SourceResults, SourceError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let first = self
            .asked
            .lock()
            .map(|mut asked| asked.insert(query.query.clone()))
            .unwrap_or(false);
        Box::pin(async move {
            match self.behaviour {
                Behaviour::Hang => std::future::pending::<()>().await,
                Behaviour::HangFirst if first => std::future::pending::<()>().await,
                Behaviour::Refuse => {
                    return Err(SourceError::Failed("connection refused".to_string()))
                }
                Behaviour::Empty => return Ok(Vec::new().into()),
                Behaviour::HangFirst => {}
            }
            let slug = query.query.replace(' ', "-");
            let hit = Hit::web(
                self.name,
                &format!("https://{}.example/{slug}", self.name.replace(':', "-")),
                &format!("Notes on {}", query.query),
                &format!(
                    "The {} steals tasks between worker threads; size the pool to the number of cores.",
                    query.query
                ),
                1.0,
            );
            Ok(vec![hit].into())
        })
    }
}

/// An engine over `sources`, local ones with a 20 ms deadline, within `budget`.
fn engine(
    dir: &std::path::Path,
    sources: Vec<Arc<Scripted>>,
    budget: Duration,
) -> Arc<ResearchEngine> {
    let config = config(dir, |_| {});
    let sources: Vec<Arc<dyn Source>> = sources
        .into_iter()
        .map(|source| source as Arc<dyn Source>)
        .collect();
    let short = Duration::from_millis(20);
    let coordinator = Arc::new(Coordinator::new(
        sources,
        CoordinatorOptions {
            budget,
            default_deadline: budget,
            deadlines: [("code".to_string(), short), ("docs".to_string(), short)].into(),
            ..CoordinatorOptions::default()
        },
    ));
    Arc::new(
        ResearchEngine::with_coordinator(&config, coordinator)
            .with_planner(Arc::new(FakePlanner::new(2))),
    )
}

/// The `done` event's status and failures.
fn done(events: &[ResearchEvent]) -> (Completion, Vec<SearchFailure>) {
    events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Done {
                status, failures, ..
            } => Some((*status, failures.clone())),
            _ => None,
        })
        .expect("done")
}

/// Everything the synthesis streamed.
fn streamed(events: &[ResearchEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::SynthesisDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_search_that_misses_its_deadline_is_asked_again_with_the_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = Scripted::new("code", Behaviour::HangFirst);
    let engine = engine(dir.path(), vec![code.clone()], Duration::from_secs(30));
    let handle = engine.start(request()).expect("start");
    let id = handle.id.clone();
    let (events, report) = run_to_end(handle).await;
    let report = report.expect("report");
    // Two sub-questions, two queries each: every query asked twice, answered the second time.
    assert_eq!(code.calls(), 8);
    assert_eq!(report.references.len(), 4, "{}", report.to_markdown());
    assert!(report.failed_searches.is_empty());
    let retried = events
        .iter()
        .filter(|event| {
            matches!(&event.kind, EventKind::SearchCompleted { notes, failures, .. }
                if failures.is_empty()
                    && notes.iter().any(|note| note.contains("asked again with a 30000 ms deadline")))
        })
        .count();
    assert_eq!(retried, 4);
    assert_eq!(done(&events), (Completion::Complete, Vec::new()));
    let state = engine.store().state(&id).expect("state");
    assert_eq!(state.status(), SessionStatus::Complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_searches_are_named_in_the_report_the_done_event_and_the_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = Scripted::new("code", Behaviour::Hang);
    let web = Scripted::new("web:down", Behaviour::Refuse);
    let engine = engine(
        dir.path(),
        vec![code.clone(), web.clone()],
        Duration::from_millis(300),
    );
    let handle = engine.start(request()).expect("start");
    let id = handle.id.clone();
    let (events, report) = run_to_end(handle).await;
    let report = report.expect("report");
    // The local source is asked twice per query, never more; the web source once.
    assert_eq!(code.calls(), 8);
    assert_eq!(web.calls(), 4);
    assert!(report.references.is_empty());
    assert_eq!(
        report.failed_searches.len(),
        8,
        "{:?}",
        report.failed_searches
    );
    let sources: HashSet<(Option<&str>, &str)> = report
        .failed_searches
        .iter()
        .map(|failure| (failure.source.as_deref(), failure.error.as_str()))
        .collect();
    assert!(sources.contains(&(Some("web:down"), "connection refused")));
    assert!(sources
        .iter()
        .any(|(source, error)| *source == Some("code") && error.contains("300 ms exceeded")));

    let markdown = report.to_markdown();
    assert!(!markdown.contains("No evidence was found"), "{markdown}");
    assert!(!streamed(&events).contains("No evidence was found"));
    assert!(markdown.contains("## Searches that failed\n\n8 searches failed"));
    assert!(markdown.contains("- \"scheduler 0\" (Part 0): `web:down`: connection refused"));
    assert!(report
        .summary
        .starts_with("No evidence could be gathered: 8 searches failed"));
    assert!(report.sections[1]
        .body
        .contains("because its searches failed"));

    let (status, failures) = done(&events);
    assert_eq!(status, Completion::CompleteWithErrors);
    assert_eq!(failures, report.failed_searches);
    let state = engine.store().state(&id).expect("state");
    assert_eq!(state.status(), SessionStatus::CompleteWithErrors);
    let json = serde_json::to_value(engine.store().summary(&id).expect("summary")).expect("json");
    assert_eq!(json["status"], "complete_with_errors");
    assert!(
        matches!(engine.resume(&id), Err(Error::SessionComplete { .. })),
        "an ended session is not resumed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_evidence_is_said_only_when_every_search_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let code = Scripted::new("code", Behaviour::Empty);
    let engine = engine(dir.path(), vec![code.clone()], Duration::from_secs(30));
    let (events, report) = run_to_end(engine.start(request()).expect("start")).await;
    let report = report.expect("report");
    assert_eq!(code.calls(), 4, "an empty answer is not retried");
    assert_eq!(
        report.summary,
        "No evidence was found in the searched sources."
    );
    assert!(!report.to_markdown().contains("Searches that failed"));
    assert_eq!(done(&events), (Completion::Complete, Vec::new()));
}
