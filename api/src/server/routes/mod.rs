//! The handlers, one module per area.

pub mod grep;
pub mod jobs;
pub mod openai;
pub mod research;
pub mod search;
pub mod system;
pub mod users;
