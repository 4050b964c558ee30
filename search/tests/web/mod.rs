//! Integration tests of the web-search provider clients against local stand-ins that serve the
//! providers' exact formats (`design/WIRE.md`).
//!
//! Mounted as a module (`#[path = "../web/mod.rs"] mod web;`) of a test binary; children reach
//! the crate through `super::crate_under_test`.

#![allow(clippy::unwrap_used)]

// The crate under test: the one line to change when these tests move between crates.
use aiex_search as crate_under_test;

mod fallback;
mod resilience;
mod searxng;
mod serper;
mod support;
mod tavily;
