//! Completions shared across miners (§15, check 9). Every miner answers its
//! own problems, so two miners whose files share many completions copied
//! them from each other (or from a common source); the validator cannot
//! tell who copied, so both are flagged.
use std::collections::{HashMap, HashSet};

use grail_core::hash::Digest;

use super::policy::{COPYCAT_FRACTION, COPYCAT_MIN_SHARED};
use super::Reject;

/// For each miner (hotkey with its distinct completion digests), the
/// copycat rejection if it shares too much with another miner: the other
/// miner sharing the most.
pub fn copycats(miners: &[([u8; 32], &[Digest])]) -> HashMap<[u8; 32], Reject> {
    let sets: Vec<HashSet<&Digest>> = miners.iter().map(|(_, d)| d.iter().collect()).collect();
    let mut out: HashMap<[u8; 32], Reject> = HashMap::new();
    for a in 0..miners.len() {
        for b in a + 1..miners.len() {
            let shared = sets[a].intersection(&sets[b]).count() as u32;
            if shared <= COPYCAT_MIN_SHARED {
                continue;
            }
            for (me, other) in [(a, b), (b, a)] {
                let fraction = f64::from(shared) / sets[me].len().max(1) as f64;
                let beats = match out.get(&miners[me].0) {
                    Some(Reject::Copycat { shared: s, .. }) => shared > *s,
                    _ => true,
                };
                if fraction > COPYCAT_FRACTION && beats {
                    out.insert(
                        miners[me].0,
                        Reject::Copycat {
                            other: miners[other].0,
                            shared,
                            fraction,
                        },
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(i: u32) -> Digest {
        let mut x = [0u8; 32];
        x[..4].copy_from_slice(&i.to_le_bytes());
        x
    }

    #[test]
    fn sharing_flags_both_and_independent_miners_pass() {
        let a: Vec<Digest> = (0..32).map(d).collect();
        let b: Vec<Digest> = (16..48).map(d).collect();
        let c: Vec<Digest> = (100..132).map(d).collect();
        let flagged = copycats(&[([1; 32], &a), ([2; 32], &b), ([3; 32], &c)]);
        assert_eq!(flagged.len(), 2);
        assert!(matches!(
            flagged[&[1; 32]],
            Reject::Copycat { other, shared: 16, .. } if other == [2; 32]
        ));
        assert!(matches!(flagged[&[2; 32]], Reject::Copycat { other, .. } if other == [1; 32]));
    }

    #[test]
    fn a_few_coincidences_are_tolerated() {
        let a: Vec<Digest> = (0..32).map(d).collect();
        let b: Vec<Digest> = (30..62).map(d).collect(); // 2 shared
        assert!(copycats(&[([1; 32], &a), ([2; 32], &b)]).is_empty());
        // 3 shared out of 1000: above the count, below the fraction
        let a: Vec<Digest> = (0..1000).map(d).collect();
        let b: Vec<Digest> = (997..1997).map(d).collect();
        assert!(copycats(&[([1; 32], &a), ([2; 32], &b)]).is_empty());
    }
}
