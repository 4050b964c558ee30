//! Point payloads: what a hit shows (path, lines, symbol, parent, bounded text), written with
//! each point and read back into chunks.

use std::collections::HashMap;

use qdrant_client::qdrant::{value::Kind, Value};
use qdrant_client::Payload;

use super::{CHUNK_ID_FIELD, MAX_PAYLOAD_TEXT, TENANT_FIELD};
use crate::chunk::ChunkKind;
use crate::document::Chunk;
use crate::lang::Language;
use crate::store::vector::VectorPoint;

pub(super) fn payload_of(tenant: &str, point: &VectorPoint) -> Payload {
    let p = &point.payload;
    let mut payload = Payload::with_capacity(10);
    payload.insert(TENANT_FIELD, tenant);
    payload.insert(CHUNK_ID_FIELD, point.id.to_string());
    payload.insert("path", p.path.clone());
    payload.insert("language", p.language.clone());
    if let Some(symbol) = &p.symbol {
        payload.insert("symbol", symbol.clone());
    }
    payload.insert("kind", p.kind.clone());
    payload.insert("start_line", i64::from(p.start_line));
    payload.insert("end_line", i64::from(p.end_line));
    payload.insert("hash", p.hash.clone());
    payload
}

/// The payload of a chunk's point: what filters and what a hit shows.
pub(super) fn chunk_payload(tenant: &str, chunk: &Chunk) -> Payload {
    let mut payload = Payload::with_capacity(12);
    payload.insert(TENANT_FIELD, tenant);
    payload.insert(CHUNK_ID_FIELD, chunk.id.to_string());
    payload.insert("path", chunk.path.clone());
    payload.insert("language", chunk.language.name());
    if let Some(symbol) = &chunk.symbol {
        payload.insert("symbol", symbol.clone());
    }
    if let Some(parent) = &chunk.parent {
        payload.insert("parent", parent.clone());
    }
    payload.insert("kind", chunk.kind.name());
    payload.insert("start_line", i64::from(chunk.start_line));
    payload.insert("end_line", i64::from(chunk.end_line));
    payload.insert("hash", chunk.hash.clone());
    payload.insert("text", bounded(&chunk.text, MAX_PAYLOAD_TEXT));
    payload
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(super) fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(super) fn string_field<'p>(
    payload: &'p HashMap<String, Value>,
    field: &str,
) -> Option<&'p str> {
    match payload.get(field)?.kind.as_ref()? {
        Kind::StringValue(text) => Some(text),
        _ => None,
    }
}

pub(super) fn line_field(payload: &HashMap<String, Value>, field: &str) -> Option<u32> {
    match payload.get(field)?.kind.as_ref()? {
        Kind::IntegerValue(line) => u32::try_from(*line).ok(),
        _ => None,
    }
}

/// The chunk a point's payload describes (its text as bounded there; collection left empty: the
/// caller knows the tenant). None for a point without the chunk fields.
pub(crate) fn chunk_of(payload: &HashMap<String, Value>) -> Option<Chunk> {
    let owned = |field: &str| string_field(payload, field).map(str::to_string);
    Some(Chunk {
        id: chunk_id_of(payload)?,
        collection: String::new(),
        path: owned("path")?,
        language: Language::from_name(string_field(payload, "language")?)?,
        symbol: owned("symbol"),
        kind: ChunkKind::from_name(string_field(payload, "kind")?)?,
        parent: owned("parent"),
        start_line: line_field(payload, "start_line")?,
        end_line: line_field(payload, "end_line")?,
        hash: owned("hash").unwrap_or_default(),
        text: owned("text").unwrap_or_default(),
    })
}

pub(super) fn chunk_id_of(payload: &HashMap<String, Value>) -> Option<u64> {
    match payload.get(CHUNK_ID_FIELD)?.kind.as_ref()? {
        Kind::StringValue(text) => text.parse().ok(),
        _ => None,
    }
}
