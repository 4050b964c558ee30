//! The in-process session API (what the HTTP API builds on): start, live events, replay after an
//! id, cancel and resume, list and status, over a coordinator with an in-memory source.

mod stored_log;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_research::search::source::BoxFuture;
use aiex_research::search::{
    Coordinator, CoordinatorOptions, Hit, Source, SourceError, SourceQuery, SourceResults,
};
use aiex_research::{EventKind, ResearchEngine, ResearchRequest, SessionStatus};

/// A source that answers every query with three pages about it, after a delay.
struct Pages {
    delay: Duration,
    calls: AtomicUsize,
}

impl Source for Pages {
    fn name(&self) -> &str {
        "web:test"
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let hits = (0..3)
                .map(|n| {
                    Hit::web(
                        "web:test",
                        &format!("https://docs.example/{}/{n}", query.query.len()),
                        &format!("Page {n} on {}", query.query),
                        &format!(
                            "A thread pool runs tasks on worker threads. Page {n} explains {} with a work-stealing scheduler and sizing advice for the number of worker threads.",
                            query.query
                        ),
                        1.0 / (n + 1) as f32,
                    )
                })
                .collect::<Vec<_>>();
            Ok(hits.into())
        })
    }
}

fn engine(dir: &std::path::Path, delay: Duration) -> (Arc<ResearchEngine>, Arc<Pages>) {
    let config = aiex_config::Config {
        data_dir: dir.to_path_buf(),
        ..aiex_config::Config::default()
    };
    let pages = Arc::new(Pages {
        delay,
        calls: AtomicUsize::new(0),
    });
    let source: Arc<dyn Source> = pages.clone();
    let coordinator = Arc::new(Coordinator::new(
        vec![source],
        CoordinatorOptions::default(),
    ));
    (
        Arc::new(ResearchEngine::with_coordinator(&config, coordinator)),
        pages,
    )
}

fn request() -> ResearchRequest {
    ResearchRequest {
        question: "How does tokio schedule tasks, and how should I size its thread pool?".into(),
        collections: vec![],
        depth: 1,
        template: None,
        sources: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_replay_and_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, _) = engine(dir.path(), Duration::from_millis(1));
    let mut handle = engine.start(request()).expect("start");
    let id = handle.id.clone();
    let mut live = Vec::new();
    while let Ok(event) = handle.events.recv().await {
        live.push(event);
    }
    let report = handle.wait().await.expect("run").expect("report");
    assert!(!report.references.is_empty());
    let ids: Vec<u64> = live.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=live.len() as u64).collect::<Vec<_>>());
    assert!(matches!(
        live.last().map(|e| &e.kind),
        Some(EventKind::Done { .. })
    ));

    let store = engine.store();
    assert_eq!(store.events_after(&id, 0).expect("replay"), live);
    let tail = store.events_after(&id, 4).expect("replay");
    assert_eq!(tail.first().map(|e| e.id), Some(5));
    assert_eq!(
        store.summary(&id).expect("summary").status,
        SessionStatus::Complete
    );
    assert_eq!(store.report(&id).expect("report").as_ref(), Some(&report));
    let (page, total) = store.list(0, 10).expect("list");
    assert_eq!((page.len(), total), (1, 1));
    // The JSON form of an event: `id` and a `type` tag at the top level.
    let json = serde_json::to_value(&live[0]).expect("json");
    assert_eq!(json["id"], 1);
    assert_eq!(json["type"], "session_started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_then_resume_runs_only_what_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (engine, pages) = engine(dir.path(), Duration::from_millis(150));
    let mut handle = engine.start(request()).expect("start");
    let id = handle.id.clone();
    // Cancel once the first search finished.
    while let Ok(event) = handle.events.recv().await {
        if matches!(event.kind, EventKind::SearchCompleted { .. }) {
            handle.cancel();
        }
    }
    assert!(
        handle.wait().await.expect("run").is_none(),
        "cancelled: no report"
    );
    let state = engine.store().state(&id).expect("state");
    assert_eq!(state.status(), SessionStatus::Cancelled);
    let done_before = state.searches.len();
    assert!(done_before >= 1);
    let calls_before = pages.calls.load(Ordering::SeqCst);

    let handle = engine.resume(&id).expect("resume");
    let report = handle.wait().await.expect("run").expect("report");
    assert!(!report.references.is_empty());
    let state = engine.store().state(&id).expect("state");
    assert_eq!(state.status(), SessionStatus::Complete);
    let planned = state.plan.as_ref().expect("plan");
    let total_queries: usize = planned.sub_questions.iter().map(|s| s.queries.len()).sum();
    assert_eq!(state.searches.len(), total_queries);
    // Each query reached the source once over both runs (the cache is per engine, so count calls).
    let calls_after = pages.calls.load(Ordering::SeqCst);
    assert_eq!(calls_after - calls_before, total_queries - done_before);
    assert!(matches!(
        engine.resume(&id),
        Err(aiex_research::Error::SessionComplete { .. })
    ));
}

/// Reads any page: its text names the URL.
struct FakeReader;

impl aiex_research::PageReader for FakeReader {
    fn read<'a>(
        &'a self,
        url: &'a str,
    ) -> aiex_research::BoxFuture<'a, Result<aiex_research::PageText, String>> {
        Box::pin(async move {
            Ok(aiex_research::PageText {
                url: url.to_string(),
                title: format!("Read {url}"),
                text: format!(
                    "The tokio scheduler steals tasks between worker threads; size the thread pool to the number of cores. Source {url}."
                ),
            })
        })
    }
}

/// An "LLM" that writes a fixed answer with valid, out-of-range and malformed citations.
struct ScriptedLlm;

impl aiex_research::synth::Synthesizer for ScriptedLlm {
    fn name(&self) -> &str {
        "llm"
    }

    fn kind(&self) -> aiex_research::synth::SynthesizerKind {
        aiex_research::synth::SynthesizerKind::Llm
    }

    fn synthesize<'a>(
        &'a self,
        plan: &'a aiex_research::plan::Plan,
        _passages: &'a [aiex_research::evidence::Passage],
        _failures: &'a [aiex_research::SearchFailure],
        _max_output_tokens: u32,
        deltas: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> aiex_research::BoxFuture<'a, aiex_research::Result<aiex_research::synth::Draft>> {
        Box::pin(async move {
            let _ = deltas.send("Work stealing [1] ".to_string());
            Ok(aiex_research::synth::Draft {
                summary: "Work stealing [1] and invented facts [999] [source 2].".to_string(),
                sections: plan
                    .sub_questions
                    .iter()
                    .map(|_| "Pools [2, 77] and [0].".to_string())
                    .collect(),
                usage: aiex_research::usage::Usage {
                    input_tokens: 100,
                    output_tokens: 50,
                    cost_usd: 0.01,
                    calls: 1,
                },
            })
        })
    }
}

fn config_with(
    dir: &std::path::Path,
    edit: impl FnOnce(&mut aiex_config::Config),
) -> aiex_config::Config {
    let mut config = aiex_config::Config {
        data_dir: dir.to_path_buf(),
        ..aiex_config::Config::default()
    };
    edit(&mut config);
    config
}

fn engine_over(config: &aiex_config::Config) -> ResearchEngine {
    let source: Arc<dyn Source> = Arc::new(Pages {
        delay: Duration::from_millis(1),
        calls: AtomicUsize::new(0),
    });
    let coordinator = Arc::new(Coordinator::new(
        vec![source],
        CoordinatorOptions::default(),
    ));
    ResearchEngine::with_coordinator(config, coordinator)
}

async fn run_to_end(
    engine: Arc<ResearchEngine>,
) -> (Vec<aiex_research::ResearchEvent>, aiex_research::Report) {
    let mut handle = engine.start(request()).expect("start");
    let mut events = Vec::new();
    while let Ok(event) = handle.events.recv().await {
        events.push(event);
    }
    let report = handle.wait().await.expect("run").expect("report");
    (events, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_read_within_their_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with(dir.path(), |c| c.research.max_pages = 2);
    let engine = Arc::new(engine_over(&config).with_page_reader(Arc::new(FakeReader)));
    let (events, report) = run_to_end(engine).await;
    let read = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::PageFetched { .. }))
        .count();
    assert_eq!(read, 2);
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::BudgetExhausted {
            budget: aiex_research::Budget::Pages,
            ..
        }
    )));
    assert!(report.budgets_hit.iter().any(|b| b.budget == "pages"));
    assert!(
        report.references.iter().any(|r| r.locator.source == "page"),
        "read pages are evidence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_citations_to_nothing_are_removed_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with(dir.path(), |_| {});
    let engine = Arc::new(engine_over(&config).with_synthesizer(Arc::new(ScriptedLlm)));
    let (events, report) = run_to_end(engine).await;
    assert_eq!(report.synthesis, "llm");
    assert_eq!(report.summary, "Work stealing [1] and invented facts.");
    assert!(report
        .sections
        .iter()
        .all(|s| s.body == "Pools [2] and." && s.citations == vec![2]));
    let removed: Vec<&str> = report
        .removed_citations
        .iter()
        .map(|r| r.raw.as_str())
        .collect();
    assert!(removed.contains(&"999") && removed.contains(&"[source 2]") && removed.contains(&"77"));
    assert!(events.iter().any(|e| matches!(&e.kind, EventKind::CitationsRemoved { removed } if removed.len() == report.removed_citations.len())));
    assert!(events.iter().any(
        |e| matches!(&e.kind, EventKind::SynthesisDelta { text } if text.contains("Work stealing"))
    ));
    assert_eq!(report.usage.input_tokens, 100);
    assert_eq!(report.usage.output_tokens, 50);
    assert!(report.references.len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budget_falls_back_to_extractive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_with(dir.path(), |c| c.research.max_tokens = 100);
    let engine = Arc::new(engine_over(&config).with_synthesizer(Arc::new(ScriptedLlm)));
    let (events, report) = run_to_end(engine).await;
    assert_eq!(report.synthesis, "extractive");
    assert!(events.iter().any(|e| matches!(
        e.kind,
        EventKind::BudgetExhausted {
            budget: aiex_research::Budget::Tokens,
            ..
        }
    )));
    assert_eq!(report.usage.total_tokens(), 0);
    assert!(report.removed_citations.is_empty());
}
