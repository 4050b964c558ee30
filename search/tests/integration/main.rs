//! Integration tests of the search coordinator.

mod coordinator;
mod crawl;
mod fetch;
mod local;
#[path = "../web/mod.rs"]
mod web;
