//! A stream's bucket set and what changes in it: [`BucketSet`] (the buckets of the last
//! checkpoint sent, with checksums, priorities and the stream definitions they come from),
//! diffing two sets, and applying a change record. Pure: no I/O.
//!
//! Data positions and the sending of lines are in [`crate::stream::session`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferry_protocol::{
    BucketChecksum, BucketPriority, BucketSubscriptionReason, Checksum, StreamDescription,
};

use crate::db::{BucketState, ResolvedBucket};

/// What the client was told about one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Checksum at the stream's checkpoint.
    pub checksum: Checksum,
    /// Op count at the stream's checkpoint.
    pub count: u64,
    /// Priority.
    pub priority: BucketPriority,
    /// The bucket definition (stream) it comes from.
    pub definition: String,
}

/// The buckets of a stream, by id, plus the stream list the last full checkpoint announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketSet {
    /// Buckets by id (sorted, so lines are deterministic).
    pub buckets: BTreeMap<String, BucketInfo>,
    /// Definitions in the order of the checkpoint's `streams`; a bucket's subscription is
    /// `{"default": index}`.
    pub streams: Vec<String>,
}

/// The difference between two bucket sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketDiff {
    /// Added buckets, or buckets whose checksum, count or priority differ.
    pub updated: Vec<String>,
    /// Buckets no longer in the set.
    pub removed: Vec<String>,
}

impl BucketDiff {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.removed.is_empty()
    }
}

impl BucketSet {
    /// The set `ferry.checkpoint_for` resolved, with the stream list derived from it.
    pub fn from_resolved(resolved: &[ResolvedBucket]) -> BucketSet {
        let buckets: BTreeMap<String, BucketInfo> = resolved
            .iter()
            .map(|b| {
                (
                    b.bucket.clone(),
                    BucketInfo {
                        checksum: b.checksum,
                        count: b.count,
                        priority: b.priority,
                        definition: b.definition.clone(),
                    },
                )
            })
            .collect();
        let streams = buckets
            .values()
            .map(|b| b.definition.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        BucketSet { buckets, streams }
    }

    /// Whether every definition of `other` is in this set's stream list (so a diff can refer to
    /// it; otherwise a full checkpoint must be sent).
    pub fn knows_streams_of(&self, other: &BucketSet) -> bool {
        other
            .buckets
            .values()
            .all(|b| self.streams.contains(&b.definition))
    }

    /// The checkpoint line's entry for a bucket.
    pub fn entry(&self, bucket: &str) -> Option<BucketChecksum> {
        let info = self.buckets.get(bucket)?;
        let subscriptions = self
            .streams
            .iter()
            .position(|s| *s == info.definition)
            .map(|i| vec![BucketSubscriptionReason::Default(i)])
            .unwrap_or_default();
        Some(BucketChecksum {
            bucket: bucket.to_owned(),
            checksum: info.checksum,
            count: info.count,
            priority: info.priority,
            subscriptions,
        })
    }

    /// Every bucket's entry, sorted by id.
    pub fn entries(&self) -> Vec<BucketChecksum> {
        self.buckets.keys().filter_map(|b| self.entry(b)).collect()
    }

    /// The checkpoint line's `streams`.
    pub fn stream_descriptions(&self) -> Vec<StreamDescription> {
        self.streams
            .iter()
            .map(|name| StreamDescription {
                name: name.clone(),
                is_default: true,
                errors: vec![],
            })
            .collect()
    }

    /// Applies a change record's bucket states to the buckets this set has; returns the ids
    /// whose checksum or count changed. Buckets of other users are ignored.
    pub fn apply_changes(&mut self, changes: &HashMap<String, BucketState>) -> Vec<String> {
        let mut updated = Vec::new();
        for (name, state) in changes {
            if let Some(info) = self.buckets.get_mut(name) {
                if info.checksum != state.checksum || info.count != state.count {
                    info.checksum = state.checksum;
                    info.count = state.count;
                    updated.push(name.clone());
                }
            }
        }
        updated.sort();
        updated
    }
}

/// What changed from `old` to `new`.
pub fn diff(old: &BucketSet, new: &BucketSet) -> BucketDiff {
    let updated = new
        .buckets
        .iter()
        .filter(|(name, info)| old.buckets.get(*name) != Some(info))
        .map(|(name, _)| name.clone())
        .collect();
    let removed = old
        .buckets
        .keys()
        .filter(|name| !new.buckets.contains_key(*name))
        .cloned()
        .collect();
    BucketDiff { updated, removed }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(name: &str, definition: &str, checksum: u32, count: u64, p: u8) -> ResolvedBucket {
        ResolvedBucket {
            bucket: name.into(),
            definition: definition.into(),
            priority: BucketPriority::new(p).unwrap(),
            checksum: Checksum(checksum),
            count,
        }
    }

    fn set(buckets: &[ResolvedBucket]) -> BucketSet {
        BucketSet::from_resolved(buckets)
    }

    #[test]
    fn diff_reports_added_changed_and_removed_buckets() {
        let old = set(&[
            resolved("1#a[]", "a", 1, 1, 3),
            resolved("1#b[\"u\"]", "b", 2, 2, 1),
            resolved("1#c[]", "c", 3, 3, 3),
        ]);
        let new = set(&[
            resolved("1#a[]", "a", 1, 1, 3),
            resolved("1#b[\"u\"]", "b", 5, 3, 1),
            resolved("1#d[]", "d", 0, 0, 3),
        ]);
        let d = diff(&old, &new);
        assert_eq!(d.updated, ["1#b[\"u\"]", "1#d[]"]);
        assert_eq!(d.removed, ["1#c[]"]);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn priority_change_counts_as_update() {
        let old = set(&[resolved("x[]", "x", 1, 1, 3)]);
        let new = set(&[resolved("x[]", "x", 1, 1, 0)]);
        assert_eq!(diff(&old, &new).updated, ["x[]"]);
    }

    #[test]
    fn entries_carry_default_subscription_indexes() {
        let s = set(&[
            resolved("1#b[]", "beta", 7, 1, 1),
            resolved("1#a[]", "alpha", 1, 1, 3),
        ]);
        assert_eq!(s.streams, ["alpha", "beta"]);
        let entries = s.entries();
        assert_eq!(entries[0].bucket, "1#a[]");
        assert_eq!(
            entries[0].subscriptions,
            [BucketSubscriptionReason::Default(0)]
        );
        assert_eq!(
            entries[1].subscriptions,
            [BucketSubscriptionReason::Default(1)]
        );
        assert_eq!(entries[1].priority.get(), 1);
        assert!(s.stream_descriptions().iter().all(|d| d.is_default));
    }

    #[test]
    fn change_records_update_only_own_changed_buckets() {
        let mut s = set(&[resolved("a[]", "a", 1, 1, 3), resolved("b[]", "b", 2, 2, 3)]);
        let changes: HashMap<String, BucketState> = [
            ("a[]", 10u32, 2u64),
            ("b[]", 2, 2),
            ("someone_else[]", 5, 5),
        ]
        .into_iter()
        .map(|(n, c, k)| {
            (
                n.to_owned(),
                BucketState {
                    bucket: n.into(),
                    checksum: Checksum(c),
                    count: k,
                },
            )
        })
        .collect();
        assert_eq!(s.apply_changes(&changes), ["a[]"]);
        assert_eq!(s.buckets["a[]"].checksum, Checksum(10));
        assert!(!s.buckets.contains_key("someone_else[]"));
    }

    #[test]
    fn new_definition_needs_a_full_checkpoint() {
        let old = set(&[resolved("a[]", "a", 1, 1, 3)]);
        let new = set(&[resolved("a[]", "a", 1, 1, 3), resolved("b[]", "b", 1, 1, 3)]);
        assert!(!old.knows_streams_of(&new));
        assert!(new.knows_streams_of(&old));
    }
}
