//! End-to-end tests of the code index: real stores on disk, the real embedding model.

mod bad_inputs;
mod hybrid_literal;
mod incremental;
mod remote_embed;
mod server_cluster;
mod server_search;
mod server_state;
mod server_store;
mod support;
