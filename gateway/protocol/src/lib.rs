//! `ferry-protocol`: the one definition of ferry's wire format, the PowerSync sync protocol
//! (PROTOCOL.md §3), shared by the gateway (which serializes responses and parses requests), the
//! client (the reverse) and the tests.
//!
//! It holds serde types for every request and response message, the NDJSON framing of the sync
//! stream, and nothing else: no I/O, no HTTP, no checksum hashing, no sync state machine.
//!
//! | module | holds |
//! | --- | --- |
//! | [`request`] | the `POST /sync/stream` body, [`StreamingSyncRequest`] |
//! | [`line`](mod@line) | [`SyncLine`], one response line of any type (unknown types kept, not rejected) |
//! | [`checkpoint`] | `checkpoint`, `checkpoint_diff`, `checkpoint_complete`, `partial_checkpoint_complete` |
//! | [`data_line`] | the `data` line, [`DataLine`] |
//! | [`op`] | one op of a bucket, [`OplogEntry`] (PUT / REMOVE / MOVE / CLEAR) |
//! | [`keepalive`] | the `token_expires_in` line, [`TokenExpiresIn`] |
//! | [`op_id`] | [`OpId`], 64-bit, a decimal string on the wire |
//! | [`checksum`] | [`Checksum`], 32-bit, wrapping sums, signed input accepted |
//! | [`priority`] | [`BucketPriority`], 0..=3 |
//! | [`ndjson`] | [`LineSplitter`], [`SyncLineDecoder`], [`encode_line`] |
//! | [`write_checkpoint`] | bodies of `/write-checkpoint2.json` and `/sync/checkpoint-request` |
//! | [`data_envelope`] | the `{"data": ...}` wrapper of non-streaming results, [`DataEnvelope`] |
//! | [`error_envelope`] | the `{"error": ...}` body and the `PSYNC_*` codes, [`ErrorEnvelope`], [`ErrorCode`] |
//! | [`crud`] | queued local writes and ferry's upload request, [`CrudEntry`], [`CrudTransaction`] |
//! | [`error`] | this crate's error type, [`ProtocolError`] |
//!
//! Conventions on input: unknown fields are ignored, op ids and other 64-bit counters are accepted
//! as decimal strings or JSON integers, checksums as signed or unsigned 32-bit integers. On output:
//! ids are decimal strings and checksums unsigned.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checkpoint;
pub mod checksum;
pub mod crud;
pub mod data_envelope;
pub mod data_line;
mod decimal;
pub mod error;
pub mod error_envelope;
pub mod keepalive;
pub mod line;
pub mod ndjson;
pub mod op;
pub mod op_id;
pub mod priority;
pub mod request;
pub mod write_checkpoint;

pub use checkpoint::{
    BucketChecksum, BucketSubscriptionReason, Checkpoint, CheckpointComplete, CheckpointDiff,
    PartialCheckpointComplete, StreamDescription, StreamSubscriptionError, SubscriptionRef,
};
pub use checksum::Checksum;
pub use crud::{CrudEntry, CrudOp, CrudTransaction, UploadResult};
pub use data_envelope::DataEnvelope;
pub use data_line::DataLine;
pub use error::ProtocolError;
pub use error_envelope::{ErrorBody, ErrorCode, ErrorEnvelope};
pub use keepalive::TokenExpiresIn;
pub use line::SyncLine;
pub use ndjson::{encode_line, LineSplitter, RawLine, SyncLineDecoder, DEFAULT_MAX_LINE_LEN};
pub use op::{OpKind, OpType, OplogEntry, RowKey};
pub use op_id::OpId;
pub use priority::BucketPriority;
pub use request::{
    BucketRequest, RequestedStreamSubscription, StreamSubscriptionRequest, StreamingSyncRequest,
};
pub use write_checkpoint::{
    CheckpointRequest, CheckpointRequestResponse, WriteCheckpointQuery, WriteCheckpointResponse,
};
