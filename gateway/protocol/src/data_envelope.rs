//! [`DataEnvelope`]: the `{"data": <result>}` wrapper of every successful non-streaming response
//! (PROTOCOL.md §3.7). The results themselves are in [`crate::write_checkpoint`] and
//! [`crate::crud`]; errors use [`crate::error_envelope`] instead.

use serde::{Deserialize, Serialize};

/// `{"data": T}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataEnvelope<T> {
    /// The result.
    pub data: T,
}

impl<T> DataEnvelope<T> {
    /// Wraps a result.
    pub fn new(data: T) -> DataEnvelope<T> {
        DataEnvelope { data }
    }

    /// Unwraps the result.
    pub fn into_inner(self) -> T {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_envelope_wraps_any_result() {
        let json = serde_json::to_string(&DataEnvelope::new(vec![1, 2])).unwrap();
        assert_eq!(json, r#"{"data":[1,2]}"#);
        let back: DataEnvelope<Vec<u8>> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_inner(), vec![1, 2]);
    }
}
