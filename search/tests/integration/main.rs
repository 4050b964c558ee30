//! Integration tests of the search coordinator.

mod coordinator;
mod local;
