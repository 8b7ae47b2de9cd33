//! The sync stream engine (PROTOCOL.md §3.3–§3.5): per connection, which buckets the client has,
//! what changed, which data to send in which order, and when to send keepalives.
//!
//! | module | holds |
//! | --- | --- |
//! | [`session`] | [`Session`]: the async driver of one stream (queries, lines, waiting) |
//! | [`buckets`] | the stream's bucket set, diffs, applying change records (pure) |
//! | [`batching`] | priority groups, op rows → `data` lines, positions, `has_more` (pure) |
//! | [`keepalive`] | `token_expires_in` timing (pure) |
//!
//! The HTTP route is [`crate::routes::sync_stream`]; the per-process checkpoint watcher feeding
//! every session is [`crate::checkpoint_watch`].

pub mod batching;
pub mod buckets;
pub mod keepalive;
pub mod session;

pub use session::{Session, SessionContext, StreamEnd};
