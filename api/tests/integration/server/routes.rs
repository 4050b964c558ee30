//! Routes through the router without a socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use super::{call, get, index_keywords, parse_sse, post_json, server_config, small_repo, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_collections_history_bookmarks_metrics() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    small_repo(repo.path());
    let config = server_config(data.path(), None, &[("search.mode", "keyword")]);
    let state = state(config.clone(), true).await;

    let health = call(&state, get("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");

    let empty = call(&state, post_json("/v1/search", &json!({"query": "toml"}))).await;
    assert_eq!(empty.status, StatusCode::NOT_FOUND);
    assert_eq!(empty.code(), "no_collections");

    let indexed = config.clone();
    let root = repo.path().to_path_buf();
    tokio::task::spawn_blocking(move || index_keywords(&indexed, &root, "demo"))
        .await
        .expect("index");

    let found = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "parse toml table", "limit": 5}),
        ),
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    let body = found.json();
    assert_eq!(body["hits"][0]["path"], "src/table.rs", "{body}");
    assert_eq!(body["hits"][0]["collection"], "demo");
    assert!(body["timings"]["total_ms"].is_number());

    // The mode can be chosen per request; an unknown mode is refused.
    let keyword = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "parse toml table", "limit": 5, "mode": "keyword"}),
        ),
    )
    .await;
    assert_eq!(keyword.status, StatusCode::OK, "{}", keyword.text);
    assert_eq!(keyword.json()["hits"][0]["path"], "src/table.rs");
    let vector = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "parse toml table", "limit": 5, "mode": "vector"}),
        ),
    )
    .await;
    assert_eq!(vector.status, StatusCode::OK, "{}", vector.text);
    // This index has no vectors: vector mode finds nothing and says why.
    let vector = vector.json();
    assert_eq!(vector["hits"].as_array().map(Vec::len), Some(0), "{vector}");
    assert!(
        vector["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("no vector search")),
        "{vector}"
    );
    let fuzzy = call(
        &state,
        post_json("/v1/search", &json!({"query": "x", "mode": "fuzzy"})),
    )
    .await;
    assert_eq!(
        fuzzy.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        fuzzy.text
    );
    // Input that cannot mean anything is refused, the same as on the command line.
    for (body, code) in [
        (json!({"query": "x", "since": "decade"}), "invalid_since"),
        (
            json!({"query": "x", "sources": ["code", "gopher"]}),
            "unknown_source",
        ),
        (json!({"query": "x", "path": "src/["}), "invalid_path"),
    ] {
        let refused = call(&state, post_json("/v1/search", &body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
        assert_eq!(refused.code(), code);
    }

    // The same search as SSE: the coordinator's events with ids, `done` last.
    let request = Request::post("/v1/search")
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(
            json!({"query": "job queue", "sources": ["code"]}).to_string(),
        ))
        .expect("request");
    let streamed = call(&state, request).await;
    assert_eq!(streamed.status, StatusCode::OK);
    assert!(streamed.headers["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let mut text = streamed.text.clone();
    let events = parse_sse(&mut text);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        ["source_started", "results", "merged", "done"],
        "{events:?}"
    );
    let ids: Vec<Option<u64>> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [Some(1), Some(2), Some(3), Some(4)]);
    let merged: serde_json::Value = serde_json::from_str(&events[2].data).expect("json");
    assert_eq!(merged["hits"][0]["path"], "lib/queue.py");

    let unknown = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "x", "collections": ["nope"]}),
        ),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "collection_not_found");
    let bad_language = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "x", "languages": ["klingon"]}),
        ),
    )
    .await;
    assert_eq!(bad_language.code(), "unknown_language");
    let bad_json = call(
        &state,
        Request::post("/v1/search")
            .header("content-type", "application/json")
            .body(Body::from("{\"query\":"))
            .expect("request"),
    )
    .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.code(), "invalid_body");
    let unknown_field = call(
        &state,
        post_json("/v1/search", &json!({"query": "x", "bogus": 1})),
    )
    .await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);

    let collections = call(&state, get("/v1/collections")).await;
    assert_eq!(collections.status, StatusCode::OK);
    let listed = collections.json();
    assert_eq!(listed["collections"][0]["name"], "demo");
    assert_eq!(listed["collections"][0]["kind"], "code");
    assert_eq!(listed["collections"][0]["files"], 2);

    let history = call(&state, get("/v1/history?limit=10")).await.json();
    let queries: Vec<&str> = history["queries"]
        .as_array()
        .expect("queries")
        .iter()
        .filter_map(|q| q["query"].as_str())
        .collect();
    assert_eq!(
        queries,
        [
            "job queue",
            "parse toml table",
            "parse toml table",
            "parse toml table"
        ]
    );

    let hit = body["hits"][0].clone();
    let created = call(
        &state,
        post_json(
            "/v1/bookmarks",
            &json!({"hit": hit, "note": "header parsing", "query": "parse toml table"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_str().expect("id").to_string();
    let listed = call(&state, get("/v1/bookmarks")).await.json();
    assert_eq!(listed["bookmarks"][0]["hit"]["path"], "src/table.rs");
    assert_eq!(listed["bookmarks"][0]["note"], "header parsing");
    // Persisted under the data directory: a new state over the same directory sees them.
    let reopened = super::state(config.clone(), false).await;
    let again = call(&reopened, get("/v1/bookmarks")).await.json();
    assert_eq!(again["bookmarks"][0]["id"], id.as_str());
    let removed = call(
        &state,
        Request::delete(format!("/v1/bookmarks/{id}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let missing = call(
        &state,
        Request::delete(format!("/v1/bookmarks/{id}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(missing.code(), "bookmark_not_found");
    let not_object = call(&state, post_json("/v1/bookmarks", &json!({"hit": 3}))).await;
    assert_eq!(not_object.code(), "invalid_bookmark");

    let ready = call(&state, get("/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json()["checks"]["index"], "ok");

    // A cached repeat, then the metrics.
    call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "parse toml table", "limit": 5}),
        ),
    )
    .await;
    let metrics = call(&state, get("/metrics")).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = metrics.text;
    assert!(
        text.contains(
            "aiex_http_requests_total{method=\"POST\",route=\"/v1/search\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(text.contains("aiex_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/search\",le=\"+Inf\"}"));
    assert!(text.contains("aiex_search_cache_hit_ratio"));
    assert!(
        text.contains("aiex_search_cache_hits_total 1")
            || text.contains("aiex_search_cache_hits_total 2"),
        "{text}"
    );
    assert!(text.contains("aiex_source_latency_seconds_count{source=\"code\"}"));
    assert!(text.contains("aiex_index_size_bytes{collection=\"demo\",kind=\"code\"}"));
    assert!(text.contains("aiex_open_streams 0"));

    // History is written at most once a second, and at shutdown.
    state.begin_shutdown();
    state.wait_stopped(std::time::Duration::from_secs(10)).await;
    let after_restart = super::state(config.clone(), false).await;
    let kept = call(&after_restart, get("/v1/history")).await.json();
    assert_eq!(kept["queries"][0]["query"], "parse toml table", "{kept}");

    let nowhere = call(&state, get("/v2/nothing")).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere.code(), "not_found");
    let wrong_method = call(
        &state,
        Request::put("/v1/search")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.code(), "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_index_cancel_and_report() {
    let data = tempfile::tempdir().expect("tempdir");
    let roots = tempfile::tempdir().expect("tempdir");
    let root = roots.path().canonicalize().expect("canonical");
    small_repo(&root.join("one"));
    small_repo(&root.join("two"));
    let config = server_config(data.path(), Some(&root), &[("search.mode", "keyword")]);
    let state = state(config, true).await;

    let created = call(
        &state,
        post_json(
            "/v1/index/jobs",
            &json!({"items": [{"path": "one"}, {"path": root.join("two").display().to_string(), "name": "second"}], "embed": false}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
    let job = created.json();
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(job["state"], "queued");

    let mut finished = serde_json::Value::Null;
    for _ in 0..200 {
        finished = call(&state, get(&format!("/v1/index/jobs/{id}")))
            .await
            .json();
        if finished["state"] == "succeeded" || finished["state"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(finished["state"], "succeeded", "{finished}");
    assert_eq!(finished["items"][0]["name"], "one");
    assert_eq!(finished["items"][1]["name"], "second");
    assert_eq!(finished["items"][1]["summary"]["changed"], 2);

    // The collections are searchable at once.
    let found = call(
        &state,
        post_json(
            "/v1/search",
            &json!({"query": "JobQueue", "collections": ["second"]}),
        ),
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(found.json()["hits"][0]["collection"], "second");

    // A replay of the finished job's events ends with `done`.
    let events = call(&state, get(&format!("/v1/index/jobs/{id}/events?after=0"))).await;
    let mut text = events.text;
    let events = parse_sse(&mut text);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"queued"));
    assert_eq!(names.last(), Some(&"done"));
    assert!(
        names.contains(&"item_started")
            && names.contains(&"progress")
            && names.contains(&"item_finished")
    );
    let done: serde_json::Value =
        serde_json::from_str(&events[events.len() - 1].data).expect("json");
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["succeeded"], 2);

    let listed = call(&state, get("/v1/index/jobs")).await.json();
    assert_eq!(listed["jobs"][0]["id"], id.as_str());
    let cancel_finished = call(
        &state,
        Request::delete(format!("/v1/index/jobs/{id}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(cancel_finished.status, StatusCode::CONFLICT);
    assert_eq!(cancel_finished.code(), "job_finished");
    let unknown = call(&state, get("/v1/index/jobs/nope")).await;
    assert_eq!(unknown.code(), "job_not_found");

    // A queued job (jobs not running in this state) is cancelled at once.
    let idle = super::state(server_config(data.path(), Some(&root), &[]), false).await;
    let queued = call(
        &idle,
        post_json("/v1/index/jobs", &json!({"items": [{"path": "one"}]})),
    )
    .await
    .json();
    let queued_id = queued["id"].as_str().expect("id").to_string();
    let cancelled = call(
        &idle,
        Request::delete(format!("/v1/index/jobs/{queued_id}"))
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json()["state"], "cancelled");
    let bad_name = call(
        &idle,
        post_json(
            "/v1/index/jobs",
            &json!({"items": [{"path": "one", "name": "a/b"}]}),
        ),
    )
    .await;
    assert_eq!(bad_name.code(), "invalid_collection_name");
    let no_items = call(&idle, post_json("/v1/index/jobs", &json!({"items": []}))).await;
    assert_eq!(no_items.code(), "invalid_items");
}

#[tokio::test]
async fn openapi_lists_every_route() {
    let data = tempfile::tempdir().expect("tempdir");
    let state = state(server_config(data.path(), None, &[]), false).await;
    let answer = call(&state, get("/openapi.json")).await;
    assert_eq!(answer.status, StatusCode::OK);
    let document = answer.json();
    assert!(document["openapi"]
        .as_str()
        .expect("version")
        .starts_with("3."));
    let expected = [
        ("post", "/v1/search"),
        ("post", "/v1/grep"),
        ("get", "/v1/collections"),
        ("post", "/v1/index/jobs"),
        ("get", "/v1/index/jobs"),
        ("get", "/v1/index/jobs/{id}"),
        ("delete", "/v1/index/jobs/{id}"),
        ("get", "/v1/index/jobs/{id}/events"),
        ("post", "/v1/research"),
        ("get", "/v1/research/{id}"),
        ("delete", "/v1/research/{id}"),
        ("get", "/v1/research/{id}/events"),
        ("post", "/v1/research/{id}/stream-token"),
        ("post", "/v1/research/{id}/resume"),
        ("get", "/v1/sessions"),
        ("get", "/v1/history"),
        ("delete", "/v1/history"),
        ("get", "/v1/bookmarks"),
        ("post", "/v1/bookmarks"),
        ("delete", "/v1/bookmarks/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
        ("get", "/v1/models"),
        ("post", "/v1/chat/completions"),
    ];
    let paths = document["paths"].as_object().expect("paths");
    let mut listed = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("path item").keys() {
            assert!(
                expected.contains(&(method.as_str(), path.as_str())),
                "undocumented route in the router list: {method} {path}"
            );
            listed += 1;
        }
    }
    assert_eq!(listed, expected.len());
    for (method, path) in expected {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} missing");
        assert!(operation["responses"].is_object());
        // Every documented route exists in the router: nothing answers `not_found` for it.
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(path.replace("{id}", "x"))
            .body(Body::empty())
            .expect("request");
        let answer = call(&state, request).await;
        if answer.status == StatusCode::NOT_FOUND {
            assert_ne!(answer.code(), "not_found", "{method} {path} is not routed");
        }
        assert_ne!(
            answer.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    // Operation ids are unique; streams declare their payloads and `Last-Event-ID`.
    let mut ids: Vec<&str> = expected
        .iter()
        .map(|(method, path)| {
            document["paths"][path][method]["operationId"]
                .as_str()
                .expect("operation id")
        })
        .collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operation ids: {ids:?}");
    for path in ["/v1/research/{id}/events", "/v1/index/jobs/{id}/events"] {
        let operation = &document["paths"][path]["get"];
        let stream = &operation["responses"]["200"]["content"]["text/event-stream"]["schema"];
        assert!(stream["$ref"].is_string(), "{path}: {stream}");
        assert!(operation["responses"]["204"].is_object(), "{path}");
        let headers: Vec<&str> = operation["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|parameter| parameter["in"] == "header")
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        assert_eq!(headers, ["Last-Event-ID"], "{path}");
    }
    for schema in [
        "ResearchEventPayload",
        "JobEventPayload",
        "SearchEventPayload",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "{schema}"
        );
    }
    let create = &document["paths"]["/v1/research"]["post"]["responses"];
    assert!(create["415"].is_object() && create["422"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ended_jobs_past_their_retention_are_dropped() {
    let data = tempfile::tempdir().expect("tempdir");
    let roots = tempfile::tempdir().expect("tempdir");
    let root = roots.path().canonicalize().expect("canonical");
    small_repo(&root.join("one"));
    let with = |retention: &'static str| {
        server_config(
            data.path(),
            Some(&root),
            &[
                ("search.mode", "keyword"),
                ("server.job_retention_hours", retention),
            ],
        )
    };
    let runner = state(with("168"), true).await;
    let created = call(
        &runner,
        post_json(
            "/v1/index/jobs",
            &json!({"items": [{"path": "one"}], "embed": false}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.text);
    let id = created.json()["id"].as_str().expect("id").to_string();
    let mut finished = serde_json::Value::Null;
    for _ in 0..200 {
        finished = call(&runner, get(&format!("/v1/index/jobs/{id}")))
            .await
            .json();
        if finished["state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(finished["state"], "succeeded", "{finished}");

    // The job ended two hours ago.
    let jobs = data.path().join("server").join("jobs");
    let record_path = jobs.join(format!("{id}.json"));
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).expect("record")).expect("json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    record["updated_at"] = json!(now - 2 * 3600);
    std::fs::write(&record_path, record.to_string()).expect("age the record");

    // Kept with no retention limit, and within a longer one.
    for retention in ["0", "3"] {
        let keeper = state(with(retention), false).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let kept = call(&keeper, get(&format!("/v1/index/jobs/{id}"))).await;
        assert_eq!(kept.status, StatusCode::OK, "retention {retention}");
    }
    assert!(record_path.exists());

    // Dropped, record and events, by a server that keeps ended jobs one hour.
    let pruner = state(with("1"), false).await;
    let mut gone = false;
    for _ in 0..50 {
        let answer = call(&pruner, get(&format!("/v1/index/jobs/{id}"))).await;
        if answer.status == StatusCode::NOT_FOUND {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the expired job is still listed");
    assert!(!record_path.exists());
    assert!(!jobs.join(format!("{id}.events.jsonl")).exists());
    let listed = call(&pruner, get("/v1/index/jobs")).await.json();
    assert_eq!(listed["jobs"], json!([]), "{listed}");
}
