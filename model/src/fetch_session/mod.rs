//! Fetch sessions (KIP-227): a fetcher that asks for the same partitions again and again sends
//! them once, then only what changed, and the leader answers only what has news.
//!
//! The leader keeps each session's partitions and what it last told of each ([`cache`]); the
//! fetcher keeps what it last sent ([`handler`]). A session is named by an id the leader gives and
//! an epoch both sides count: a request whose epoch is not the one the leader expects, or whose
//! session the leader no longer has (evicted, or lost in a restart), is refused as a whole, and the
//! fetcher starts over with a full fetch.

pub mod cache;
pub mod handler;

/// The epoch that asks for a new session (closing the named one, if any).
pub const INITIAL_EPOCH: i32 = 0;
/// The epoch of a fetch outside any session: full, and nothing kept.
pub const FINAL_EPOCH: i32 = -1;
/// No session.
pub const NO_SESSION: i32 = 0;

/// The session named is not (or no longer) in the leader's cache.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// The session exists, but the request's epoch is not the one the leader expects next.
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// The epoch after `epoch`: epochs wrap from the largest back to 1, never to the two that mean
/// something else.
pub fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}
