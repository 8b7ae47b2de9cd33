//! [`TokenExpiresIn`]: the `token_expires_in` keepalive line (PROTOCOL.md §3.5).

use serde::{Deserialize, Serialize};

/// Seconds until the client's token expires, sent about every 20 s. `0` (or less) means it has
/// expired and the stream ends. Serialized as a bare integer: `{"token_expires_in":3580}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenExpiresIn(pub i64);

impl TokenExpiresIn {
    /// The token has expired: close the stream and fetch new credentials.
    pub fn is_expired(self) -> bool {
        self.0 <= 0
    }

    /// The token expires within 30 s: fetch new credentials now, without disconnecting.
    pub fn should_prefetch(self) -> bool {
        !self.is_expired() && self.0 <= 30
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_expiry_thresholds_follow_the_protocol() {
        assert!(TokenExpiresIn(0).is_expired());
        assert!(TokenExpiresIn(-3).is_expired());
        assert!(TokenExpiresIn(30).should_prefetch());
        assert!(!TokenExpiresIn(31).should_prefetch());
        assert!(!TokenExpiresIn(0).should_prefetch());
    }

    #[test]
    fn token_expires_in_is_a_bare_integer() {
        assert_eq!(
            serde_json::to_string(&TokenExpiresIn(3580)).unwrap(),
            "3580"
        );
        assert_eq!(
            serde_json::from_str::<TokenExpiresIn>("20").unwrap(),
            TokenExpiresIn(20)
        );
    }
}
