//! Research on code follows calls: for "how is X done", the report walks the flow along the call
//! edges between the code it found (a small type's chunk defining its methods included), each
//! step named, cited and described by its documentation.

use serde_json::Value;

use crate::{aiex, run_ok};

const QUESTION: &str = "How are chunks embedded and written to the vector store?";

/// A small indexing pipeline: `index_directory` → `embed_pending` → `write_batch` →
/// `VectorStore::upsert`, among other code.
const FILES: &[(&str, &str)] = &[
    (
        "src/pipeline.rs",
        "use crate::store::VectorStore;\n\
         \n\
         /// Indexes a directory: reads its files, cuts them into chunks, then embeds the chunks\n\
         /// and writes them to the vector store.\n\
         pub fn index_directory(root: &str, store: &mut dyn VectorStore) -> usize {\n\
         \x20   let files = read_files(root);\n\
         \x20   let pieces = cut_pieces(&files);\n\
         \x20   embed_pending(&pieces, store)\n\
         }\n\
         \n\
         /// Gives every piece that has no vector yet its vector, sixteen at a time.\n\
         fn embed_pending(pieces: &[Piece], store: &mut dyn VectorStore) -> usize {\n\
         \x20   let mut done = 0;\n\
         \x20   for group in pieces.chunks(16) {\n\
         \x20       done += write_batch(group, store);\n\
         \x20   }\n\
         \x20   done\n\
         }\n\
         \n\
         /// Turns one group of pieces into numbers and hands them over.\n\
         fn write_batch(group: &[Piece], store: &mut dyn VectorStore) -> usize {\n\
         \x20   let points = group.iter().map(|piece| (piece.id, numbers(&piece.text))).collect();\n\
         \x20   store.upsert(points)\n\
         }\n\
         \n\
         /// Lists the files under a root.\n\
         fn read_files(root: &str) -> Vec<String> {\n\
         \x20   vec![root.to_owned()]\n\
         }\n",
    ),
    (
        "src/store.rs",
        "use std::collections::HashMap;\n\
         \n\
         /// Where vectors are kept.\n\
         pub trait VectorStore {\n\
         \x20   /// Adds or replaces points by id; returns how many.\n\
         \x20   fn upsert(&mut self, points: Vec<(u64, Vec<f32>)>) -> usize;\n\
         }\n\
         \n\
         /// A vector store in memory.\n\
         pub struct MemoryStore {\n\
         \x20   points: HashMap<u64, Vec<f32>>,\n\
         }\n\
         \n\
         impl VectorStore for MemoryStore {\n\
         \x20   fn upsert(&mut self, points: Vec<(u64, Vec<f32>)>) -> usize {\n\
         \x20       let count = points.len();\n\
         \x20       self.points.extend(points);\n\
         \x20       count\n\
         \x20   }\n\
         }\n",
    ),
    (
        "src/config.rs",
        "/// Settings read from a file.\npub struct Settings {\n    pub path: String,\n    pub verbose: bool,\n}\n\n/// Reads the settings.\npub fn load_settings(path: &str) -> Settings {\n    Settings { path: path.to_owned(), verbose: false }\n}\n",
    ),
];

#[test]
fn code_research_walks_the_flow_along_calls_with_citations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let code = dir.path().join("code");
    aiex_tests::write_files(&code, FILES);
    run_ok(
        aiex(&data)
            .arg("index")
            .arg(&code)
            .args(["--name", "pipeline", "--no-embed"]),
    );
    let out = dir.path().join("report.json");
    run_ok(
        aiex(&data)
            .args(["research", QUESTION, "--collections", "pipeline", "--quiet"])
            .args(["--format", "json", "--out"])
            .arg(&out),
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    let sections: Vec<&str> = report["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .filter_map(|section| section["body"].as_str())
        .collect();
    let walk = sections
        .iter()
        .find_map(|body| body.split("Following the calls:\n").nth(1))
        .unwrap_or_else(|| panic!("no walk-through in {sections:#?}"));
    let steps: Vec<&str> = walk
        .lines()
        .take_while(|line| line.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    // Each step names the function and cites the passage that defines it.
    let references = report["references"].as_array().expect("references");
    let mut names = Vec::new();
    for step in &steps {
        // `1. `first` in `path` [n]: …`, then `2. `caller` calls `name` [n]: …`.
        let head = step.split(" [").next().unwrap_or_default();
        let name = head
            .rsplit(" calls ")
            .next()
            .and_then(|named| named.split('`').nth(1))
            .unwrap_or_else(|| panic!("step without a name: {step}"));
        let n: u64 = step
            .split('[')
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no citation in {step}"));
        let reference = references
            .iter()
            .find(|reference| reference["n"].as_u64() == Some(n))
            .unwrap_or_else(|| panic!("[{n}] is not a reference"));
        // The cited lines define the function (a small type's chunk holds its methods).
        let path = reference["path"]
            .as_str()
            .expect("a code reference has a path");
        let lines = |key: &str| reference[key].as_u64().expect("lines") as usize;
        let file = std::fs::read_to_string(code.join(path)).expect("cited file");
        let cited: Vec<&str> = file
            .lines()
            .skip(lines("start_line") - 1)
            .take(lines("end_line") + 1 - lines("start_line"))
            .collect();
        assert!(
            cited
                .iter()
                .any(|line| line.contains(&format!("fn {name}("))),
            "step `{name}` cites [{n}] ({path}:{}-{}), which does not define it",
            lines("start_line"),
            lines("end_line")
        );
        names.push(name.to_owned());
    }
    assert_eq!(
        names,
        ["index_directory", "embed_pending", "write_batch", "upsert"],
        "{walk}"
    );
    // The summary opens with the flow, cited.
    let summary = report["summary"].as_str().expect("summary");
    assert!(
        summary.starts_with("In the code, `index_directory` ["),
        "{summary}"
    );
    assert!(summary.contains("which calls `upsert` ["), "{summary}");
    assert!(
        steps[1].contains("Gives every piece that has no vector yet its vector"),
        "a step says what its function does: {}",
        steps[1]
    );
}
