//! ferry-gateway: the stateless sync server (work in progress).
#![forbid(unsafe_code)]
