//! Talking to the sync service over the network. Only HTTP is supported ([`http`]); the sync
//! logic itself ([`crate::sync`]) never sees a socket.

pub(crate) mod http;
