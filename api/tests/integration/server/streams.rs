//! Streams over a real socket with a real client: drop and resume with `Last-Event-ID`, graceful
//! shutdown, and a queued job taken up by the next server over the same data directory.

use std::time::Duration;

use serde_json::json;

use super::{read_events, server_config, start, state, SseEvent};

fn many_files(root: &std::path::Path, count: usize) {
    for n in 0..count {
        let text = format!(
            "/// Computes the checksum of block {n} with a rolling hash.\npub fn checksum_{n}(data: &[u8]) -> u32 {{\n    data.iter().fold({n}u32, |acc, byte| acc.rotate_left(5) ^ u32::from(*byte))\n}}\n\n/// Formats record {n} as a line of text.\npub fn format_record_{n}(id: u64, name: &str) -> String {{\n    format!(\"{{id}}: {{name}} ({n})\")\n}}\n"
        );
        aiex_tests::write_files(root, &[(&format!("src/module_{n}.rs"), &text)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_events_resume_after_a_dropped_connection() {
    let data = tempfile::tempdir().expect("tempdir");
    let roots = tempfile::tempdir().expect("tempdir");
    let root = roots.path().canonicalize().expect("canonical");
    many_files(&root.join("repo"), 60);
    let state = state(server_config(data.path(), Some(&root), &[]), true).await;
    let (base, _server) = start(&state).await;
    let client = reqwest::Client::new();

    let created: serde_json::Value = client
        .post(format!("{base}/v1/index/jobs"))
        .json(&json!({"items": [{"path": "repo"}]}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    let url = format!("{base}/v1/index/jobs/{id}/events");

    // First connection: three events, then the client goes away mid-stream.
    let first = client.get(&url).send().await.expect("connect");
    assert_eq!(first.status(), 200);
    assert!(first.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let seen = read_events(first, |events| events.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    let last_seen = seen[2].id.expect("id");

    // Second connection: everything after the last id, live until `done`.
    let second = client
        .get(&url)
        .header("last-event-id", last_seen.to_string())
        .send()
        .await
        .expect("reconnect");
    let rest = read_events(second, |events| {
        events
            .last()
            .is_some_and(|e| e.event == "done" || e.event == "error")
    })
    .await;
    assert_eq!(
        rest.last().map(|e| e.event.as_str()),
        Some("done"),
        "{rest:?}"
    );

    let joined: Vec<SseEvent> = seen.iter().chain(rest.iter()).cloned().collect();
    let ids: Vec<u64> = joined
        .iter()
        .map(|e| e.id.expect("every event has an id"))
        .collect();
    let expected: Vec<u64> = (1..=ids.len() as u64).collect();
    assert_eq!(ids, expected, "no gap, no duplicate");
    let names: Vec<&str> = joined.iter().map(|e| e.event.as_str()).collect();
    assert!(
        names.contains(&"item_started") && names.contains(&"item_finished"),
        "{names:?}"
    );
    assert!(
        joined
            .iter()
            .any(|e| e.event == "progress" && e.data.contains("\"embedding\"")),
        "{names:?}"
    );
    let done: serde_json::Value =
        serde_json::from_str(&joined[joined.len() - 1].data).expect("json");
    assert_eq!(done["state"], "succeeded", "{done}");

    // A full replay with `?after=0` gives the very same events.
    let replay = client
        .get(format!("{url}?after=0"))
        .send()
        .await
        .expect("replay");
    let replayed = read_events(replay, |_| false).await;
    assert_eq!(replayed, joined);

    // A resume after the final event answers 204, so a browser's `EventSource` stops.
    let after_end = client
        .get(&url)
        .header("last-event-id", ids.len().to_string())
        .send()
        .await
        .expect("resume after the end");
    assert_eq!(after_end.status(), 204);

    // Once vectors are done, hybrid search over the new collection answers over HTTP.
    let found: serde_json::Value = client
        .post(format!("{base}/v1/search"))
        .json(&json!({"query": "rolling hash checksum of block 7"}))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert!(
        found["hits"]
            .as_array()
            .is_some_and(|hits| !hits.is_empty()),
        "{found}"
    );
    state.begin_shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_streams_and_a_queued_job_resumes_after_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let roots = tempfile::tempdir().expect("tempdir");
    let root = roots.path().canonicalize().expect("canonical");
    super::small_repo(&root.join("repo"));
    let config = server_config(data.path(), Some(&root), &[("search.mode", "keyword")]);

    // A server that accepts jobs but does not run them: the job stays queued.
    let first = state(config.clone(), false).await;
    let (base, server) = start(&first).await;
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{base}/v1/index/jobs"))
        .json(&json!({"items": [{"path": "repo", "name": "resumed"}], "embed": false}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["state"], "queued");

    let following = client
        .get(format!("{base}/v1/index/jobs/{id}/events"))
        .send()
        .await
        .expect("connect");
    let reader = tokio::spawn(read_events(following, |_| false));
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.begin_shutdown();
    let events = reader.await.expect("reader");
    server.await.expect("server stopped");
    // The stream ended with a final event that says where to resume.
    assert_eq!(events[0].event, "queued");
    let last = events.last().expect("events");
    assert_eq!(last.event, "error", "{events:?}");
    // Like every frame, the last one has an id: the one to resume after.
    assert_eq!(last.id, Some(1));
    let ending: serde_json::Value = serde_json::from_str(&last.data).expect("json");
    assert_eq!(ending["code"], "shutting_down");
    assert_eq!(ending["last_event_id"], 1);
    drop(first);

    // The next server over the same data directory takes the job up again.
    let second = state(config, true).await;
    let (base, _server) = start(&second).await;
    let resumed = client
        .get(format!("{base}/v1/index/jobs/{id}/events"))
        .header("last-event-id", "1")
        .send()
        .await
        .expect("reconnect");
    let rest = read_events(resumed, |events| {
        events
            .last()
            .is_some_and(|e| e.event == "done" || e.event == "error")
    })
    .await;
    let names: Vec<&str> = rest.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"resumed"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let ids: Vec<u64> = rest.iter().map(|e| e.id.expect("id")).collect();
    assert_eq!(ids, (2..2 + ids.len() as u64).collect::<Vec<_>>());
    let job: serde_json::Value = client
        .get(format!("{base}/v1/index/jobs/{id}"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["restarts"], 1);
    let found: serde_json::Value = client
        .post(format!("{base}/v1/search"))
        .json(&json!({"query": "parse toml table", "collections": ["resumed"]}))
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("json");
    assert_eq!(found["hits"][0]["path"], "src/table.rs", "{found}");
    second.begin_shutdown();
}
