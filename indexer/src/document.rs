//! An indexed chunk: a [`RawChunk`] placed in a collection and a file, with
//! its identity.

use serde::Serialize;

use crate::chunk::{ChunkKind, RawChunk};
use crate::lang::Language;

/// A chunk as both stores know it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chunk {
    /// Stable identity: derived from the path, the content hash and the occurrence of that hash in
    /// the file, so a chunk that only moves (lines above it changed) keeps its id and its vector.
    pub id: u64,
    pub collection: String,
    /// Path relative to the collection root, `/`-separated.
    pub path: String,
    pub language: Language,
    pub symbol: Option<String>,
    pub kind: ChunkKind,
    /// Enclosing context, such as `impl Parser` or a heading path.
    pub parent: Option<String>,
    pub start_line: u32,
    pub end_line: u32,
    /// blake3 of [`Chunk::embedding_text`], hex.
    pub hash: String,
    pub text: String,
}

impl Chunk {
    /// Places the raw chunks of one file. `occurrence` disambiguates identical chunks in one file.
    pub fn from_raw_chunks(
        collection: &str,
        path: &str,
        language: Language,
        raw_chunks: Vec<RawChunk>,
    ) -> Vec<Chunk> {
        let mut seen: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
        raw_chunks
            .into_iter()
            .map(|raw| {
                let embedding_text = embedding_text(
                    path,
                    raw.parent.as_deref(),
                    raw.kind,
                    raw.symbol.as_deref(),
                    &raw.text,
                );
                let hash = blake3::hash(embedding_text.as_bytes()).to_hex().to_string();
                let occurrence = seen.entry(hash.clone()).or_default();
                let id = chunk_id(path, &hash, *occurrence);
                *occurrence += 1;
                Chunk {
                    id,
                    collection: collection.to_string(),
                    path: path.to_string(),
                    language,
                    symbol: raw.symbol,
                    kind: raw.kind,
                    parent: raw.parent,
                    start_line: raw.start_line,
                    end_line: raw.end_line,
                    hash,
                    text: raw.text,
                }
            })
            .collect()
    }

    /// The text given to the embedding model: the path and the parent context situate the code, so
    /// that a method named `new` in `impl Parser` of `src/toml/parser.rs` is found by meaning.
    pub fn embedding_text(&self) -> String {
        embedding_text(
            &self.path,
            self.parent.as_deref(),
            self.kind,
            self.symbol.as_deref(),
            &self.text,
        )
    }
}

fn embedding_text(
    path: &str,
    parent: Option<&str>,
    kind: ChunkKind,
    symbol: Option<&str>,
    text: &str,
) -> String {
    let mut out = String::with_capacity(path.len() + text.len() + 64);
    out.push_str(path);
    if let Some(parent) = parent {
        out.push_str(" > ");
        out.push_str(parent);
    }
    if let Some(symbol) = symbol {
        out.push_str(" > ");
        out.push_str(kind.name());
        out.push(' ');
        out.push_str(symbol);
    }
    out.push('\n');
    out.push_str(text);
    out
}

/// 63-bit id (positive as i64 too, which keeps it valid for every Qdrant client).
fn chunk_id(path: &str, hash: &str, occurrence: u32) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(path.as_bytes());
    hasher.update(&[0]);
    hasher.update(hash.as_bytes());
    hasher.update(&occurrence.to_le_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(bytes) >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str, start_line: u32) -> RawChunk {
        RawChunk {
            symbol: Some("f".into()),
            kind: ChunkKind::Function,
            parent: None,
            start_line,
            end_line: start_line,
            start_byte: 0,
            end_byte: text.len(),
            text: text.into(),
        }
    }

    #[test]
    fn ids_survive_moves_and_separate_duplicates() {
        let before = Chunk::from_raw_chunks("c", "a.rs", Language::Rust, vec![raw("fn f() {}", 1)]);
        let after = Chunk::from_raw_chunks(
            "c",
            "a.rs",
            Language::Rust,
            vec![
                raw("fn g() {}", 1),
                raw("fn f() {}", 5),
                raw("fn f() {}", 9),
            ],
        );
        assert_eq!(before[0].id, after[1].id);
        assert_ne!(after[1].id, after[2].id);
        assert_eq!(after[1].hash, after[2].hash);
        let renamed =
            Chunk::from_raw_chunks("c", "b.rs", Language::Rust, vec![raw("fn f() {}", 1)]);
        assert_ne!(before[0].id, renamed[0].id);
        assert!(before[0]
            .embedding_text()
            .starts_with("a.rs > function f\n"));
    }
}
