//! `Run` driven through fake planner, synthesizer, page reader and source: the event sequence,
//! budgets, failed page reads, LLM fallbacks and cancel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aiex_search::source::BoxFuture as SourceFuture;
use aiex_search::{Coordinator, CoordinatorOptions, Hit, SourceError, SourceQuery, SourceResults};
use tokio::sync::{mpsc, Notify};

use super::*;
use crate::event::{Budget, EventKind, Stage};
use crate::evidence::Passage;
use crate::plan::{Plan, QuestionType, SubQuestion};
use crate::session::SessionStatus;
use crate::synth::{Draft, SynthesizerKind};
use crate::template::Template;
use crate::usage::Usage;

/// Answers each query with two web pages about it: `…/broken/…` first, then `…/ok/…`.
struct WebPages;

impl Source for WebPages {
    fn name(&self) -> &str {
        "web:test"
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> SourceFuture<'a, std::result::Result<SourceResults, SourceError>> {
        Box::pin(async move {
            let slug = query.query.replace(' ', "-");
            let texts = [
                format!("A mirror of notes on {}: queues, wakers and parking explained at length.", query.query),
                format!("The scheduler of {} steals tasks between worker threads; size the pool to the number of cores.", query.query),
            ];
            let hits = ["broken", "ok"]
                .iter()
                .zip(&texts)
                .enumerate()
                .map(|(n, (kind, text))| {
                    Hit::web(
                        "web:test",
                        &format!("https://pages.example/{kind}/{slug}"),
                        &format!("{kind} page on {}", query.query),
                        text,
                        1.0 / (n + 1) as f32,
                    )
                })
                .collect::<Vec<_>>();
            Ok(hits.into())
        })
    }
}

/// A plan of `sub_questions` sub-questions with two queries each, at a given LLM usage; waits for
/// `gate` first when set.
pub(super) struct FakePlanner {
    sub_questions: usize,
    usage: Usage,
    gate: Option<Arc<Notify>>,
}

impl FakePlanner {
    pub(super) fn new(sub_questions: usize) -> Self {
        FakePlanner {
            sub_questions,
            usage: Usage::default(),
            gate: None,
        }
    }
}

impl Planner for FakePlanner {
    fn name(&self) -> &str {
        "fake"
    }

    fn plan<'a>(
        &'a self,
        question: &'a str,
        _template: Option<&'static Template>,
        max_sub_questions: usize,
    ) -> BoxFuture<'a, Result<(Plan, Usage)>> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            let sub_questions = (0..self.sub_questions.min(max_sub_questions))
                .map(|index| SubQuestion {
                    index,
                    text: format!("How does the scheduler {index} work?"),
                    heading: format!("Part {index}"),
                    queries: vec![
                        format!("scheduler {index}"),
                        format!("worker threads {index}"),
                    ],
                })
                .collect();
            let plan = Plan {
                question: question.to_string(),
                title: "Schedulers".to_string(),
                question_type: QuestionType::Explanation,
                key_phrases: vec!["scheduler".to_string()],
                entities: Vec::new(),
                sub_questions,
                template: None,
                summary_heading: "Summary".to_string(),
                planner: "fake".to_string(),
            };
            Ok((plan, self.usage))
        })
    }
}

/// An LLM-kind synthesizer that streams one line and cites passage 1, or fails.
struct FakeLlm {
    fail: bool,
    calls: AtomicUsize,
}

impl FakeLlm {
    fn new(fail: bool) -> Self {
        FakeLlm {
            fail,
            calls: AtomicUsize::new(0),
        }
    }
}

impl Synthesizer for FakeLlm {
    fn name(&self) -> &str {
        "llm"
    }

    fn kind(&self) -> SynthesizerKind {
        SynthesizerKind::Llm
    }

    fn synthesize<'a>(
        &'a self,
        plan: &'a Plan,
        _passages: &'a [Passage],
        _failures: &'a [crate::event::SearchFailure],
        _max_output_tokens: u32,
        deltas: mpsc::UnboundedSender<String>,
    ) -> BoxFuture<'a, Result<Draft>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(Error::Llm("the provider is down".to_string()));
            }
            let _ = deltas.send("Work stealing [1].\n".to_string());
            Ok(Draft {
                summary: "Work stealing [1].".to_string(),
                sections: plan
                    .sub_questions
                    .iter()
                    .map(|_| "Threads [1].".to_string())
                    .collect(),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    cost_usd: 0.001,
                    calls: 1,
                },
            })
        })
    }
}

/// Reads every page but the `…/broken/…` ones.
struct FakePages;

impl PageReader for FakePages {
    fn read<'a>(&'a self, url: &'a str) -> BoxFuture<'a, std::result::Result<PageText, String>> {
        Box::pin(async move {
            if url.contains("/broken/") {
                return Err("connection reset".to_string());
            }
            Ok(PageText {
                url: url.to_string(),
                title: format!("Read {url}"),
                text: "The scheduler steals tasks between worker threads; size the pool to the number of cores.".to_string(),
            })
        })
    }
}

pub(super) fn config(
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

fn engine(config: &aiex_config::Config, planner: FakePlanner) -> ResearchEngine {
    let source: Arc<dyn Source> = Arc::new(WebPages);
    let coordinator = Arc::new(Coordinator::new(
        vec![source],
        CoordinatorOptions::default(),
    ));
    ResearchEngine::with_coordinator(config, coordinator).with_planner(Arc::new(planner))
}

pub(super) fn request() -> ResearchRequest {
    ResearchRequest {
        question: "How does the scheduler work?".to_string(),
        collections: Vec::new(),
        depth: 1,
        template: None,
        sources: Vec::new(),
    }
}

/// Every live event of a session to its end, and the report.
pub(super) async fn run_to_end(mut handle: SessionHandle) -> (Vec<ResearchEvent>, Option<Report>) {
    let mut events = Vec::new();
    while let Ok(event) = handle.events.recv().await {
        events.push(event);
    }
    let report = handle.wait().await.expect("run");
    (events, report)
}

fn types(events: &[ResearchEvent]) -> Vec<&'static str> {
    events.iter().map(|event| event.kind.type_name()).collect()
}

fn budgets(events: &[ResearchEvent]) -> Vec<(Budget, Stage)> {
    events
        .iter()
        .filter_map(|event| match event.kind {
            EventKind::BudgetExhausted { budget, stage, .. } => Some((budget, stage)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_emits_its_stages_in_order_and_the_log_replays_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), |_| {});
    let synthesizer = Arc::new(FakeLlm::new(false));
    let engine = Arc::new(engine(&config, FakePlanner::new(1)).with_synthesizer(synthesizer));
    let handle = engine.start(request()).expect("start");
    let id = handle.id.clone();
    let (events, report) = run_to_end(handle).await;
    assert_eq!(
        types(&events),
        vec![
            "session_started",
            "stage_started",
            "planned",
            "stage_completed",
            "stage_started",
            "search_started",
            "search_started",
            "search_completed",
            "search_completed",
            "stage_completed",
            "stage_skipped",
            "stage_started",
            "evidence_selected",
            "stage_completed",
            "stage_started",
            "synthesis_delta",
            "llm_usage",
            "report_ready",
            "stage_completed",
            "done",
        ]
    );
    let ids: Vec<u64> = events.iter().map(|event| event.id).collect();
    assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>());
    assert!(matches!(
        &events[10].kind,
        EventKind::StageSkipped { stage: Stage::Fetch, reason, .. } if reason == "page fetching is not configured"
    ));
    let report = report.expect("report");
    assert_eq!(report.synthesis, "llm");
    assert_eq!(report.summary, "Work stealing [1].");
    assert_eq!(engine.store().events(&id).expect("log"), events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_stop_a_stage_and_are_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), |c| {
        c.research.max_sub_questions = 2;
        c.research.max_searches = 3;
    });
    // Three sub-questions proposed, two kept; four queries, three searched.
    let engine = Arc::new(engine(&config, FakePlanner::new(3)));
    let (events, report) = run_to_end(engine.start(request()).expect("start")).await;
    assert_eq!(
        budgets(&events),
        vec![
            (Budget::SubQuestions, Stage::Plan),
            (Budget::Searches, Stage::Search)
        ]
    );
    let planned = events
        .iter()
        .find_map(|event| match &event.kind {
            EventKind::Planned { plan } => Some(plan.sub_questions.len()),
            _ => None,
        })
        .expect("planned");
    assert_eq!(planned, 2);
    let searched = types(&events)
        .iter()
        .filter(|kind| **kind == "search_started")
        .count();
    assert_eq!(searched, 3);
    // The search stage still completes, and the run goes on to its report.
    assert!(events.iter().any(|event| matches!(
        event.kind,
        EventKind::StageCompleted {
            stage: Stage::Search,
            round: 1,
            ..
        }
    )));
    let report = report.expect("report");
    let hit: Vec<&str> = report
        .budgets_hit
        .iter()
        .map(|b| b.budget.as_str())
        .collect();
    assert_eq!(hit, vec!["sub_questions", "searches"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_page_reads_are_reported_and_pages_stay_within_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), |c| c.research.max_pages = 3);
    let engine =
        Arc::new(engine(&config, FakePlanner::new(1)).with_page_reader(Arc::new(FakePages)));
    let (events, report) = run_to_end(engine.start(request()).expect("start")).await;
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::PageFailed { url, error, .. } => Some((url.as_str(), error.as_str())),
            _ => None,
        })
        .collect();
    let fetched = types(&events)
        .iter()
        .filter(|kind| **kind == "page_fetched")
        .count();
    // Two broken pages (the best results) fail, one good page is read, then the budget stops.
    assert_eq!(failed.len() + fetched, 3, "{failed:?}");
    assert!(!failed.is_empty());
    assert!(failed
        .iter()
        .all(|(url, error)| url.contains("/broken/") && *error == "connection reset"));
    assert_eq!(budgets(&events), vec![(Budget::Pages, Stage::Fetch)]);
    assert!(events.iter().any(|event| matches!(
        event.kind,
        EventKind::StageCompleted {
            stage: Stage::Fetch,
            ..
        }
    )));
    let report = report.expect("report");
    assert_eq!(
        report.references.iter().any(|r| r.locator.source == "page"),
        fetched > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_cost_falls_back_to_extractive_without_calling_the_llm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), |c| c.research.max_cost_usd = 0.5);
    let planner = FakePlanner {
        usage: Usage {
            input_tokens: 100,
            output_tokens: 100,
            cost_usd: 0.75,
            calls: 1,
        },
        ..FakePlanner::new(1)
    };
    let synthesizer = Arc::new(FakeLlm::new(false));
    let engine = Arc::new(engine(&config, planner).with_synthesizer(synthesizer.clone()));
    let (events, report) = run_to_end(engine.start(request()).expect("start")).await;
    assert_eq!(budgets(&events), vec![(Budget::Cost, Stage::Synthesize)]);
    assert_eq!(synthesizer.calls.load(Ordering::SeqCst), 0);
    let report = report.expect("report");
    assert_eq!(report.synthesis, "extractive");
    assert_eq!(
        report.usage.cost_usd, 0.75,
        "the planner's usage is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_llm_synthesis_falls_back_to_extractive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), |_| {});
    let synthesizer = Arc::new(FakeLlm::new(true));
    let engine =
        Arc::new(engine(&config, FakePlanner::new(1)).with_synthesizer(synthesizer.clone()));
    let (events, report) = run_to_end(engine.start(request()).expect("start")).await;
    assert_eq!(synthesizer.calls.load(Ordering::SeqCst), 1);
    assert!(events.iter().any(|event| matches!(
        &event.kind,
        EventKind::Warning { message } if message.contains("the provider is down")
    )));
    assert_eq!(report.expect("report").synthesis, "extractive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_run_and_resume_finishes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), |_| {});
    let gate = Arc::new(Notify::new());
    let planner = FakePlanner {
        gate: Some(Arc::clone(&gate)),
        ..FakePlanner::new(1)
    };
    let engine = Arc::new(engine(&config, planner));
    let mut handle = engine.start(request()).expect("start");
    let id = handle.id.clone();
    // Cancel while the planner works: the plan is kept, nothing after it runs.
    let mut events = Vec::new();
    while let Ok(event) = handle.events.recv().await {
        let planning = matches!(
            event.kind,
            EventKind::StageStarted {
                stage: Stage::Plan,
                ..
            }
        );
        events.push(event);
        if planning {
            handle.cancel();
            gate.notify_one();
        }
    }
    assert!(handle.wait().await.expect("run").is_none(), "no report");
    assert_eq!(
        types(&events),
        vec![
            "session_started",
            "stage_started",
            "planned",
            "stage_completed",
            "cancelled"
        ]
    );
    let state = engine.store().state(&id).expect("state");
    assert_eq!(state.status(), SessionStatus::Cancelled);

    let (resumed, report) = run_to_end(engine.resume(&id).expect("resume")).await;
    assert!(report.is_some());
    assert_eq!(resumed[0].kind.type_name(), "resumed");
    assert_eq!(resumed[0].id, 6, "ids continue");
    assert!(!resumed.iter().any(|event| matches!(
        event.kind,
        EventKind::StageStarted {
            stage: Stage::Plan,
            ..
        }
    )));
    assert_eq!(
        engine.store().state(&id).expect("state").status(),
        SessionStatus::Complete
    );
}
