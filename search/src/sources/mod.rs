//! The sources: local collections (code, docs) and the web providers.

pub mod local;
pub mod web;
