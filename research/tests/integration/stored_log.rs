//! Session logs written by earlier versions still replay: every stored event reads back into the
//! same JSON, and the state and report rebuilt from them are whole. The fixtures are real logs: one
//! session over a local code collection, one over a web source.

use std::path::Path;

use aiex_research::{ResearchEvent, SessionStatus, SessionStore};

const LOCAL: &str = "2c4c1ac913b8423b";
const WEB: &str = "bdad3058c62545ef";

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sessions")
}

/// A data directory holding a copy of the stored session `id`.
fn store_with(id: &str) -> (tempfile::TempDir, SessionStore) {
    let data = tempfile::tempdir().expect("tempdir");
    let store = SessionStore::new(data.path());
    let dir = store.root().join(id);
    std::fs::create_dir_all(&dir).expect("session dir");
    std::fs::copy(
        fixtures().join(id).join("events.jsonl"),
        dir.join("events.jsonl"),
    )
    .expect("copy log");
    (data, store)
}

fn stored_lines(id: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join(id).join("events.jsonl")).expect("fixture");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("stored line is JSON"))
        .collect()
}

#[test]
fn stored_events_read_back_into_the_same_json() {
    for id in [LOCAL, WEB] {
        let (_data, store) = store_with(id);
        let events = store.events(id).expect("replay");
        let stored = stored_lines(id);
        assert_eq!(events.len(), stored.len(), "{id}");
        for (event, line) in events.iter().zip(&stored) {
            // Through text, as the log stores it (f32 scores keep their shortest form).
            let text = serde_json::to_string(event).expect("serialise");
            let again: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(&again, line, "{id}: event {} changed its JSON", event.id);
            let parsed: ResearchEvent = serde_json::from_str(&text).expect("parse again");
            assert_eq!(&parsed, event);
        }
    }
}

#[test]
fn stored_sessions_rebuild_their_state_and_report() {
    for (id, locator) in [(LOCAL, "demo:"), (WEB, "https://docs.example/")] {
        let (_data, store) = store_with(id);
        assert_eq!(
            store.state(id).expect("state").status(),
            SessionStatus::Complete
        );
        let report = store
            .report(id)
            .expect("report")
            .expect("a report was written");
        assert!(!report.references.is_empty(), "{id}");
        for reference in &report.references {
            let place = match (&reference.locator.url, &reference.locator.path) {
                (Some(url), _) => url.clone(),
                (None, Some(path)) => format!(
                    "{}:{path}:{}",
                    reference.locator.collection.as_deref().unwrap_or(""),
                    reference.locator.start_line.unwrap_or(0)
                ),
                (None, None) => panic!("{id}: reference {} has no place", reference.n),
            };
            assert!(place.starts_with(locator), "{id}: {place}");
        }
        let markdown = report.to_markdown();
        // Citations link to their reference's anchor.
        assert!(markdown.contains("](#ref-"), "{id}: {markdown}");
        assert!(markdown.contains("<a id=\"ref-"), "{id}: {markdown}");
    }
}
