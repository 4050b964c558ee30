//! The coordinator with sources that are fast, slow, failing, hanging, panicking or return garbage.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aiex_search::source::BoxFuture;
use aiex_search::{
    CoordinatedSearch, Coordinator, CoordinatorOptions, Hit, SearchEvent, Source, SourceError,
    SourceQuery, SourceResults,
};

#[derive(Clone, Copy)]
enum Behaviour {
    Fast,
    Slow(Duration),
    Fail,
    Hang,
    Panic,
    Garbage,
}

struct Fake {
    name: String,
    behaviour: Behaviour,
    calls: AtomicUsize,
}

fn hit(source: &str, n: usize) -> Hit {
    Hit::web(
        source,
        &format!("https://{}.example/{n}", source.replace(':', "-")),
        &format!("{source} result {n}"),
        &format!("snippet {n} from {source} about shared state"),
        1.0 / (n + 1) as f32,
    )
}

impl Source for Fake {
    fn name(&self) -> &str {
        &self.name
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let hits: Vec<Hit> = (0..query.limit.min(3))
                .map(|n| hit(&self.name, n))
                .collect();
            let results = match self.behaviour {
                Behaviour::Fast => Ok(hits),
                Behaviour::Slow(delay) => {
                    tokio::time::sleep(delay).await;
                    Ok(hits)
                }
                Behaviour::Fail => Err(SourceError::Failed("provider said 503".into())),
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Panic => panic!("source bug"),
                Behaviour::Garbage => {
                    let mut garbage = hit(&self.name, 0);
                    garbage.score = f32::NAN;
                    let mut empty = hit(&self.name, 1);
                    empty.locator.title.clear();
                    empty.snippet.clear();
                    let mut huge = hit(&self.name, 2);
                    huge.snippet = "é".repeat(10_000);
                    Ok(vec![garbage, empty, huge])
                }
            };
            results.map(SourceResults::from)
        })
    }
}

fn fake(name: &str, behaviour: Behaviour) -> Arc<Fake> {
    Arc::new(Fake {
        name: name.to_string(),
        behaviour,
        calls: AtomicUsize::new(0),
    })
}

fn coordinator(sources: Vec<Arc<Fake>>, deadline: Duration, budget: Duration) -> Arc<Coordinator> {
    let sources: Vec<Arc<dyn Source>> = sources.into_iter().map(|s| s as Arc<dyn Source>).collect();
    Arc::new(Coordinator::new(
        sources,
        CoordinatorOptions {
            budget,
            default_deadline: deadline,
            ..CoordinatorOptions::default()
        },
    ))
}

fn search(sources: &[&str]) -> CoordinatedSearch {
    CoordinatedSearch {
        query: SourceQuery::new("share state between threads", 5),
        sources: sources.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn bad_sources_never_delay_or_fail_the_good_ones() {
    let coordinator = coordinator(
        vec![
            fake("code", Behaviour::Fast),
            fake("docs", Behaviour::Slow(Duration::from_millis(50))),
            fake("web:serper", Behaviour::Hang),
            fake("web:tavily", Behaviour::Fail),
            fake("web:panics", Behaviour::Panic),
            fake("web:garbage", Behaviour::Garbage),
        ],
        Duration::from_millis(300),
        Duration::from_secs(5),
    );
    let started = Instant::now();
    let mut receiver = coordinator.search(search(&[]));
    let mut events = Vec::new();
    let mut first_results_at = None;
    while let Some(event) = receiver.recv().await {
        if first_results_at.is_none() && matches!(event, SearchEvent::Results { .. }) {
            first_results_at = Some(started.elapsed());
        }
        events.push(event);
    }
    let elapsed = started.elapsed();
    // The hanging source is cut at its deadline; the fast one arrives long before.
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert!(first_results_at.expect("results") < Duration::from_millis(250));

    let ids: Vec<u64> = events.iter().map(SearchEvent::id).collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "monotonic ids"
    );
    let started_sources = events
        .iter()
        .filter(|e| matches!(e, SearchEvent::SourceStarted { .. }))
        .count();
    assert_eq!(started_sources, 6);
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| match e {
            SearchEvent::SourceFailed { source, error, .. } => {
                Some((source.as_str(), error.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed
        .iter()
        .any(|(s, e)| *s == "web:serper" && e.contains("deadline")));
    assert!(failed
        .iter()
        .any(|(s, e)| *s == "web:tavily" && e.contains("503")));
    assert!(failed.iter().any(|(s, _)| *s == "web:panics"));
    let garbage = events.iter().find_map(|e| match e {
        SearchEvent::Results { source, hits, .. } if source == "web:garbage" => Some(hits),
        _ => None,
    });
    let garbage = garbage.expect("garbage source still reports");
    assert_eq!(garbage.len(), 1, "NaN and empty hits dropped");
    assert!(garbage[0].snippet.len() <= 2_000);

    let Some(SearchEvent::Merged { hits, .. }) = events.iter().rev().nth(1) else {
        panic!("merged before done: {events:?}");
    };
    assert_eq!(hits.len(), 5);
    let sources: std::collections::HashSet<&str> =
        hits.iter().map(|h| h.locator.source.as_str()).collect();
    assert!(sources.contains("code") && sources.contains("docs"));
    assert!(matches!(events.last(), Some(SearchEvent::Done { .. })));
}

#[tokio::test]
async fn overall_budget_cuts_everything_left() {
    let coordinator = coordinator(
        vec![
            fake("code", Behaviour::Fast),
            fake("web:serper", Behaviour::Hang),
        ],
        Duration::from_secs(30),
        Duration::from_millis(200),
    );
    let started = Instant::now();
    let events = coordinator.search_all(search(&[])).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(events.iter().any(|e| matches!(e,
        SearchEvent::SourceFailed { source, error, .. } if source == "web:serper" && error.contains("budget"))));
    assert!(matches!(events.last(), Some(SearchEvent::Done { .. })));
}

#[tokio::test]
async fn selects_sources_and_caches() {
    let code = fake("code", Behaviour::Fast);
    let serper = fake("web:serper", Behaviour::Fast);
    let tavily = fake("web:tavily", Behaviour::Fast);
    let coordinator = coordinator(
        vec![code.clone(), serper.clone(), tavily.clone()],
        Duration::from_secs(1),
        Duration::from_secs(5),
    );
    let events = coordinator.search_all(search(&["web", "nope"])).await;
    let started: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            SearchEvent::SourceStarted { source, .. } => Some(source.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["web:serper", "web:tavily"]);
    assert!(events.iter().any(|e| matches!(e,
        SearchEvent::SourceFailed { source, error, .. } if source == "nope" && error.contains("available"))));
    assert_eq!(code.calls.load(Ordering::SeqCst), 0);

    let again = coordinator.search_all(search(&["web"])).await;
    assert!(again
        .iter()
        .all(|e| !matches!(e, SearchEvent::Results { cached: false, .. })));
    assert_eq!(
        serper.calls.load(Ordering::SeqCst),
        1,
        "second search served from cache"
    );
    let stats = coordinator.cache_stats();
    assert_eq!(stats.hits, 2);
    assert!(stats.hit_ratio() > 0.0);
}

#[tokio::test]
async fn dropping_the_receiver_cancels() {
    let coordinator = coordinator(
        vec![fake("web:serper", Behaviour::Slow(Duration::from_secs(30)))],
        Duration::from_secs(60),
        Duration::from_secs(60),
    );
    let mut receiver = coordinator.search(search(&[]));
    let first = receiver.recv().await;
    assert!(matches!(first, Some(SearchEvent::SourceStarted { .. })));
    drop(receiver);
    // Nothing to observe but that the runtime shuts down promptly (no task holds it for 30 s).
}

/// Sets its flag when dropped: held by a source's future, it tells that the future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A source that never answers, and says when its search future is dropped.
struct Hanging {
    dropped: Arc<AtomicBool>,
}

impl Source for Hanging {
    fn name(&self) -> &str {
        "web:hangs"
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn search<'a>(
        &'a self,
        _query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        let flag = DropFlag(Arc::clone(&self.dropped));
        Box::pin(async move {
            let _flag = flag;
            std::future::pending().await
        })
    }
}

#[tokio::test]
async fn a_dropped_search_cancels_its_hanging_sources() {
    let dropped = Arc::new(AtomicBool::new(false));
    let source: Arc<dyn Source> = Arc::new(Hanging {
        dropped: Arc::clone(&dropped),
    });
    let coordinator = Arc::new(Coordinator::new(
        vec![source],
        CoordinatorOptions {
            budget: Duration::from_secs(60),
            default_deadline: Duration::from_secs(60),
            ..CoordinatorOptions::default()
        },
    ));
    let mut receiver = coordinator.search(search(&[]));
    let first = receiver.recv().await;
    assert!(matches!(first, Some(SearchEvent::SourceStarted { .. })));
    // Let the source's task start its search before the caller leaves.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the search is still running"
    );
    drop(receiver);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dropped.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "the hanging source's future was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Hangs on its first call, answers every later one at once.
struct SlowFirst {
    calls: AtomicUsize,
}

impl Source for SlowFirst {
    fn name(&self) -> &str {
        "code"
    }

    fn cache_ttl(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn search<'a>(
        &'a self,
        query: &'a SourceQuery,
    ) -> BoxFuture<'a, Result<SourceResults, SourceError>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            if call == 0 {
                std::future::pending::<()>().await;
            }
            Ok(vec![hit("code", 0), hit("code", query.limit.min(1))].into())
        })
    }
}

#[tokio::test]
async fn a_source_that_missed_its_deadline_answers_a_coordinator_with_a_longer_one() {
    let slow = Arc::new(SlowFirst {
        calls: AtomicUsize::new(0),
    });
    let fast = fake("web:fast", Behaviour::Fast);
    let sources: Vec<Arc<dyn Source>> = vec![slow.clone(), fast.clone()];
    let coordinator = Arc::new(Coordinator::new(
        sources,
        CoordinatorOptions {
            budget: Duration::from_secs(30),
            default_deadline: Duration::from_secs(30),
            deadlines: [("code".to_string(), Duration::from_millis(20))].into(),
            ..CoordinatorOptions::default()
        },
    ));
    let first = coordinator.search_all(search(&[])).await;
    let error = first
        .iter()
        .find_map(|event| match event {
            SearchEvent::SourceFailed { source, error, .. } if source == "code" => Some(error),
            _ => None,
        })
        .expect("code misses its deadline");
    assert_eq!(error, "deadline of 20 ms exceeded");
    assert!(aiex_search::coordinator::is_time_out(error));
    assert!(!aiex_search::coordinator::is_time_out("provider said 503"));

    let longer =
        Arc::new(coordinator.with_deadlines(&[("code".to_string(), coordinator.budget())].into()));
    let second = longer.search_all(search(&["code", "web:fast"])).await;
    let results: Vec<(&str, bool)> = second
        .iter()
        .filter_map(|event| match event {
            SearchEvent::Results { source, cached, .. } => Some((source.as_str(), *cached)),
            _ => None,
        })
        .collect();
    // The source that answered the first time comes from the shared cache.
    assert_eq!(results.len(), 2, "{second:?}");
    assert!(results.contains(&("code", false)) && results.contains(&("web:fast", true)));
    assert_eq!(slow.calls.load(Ordering::SeqCst), 2);
    assert_eq!(fast.calls.load(Ordering::SeqCst), 1);
}
