//! A/B splits: which branch of a `split` node a session takes.
//!
//! The choice is a pure function of the flow id, the node name and the session id, so every
//! replica (and every retry of a webhook) sends a session down the same branch without
//! coordination, and two split nodes in one flow choose independently of each other. The hash
//! is fixed and documented (`docs/flows.md`, "A/B splits"), never the standard library's
//! randomly keyed one: it must agree across processes and releases.

use crate::model::{Split, Target};

/// FNV-1a, 64 bits, over `flow`, a zero byte, `node`, a zero byte and `session`; then
/// MurmurHash3's 64-bit finalizer, because FNV-1a's low bits are weak (the lowest is the parity
/// of the input bytes) and the bucket depends on all of them.
pub fn split_hash(flow: &str, node: &str, session: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let parts = [
        flow.as_bytes(),
        &[0],
        node.as_bytes(),
        &[0],
        session.as_bytes(),
    ];
    for byte in parts.into_iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

impl Split {
    /// The branch for `session` at node `node` of flow `flow`: the hash mapped onto
    /// `0..total` (by its high bits, multiply-shift), then the first branch whose running sum
    /// of weights passes it.
    pub fn choose(&self, flow: &str, node: &str, session: &str) -> Target {
        let hash = split_hash(flow, node, session);
        let bucket = ((u128::from(hash) * u128::from(self.total)) >> 64) as u32;
        let mut sum = 0;
        for (weight, target) in &self.branches {
            sum += weight;
            if bucket < sum {
                return *target;
            }
        }
        // Unreachable for a compiled split (the weights sum to `total`); the last branch is a
        // safe answer all the same.
        self.branches.last().map_or(Target::Hangup, |(_, t)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(weights: &[u32]) -> Split {
        Split {
            branches: weights
                .iter()
                .enumerate()
                .map(|(i, w)| (*w, Target::Node(i as u16)))
                .collect(),
            total: weights.iter().sum(),
        }
    }

    fn counts(split: &Split, sessions: usize) -> Vec<usize> {
        let mut counts = vec![0; split.branches.len()];
        for i in 0..sessions {
            // Ids shaped like the platform's (UUIDs), differing in a few characters only.
            let session = format!("6f2b9c1e-0d4a-4c7e-9a1b-{i:012x}");
            match split.choose("shop", "ab", &session) {
                Target::Node(n) => counts[usize::from(n)] += 1,
                other => panic!("a split chose {other:?}"),
            }
        }
        counts
    }

    #[test]
    fn branches_get_their_share_of_sessions() {
        let sessions = 20_000;
        for weights in [
            &[70, 30][..],
            &[1, 1],
            &[50, 25, 25],
            &[1, 9],
            &[1, 1, 1, 1, 1],
        ] {
            let s = split(weights);
            let counts = counts(&s, sessions);
            for (count, weight) in counts.iter().zip(weights) {
                let expected = sessions as f64 * f64::from(*weight) / f64::from(s.total);
                // Binomial spread: well under 5 standard deviations for these sizes.
                let sd = (expected * (1.0 - f64::from(*weight) / f64::from(s.total))).sqrt();
                assert!(
                    (*count as f64 - expected).abs() < 5.0 * sd + 1.0,
                    "weights {weights:?}: {counts:?}"
                );
            }
        }
    }

    #[test]
    fn a_session_always_takes_the_same_branch() {
        let s = split(&[70, 30]);
        for i in 0..1000 {
            let session = format!("session-{i}");
            let first = s.choose("shop", "ab", &session);
            assert_eq!(s.choose("shop", "ab", &session), first);
        }
    }

    #[test]
    fn the_hash_is_fixed() {
        // Pinned: a changed hash would move live sessions between branches across a rolling
        // upgrade and skew every running experiment.
        // (Computed independently from the documented definition.)
        assert_eq!(split_hash("shop", "ab", "abc"), 0xc7c3_4c0f_9de6_9b74);
    }

    #[test]
    fn two_splits_of_a_flow_choose_independently() {
        let s = split(&[1, 1]);
        let same = (0..10_000)
            .filter(|i| {
                let session = format!("s{i}");
                s.choose("shop", "first", &session) == s.choose("shop", "second", &session)
            })
            .count();
        assert!((4_500..5_500).contains(&same), "{same} of 10000 agree");
    }
}
