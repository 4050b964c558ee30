//! Integration tests of the search coordinator.

mod coordinator;
mod local;
#[path = "../web/mod.rs"]
mod web;
