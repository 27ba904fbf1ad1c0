//! What a run leaves behind: the clients' history of operations (`history`), the journal the world
//! writes its harness events to (`journal`), and the trace read back as typed events (`trace`).

pub mod history;
pub mod journal;
pub mod trace;
