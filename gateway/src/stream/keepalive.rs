//! When to send `token_expires_in` (PROTOCOL.md §3.5), as pure arithmetic: about every
//! `interval` (randomized ±10%), not at connect, once more when the token is within 20 s of
//! expiry, and a final `0` at expiry, after which the stream ends.

use std::time::Duration;

/// The token is announced once more when it has this many seconds left.
pub const FINAL_WARNING_SECS: f64 = 20.0;

/// Seconds until the next keepalive, for a token with `remaining` seconds left, a base
/// `interval` and a `jitter` in `[-0.1, 0.1]`.
pub fn next_delay(remaining: f64, interval: Duration, jitter: f64) -> Duration {
    if remaining <= 0.0 {
        return Duration::ZERO;
    }
    let regular = interval.as_secs_f64() * (1.0 + jitter.clamp(-0.1, 0.1));
    let delay = if remaining > FINAL_WARNING_SECS {
        regular.min(remaining - FINAL_WARNING_SECS)
    } else {
        regular.min(remaining)
    };
    Duration::from_secs_f64(delay.max(0.0))
}

/// The value of a `token_expires_in` line: remaining seconds rounded up, never negative.
pub fn expires_in_value(remaining: f64) -> i64 {
    if remaining <= 0.0 {
        0
    } else {
        remaining.ceil() as i64
    }
}

/// A jitter in `[-0.1, 0.1]` from a seed (no random number generator needed for this).
pub fn jitter(seed: u64) -> f64 {
    // SplitMix64 step.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % 2001) as f64 / 10_000.0 - 0.1
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWENTY: Duration = Duration::from_secs(20);

    #[test]
    fn regular_keepalives_come_about_every_interval() {
        assert_eq!(next_delay(3600.0, TWENTY, 0.0), TWENTY);
        let d = next_delay(3600.0, TWENTY, 0.1).as_secs_f64();
        assert!((d - 22.0).abs() < 1e-9, "{d}");
    }

    #[test]
    fn a_final_warning_is_sent_twenty_seconds_before_expiry() {
        assert_eq!(next_delay(30.0, TWENTY, 0.0), Duration::from_secs(10));
        assert_eq!(next_delay(20.0, TWENTY, 0.0), TWENTY);
        assert_eq!(next_delay(5.0, TWENTY, 0.0), Duration::from_secs(5));
        assert_eq!(next_delay(0.0, TWENTY, 0.0), Duration::ZERO);
        assert_eq!(next_delay(-4.0, TWENTY, 0.0), Duration::ZERO);
    }

    #[test]
    fn expires_in_rounds_up_and_stops_at_zero() {
        assert_eq!(expires_in_value(3579.2), 3580);
        assert_eq!(expires_in_value(0.0), 0);
        assert_eq!(expires_in_value(-3.0), 0);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for seed in 0..1000 {
            let j = jitter(seed);
            assert!((-0.1..=0.1).contains(&j), "{j}");
        }
        assert_ne!(jitter(1), jitter(2));
    }
}
