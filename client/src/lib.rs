//! ferry-client: the offline-first SQLite client (work in progress).
#![forbid(unsafe_code)]
