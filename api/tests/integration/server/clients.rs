//! Clients nobody here wrote, against a real server on a loopback port: the official `openai`
//! Python package (`api/tests/clients/openai_chat.py`) from the virtual environment that
//! `scripts/pyvenv clients api/tests/clients/requirements.txt` makes (`scripts/test` does), or the
//! Python named by `AIEX_TEST_CLIENTS_PYTHON`. Without it the test says SKIPPED and passes.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aiex_api::server::auth::hash_key;

use super::research::{research_config, with_key};
use super::{call, get, parse_sse, start, state};

/// A Python that can `import MODULE`, if there is one.
pub(super) fn client_python(module: &str) -> Option<PathBuf> {
    let python = match std::env::var_os("AIEX_TEST_CLIENTS_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                })?;
            cache
                .join("aiex")
                .join("venv-clients")
                .join("bin")
                .join("python")
        }
    };
    let imports = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|output| output.status.success());
    imports.then_some(python)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_python_package_chats_with_the_server() {
    let Some(python) = client_python("openai") else {
        aiex_tests::skip(
            "the_openai_python_package_chats_with_the_server",
            "clients",
            "no Python with the openai package (run scripts/pyvenv clients api/tests/clients/requirements.txt, or set AIEX_TEST_CLIENTS_PYTHON)",
        );
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    let keys = format!("[\"{}\"]", hash_key("chat-key"));
    let config = research_config(
        data.path(),
        repo.path(),
        None,
        &[("server.api_keys", &keys)],
    );
    let state = state(config, false).await;
    let (base, _server) = start(&state).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/openai_chat.py");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(&base)
            .arg("chat-key")
            .output()
            .expect("run the python client")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}"));

    // Nothing leaks: every stream closed, the one left early included.
    for _ in 0..100 {
        if state.streams.open_streams.load(Ordering::Relaxed) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state.streams.open_streams.load(Ordering::Relaxed), 0);

    // Every session is stored, the one left early runs to its end, and each log is whole.
    let mut sessions: Vec<String> = summary["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|id| id.as_str().expect("id").to_string())
        .collect();
    sessions.push(summary["early"].as_str().expect("early").to_string());
    for id in &sessions {
        let mut status = serde_json::Value::Null;
        for _ in 0..600 {
            status = call(
                &state,
                with_key(get(&format!("/v1/research/{id}")), "chat-key"),
            )
            .await
            .json();
            if status["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status["status"], "complete", "{id}: {status}");
        let replay = call(
            &state,
            with_key(get(&format!("/v1/research/{id}/events")), "chat-key"),
        )
        .await;
        let mut text = replay.text.clone();
        let events = parse_sse(&mut text);
        let ids: Vec<u64> = events.iter().filter_map(|event| event.id).collect();
        assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "{id}");
        assert_eq!(
            events.last().map(|event| event.event.as_str()),
            Some("done")
        );
    }
    state.begin_shutdown();
}
