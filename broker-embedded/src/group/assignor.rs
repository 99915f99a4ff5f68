//! Partition assignment strategies (`partition.assignment.strategy`): Kafka's `range`
//! (eager protocol) and `cooperative-sticky` (incremental cooperative protocol).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{BrokerError, Result};
use crate::TopicPartition;

/// `partition.assignment.strategy`: how the partitions of the subscribed topics are spread
/// over the members of a group, and which rebalance protocol goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AssignmentStrategy {
    /// `range` (Kafka's `RangeAssignor`, the default): for each topic, the members subscribed
    /// to it, sorted by member id, get consecutive ranges of its partitions; the first
    /// `partitions % members` get one more. Eager protocol: every member gives up all its
    /// partitions before it rejoins.
    #[default]
    Range,
    /// `cooperative-sticky` (Kafka's `CooperativeStickyAssignor`): a balanced assignment that
    /// keeps as many partitions where they are as possible. Incremental cooperative
    /// protocol: members keep their partitions during a rebalance; a partition that moves is
    /// first revoked by its owner, and assigned to its new owner in a follow-up rebalance.
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// Parses `range` or `cooperative-sticky` (Kafka's Java class names are accepted too).
    pub fn parse(value: &str) -> Result<Self> {
        match value.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => {
                Ok(AssignmentStrategy::Range)
            }
            "cooperative-sticky"
            | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                Ok(AssignmentStrategy::CooperativeSticky)
            }
            _ => Err(BrokerError::InvalidConfig {
                key: "partition.assignment.strategy".to_owned(),
                value: value.to_owned(),
                reason: "expected range or cooperative-sticky".to_owned(),
            }),
        }
    }

    /// The protocol name, as Kafka's assignors report it.
    pub fn name(self) -> &'static str {
        match self {
            AssignmentStrategy::Range => "range",
            AssignmentStrategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether the strategy uses the incremental cooperative rebalance protocol.
    pub fn is_cooperative(self) -> bool {
        matches!(self, AssignmentStrategy::CooperativeSticky)
    }
}

impl std::fmt::Display for AssignmentStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One member as an assignor sees it.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemberInput {
    /// Subscribed topics.
    pub(crate) topics: BTreeSet<String>,
    /// Partitions the member owns now (reported when it joined; empty under the eager
    /// protocol).
    pub(crate) owned: Vec<TopicPartition>,
}

/// Member id to its partitions, each list sorted.
pub(crate) type Assignment = BTreeMap<String, Vec<TopicPartition>>;

/// Kafka's `RangeAssignor`.
pub(crate) fn range(
    members: &BTreeMap<String, MemberInput>,
    partition_counts: &BTreeMap<String, u32>,
) -> Assignment {
    let mut out: Assignment = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    for (topic, &count) in partition_counts {
        // Members are sorted by member id, as Kafka sorts them (no group.instance.id here).
        let consumers: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.topics.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if consumers.is_empty() {
            continue;
        }
        let n = consumers.len() as u32;
        let per = count / n;
        let extra = count % n;
        for (i, member) in consumers.into_iter().enumerate() {
            let i = i as u32;
            let start = per * i + i.min(extra);
            let len = per + u32::from(i < extra);
            if let Some(list) = out.get_mut(member) {
                list.extend((start..start + len).map(|p| TopicPartition::new(topic.as_str(), p)));
            }
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

/// A sticky, balanced assignment (the assignment half of Kafka's `CooperativeStickyAssignor`).
///
/// 1. Every member keeps the partitions it owns that still exist, that it is still subscribed
///    to, and that no member earlier in member-id order also claims.
/// 2. Partitions nobody keeps go, one at a time, to the subscribed member with the fewest
///    partitions (ties by member id).
/// 3. While some member has two or more partitions more than a member that could take one of
///    them, one partition moves from the fullest to the emptiest, preferring a partition the
///    giver did not own before (so a move costs nothing).
///
/// With identical subscriptions the result is balanced within one, and the number of owned
/// partitions that change member is the minimum any balanced assignment needs.
pub(crate) fn sticky(
    members: &BTreeMap<String, MemberInput>,
    partition_counts: &BTreeMap<String, u32>,
) -> Assignment {
    let exists = |tp: &TopicPartition| {
        partition_counts
            .get(&tp.topic)
            .is_some_and(|&n| tp.partition < n)
    };
    let mut out: Assignment = members.keys().map(|m| (m.clone(), Vec::new())).collect();
    // Which partitions each member owned before (to prefer moving fresh ones).
    let mut previously: BTreeMap<&str, BTreeSet<&TopicPartition>> = BTreeMap::new();
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();

    // 1. Keep valid owned partitions.
    for (id, member) in members {
        let mut owned: Vec<&TopicPartition> = member.owned.iter().collect();
        owned.sort();
        owned.dedup();
        for tp in owned {
            if exists(tp) && member.topics.contains(&tp.topic) && taken.insert(tp.clone()) {
                previously.entry(id.as_str()).or_default().insert(tp);
                if let Some(list) = out.get_mut(id) {
                    list.push(tp.clone());
                }
            }
        }
    }

    // 2. Hand out the rest to the least loaded subscriber.
    for (topic, &count) in partition_counts {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.topics.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..count {
            let tp = TopicPartition::new(topic.as_str(), p);
            if taken.contains(&tp) {
                continue;
            }
            let target = subscribers
                .iter()
                .min_by_key(|id| (out.get(id.as_str()).map_or(0, Vec::len), id.as_str()));
            if let Some(target) = target {
                taken.insert(tp.clone());
                if let Some(list) = out.get_mut(target.as_str()) {
                    list.push(tp);
                }
            }
        }
    }

    // 3. Balance: move from the fullest to the emptiest eligible member.
    loop {
        let mut order: Vec<(usize, &String)> =
            out.iter().map(|(id, list)| (list.len(), id)).collect();
        order.sort();
        let mut moved = None;
        'search: for &(high, giver) in order.iter().rev() {
            for &(low, taker) in order.iter() {
                if high < low + 2 {
                    break;
                }
                let Some(taker_topics) = members.get(taker).map(|m| &m.topics) else {
                    continue;
                };
                let Some(list) = out.get(giver) else { continue };
                let owned_before = previously.get(giver.as_str());
                let candidates = list
                    .iter()
                    .enumerate()
                    .filter(|(_, tp)| taker_topics.contains(&tp.topic));
                // A partition the giver did not own before costs nothing to move; among
                // those of equal cost, take the last one.
                let pick = candidates
                    .max_by_key(|(i, tp)| (!owned_before.is_some_and(|s| s.contains(tp)), *i));
                if let Some((i, _)) = pick {
                    moved = Some((giver.clone(), taker.clone(), i));
                    break 'search;
                }
            }
        }
        let Some((giver, taker, i)) = moved else {
            break;
        };
        let tp = match out.get_mut(&giver) {
            Some(list) => list.remove(i),
            None => break,
        };
        if let Some(list) = out.get_mut(&taker) {
            list.push(tp);
        }
    }

    for list in out.values_mut() {
        list.sort();
    }
    out
}

/// The cooperative half of `CooperativeStickyAssignor`: a partition that would move from a
/// member that still owns it to another member is left out of this generation's assignment.
/// Its owner then revokes it (it is no longer in its assignment) and rejoins, and the
/// follow-up rebalance assigns it to its new member. So no partition is ever owned by two
/// members at once.
pub(crate) fn cooperative_adjust(
    target: Assignment,
    members: &BTreeMap<String, MemberInput>,
) -> Assignment {
    let mut claimants: BTreeMap<&TopicPartition, BTreeSet<&str>> = BTreeMap::new();
    for (id, member) in members {
        for tp in &member.owned {
            claimants.entry(tp).or_default().insert(id.as_str());
        }
    }
    target
        .into_iter()
        .map(|(id, list)| {
            let kept = list
                .into_iter()
                .filter(|tp| {
                    claimants
                        .get(tp)
                        .is_none_or(|owners| owners.iter().all(|owner| *owner == id))
                })
                .collect();
            (id, kept)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp(topic: &str, p: u32) -> TopicPartition {
        TopicPartition::new(topic, p)
    }

    fn member(topics: &[&str], owned: Vec<TopicPartition>) -> MemberInput {
        MemberInput {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned,
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            AssignmentStrategy::parse("range").unwrap(),
            AssignmentStrategy::Range
        );
        assert_eq!(
            AssignmentStrategy::parse("cooperative-sticky").unwrap(),
            AssignmentStrategy::CooperativeSticky
        );
        let err = AssignmentStrategy::parse("roundrobin").unwrap_err();
        assert!(
            err.to_string().contains("partition.assignment.strategy"),
            "{err}"
        );
    }

    /// The example of Kafka's `RangeAssignor` documentation: two consumers, two topics of
    /// three partitions each.
    #[test]
    fn range_matches_kafkas_example() {
        let members: BTreeMap<String, MemberInput> = [
            ("C0".to_owned(), member(&["t0", "t1"], vec![])),
            ("C1".to_owned(), member(&["t0", "t1"], vec![])),
        ]
        .into();
        let counts: BTreeMap<String, u32> = [("t0".to_owned(), 3), ("t1".to_owned(), 3)].into();
        let a = range(&members, &counts);
        assert_eq!(
            a["C0"],
            vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(a["C1"], vec![tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn range_only_gives_subscribed_topics() {
        let members: BTreeMap<String, MemberInput> = [
            ("a".to_owned(), member(&["x"], vec![])),
            ("b".to_owned(), member(&["x", "y"], vec![])),
        ]
        .into();
        let counts: BTreeMap<String, u32> = [("x".to_owned(), 3), ("y".to_owned(), 2)].into();
        let a = range(&members, &counts);
        assert_eq!(a["a"], vec![tp("x", 0), tp("x", 1)]);
        assert_eq!(a["b"], vec![tp("x", 2), tp("y", 0), tp("y", 1)]);
    }

    #[test]
    fn sticky_moves_one_partition_when_a_fourth_member_joins() {
        let owned = |ps: &[u32]| ps.iter().map(|p| tp("t", *p)).collect::<Vec<_>>();
        let members: BTreeMap<String, MemberInput> = [
            ("a".to_owned(), member(&["t"], owned(&[0, 1]))),
            ("b".to_owned(), member(&["t"], owned(&[2, 3]))),
            ("c".to_owned(), member(&["t"], owned(&[4, 5]))),
            ("d".to_owned(), member(&["t"], vec![])),
        ]
        .into();
        let counts: BTreeMap<String, u32> = [("t".to_owned(), 6)].into();
        let target = sticky(&members, &counts);
        assert_eq!(target["d"].len(), 1);
        assert_eq!(moved(&members, &target), 1);
        // Cooperative: the moving partition is withheld for one generation.
        let adjusted = cooperative_adjust(target.clone(), &members);
        assert!(adjusted["d"].is_empty());
        let total: usize = adjusted.values().map(Vec::len).sum();
        assert_eq!(total, 5);
    }

    fn moved(members: &BTreeMap<String, MemberInput>, assignment: &Assignment) -> usize {
        members
            .iter()
            .map(|(id, m)| {
                m.owned
                    .iter()
                    .filter(|tp| !assignment[id].contains(tp))
                    .count()
            })
            .sum()
    }

    /// The fewest owned partitions that must change member for any assignment balanced within
    /// one, when everyone subscribes to everything and ownership is disjoint: the `r` members
    /// that own the most keep `q + 1`, the others keep `q`.
    fn minimum_moves(owned_counts: &[usize], partitions: usize) -> usize {
        let c = owned_counts.len();
        let (q, r) = (partitions / c, partitions % c);
        let mut sorted = owned_counts.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted
            .iter()
            .enumerate()
            .map(|(i, &o)| o.saturating_sub(if i < r { q + 1 } else { q }))
            .sum()
    }

    /// Members with random subscriptions over three topics, and random (possibly
    /// conflicting, possibly stale) owned partitions.
    fn group_strategy(
    ) -> impl Strategy<Value = (BTreeMap<String, MemberInput>, BTreeMap<String, u32>)> {
        let counts = proptest::collection::vec(0u32..9, 3);
        let members = proptest::collection::vec(
            (
                proptest::collection::btree_set(0usize..3, 0..=3),
                proptest::collection::vec((0usize..3, 0u32..10), 0..6),
            ),
            1..7,
        );
        (counts, members).prop_map(|(counts, members)| {
            let names = ["t0", "t1", "t2"];
            let counts: BTreeMap<String, u32> = names
                .iter()
                .zip(counts)
                .map(|(n, c)| (n.to_string(), c))
                .collect();
            let members = members
                .into_iter()
                .enumerate()
                .map(|(i, (subs, owned))| {
                    (
                        format!("m{i}"),
                        MemberInput {
                            topics: subs.into_iter().map(|t| names[t].to_owned()).collect(),
                            owned: owned
                                .into_iter()
                                .map(|(t, p)| TopicPartition::new(names[t], p))
                                .collect(),
                        },
                    )
                })
                .collect();
            (members, counts)
        })
    }

    /// Checks that every partition of a subscribed topic is assigned exactly once, only to a
    /// member subscribed to its topic.
    fn check_exactly_once(
        members: &BTreeMap<String, MemberInput>,
        counts: &BTreeMap<String, u32>,
        a: &Assignment,
    ) -> std::result::Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        for (id, list) in a {
            for tp in list {
                prop_assert!(members[id].topics.contains(&tp.topic), "{id} got {tp}");
                prop_assert!(seen.insert(tp.clone()), "{tp} assigned twice");
            }
        }
        for (topic, &n) in counts {
            if members.values().any(|m| m.topics.contains(topic)) {
                for p in 0..n {
                    prop_assert!(seen.contains(&TopicPartition::new(topic.as_str(), p)));
                }
            }
        }
        Ok(())
    }

    /// Identical subscriptions to one topic with disjoint ownership (a previous generation).
    fn same_subscription_strategy() -> impl Strategy<Value = (usize, u32, Vec<usize>)> {
        (1usize..8, 0u32..40).prop_flat_map(|(members, partitions)| {
            (
                Just(members),
                Just(partitions),
                proptest::collection::vec(0..members + 1, partitions as usize),
            )
        })
    }

    proptest! {
        #[test]
        fn range_assigns_each_partition_once_balanced_per_topic((members, counts) in group_strategy()) {
            let a = range(&members, &counts);
            check_exactly_once(&members, &counts, &a)?;
            for topic in counts.keys() {
                let sizes: Vec<usize> = members
                    .iter()
                    .filter(|(_, m)| m.topics.contains(topic))
                    .map(|(id, _)| a[id].iter().filter(|tp| &tp.topic == topic).count())
                    .collect();
                if let (Some(min), Some(max)) = (sizes.iter().min(), sizes.iter().max()) {
                    prop_assert!(max - min <= 1, "{topic}: {sizes:?}");
                }
            }
        }

        #[test]
        fn sticky_assigns_each_partition_once((members, counts) in group_strategy()) {
            let a = sticky(&members, &counts);
            check_exactly_once(&members, &counts, &a)?;
            // Cooperative adjustment only ever removes partitions, and never hands a member
            // a partition another member still claims.
            let adjusted = cooperative_adjust(a.clone(), &members);
            for (id, list) in &adjusted {
                for tp in list {
                    prop_assert!(a[id].contains(tp));
                    for (other, m) in &members {
                        prop_assert!(other == id || !m.owned.contains(tp));
                    }
                }
            }
        }

        #[test]
        fn sticky_is_balanced_and_moves_the_minimum((n, partitions, owner) in same_subscription_strategy()) {
            let mut members: BTreeMap<String, MemberInput> = (0..n)
                .map(|i| (format!("m{i}"), member(&["t"], vec![])))
                .collect();
            // owner[p] == n means nobody owns partition p.
            for (p, &o) in owner.iter().enumerate() {
                if o < n {
                    if let Some(m) = members.get_mut(&format!("m{o}")) {
                        m.owned.push(tp("t", p as u32));
                    }
                }
            }
            let counts: BTreeMap<String, u32> = [("t".to_owned(), partitions)].into();
            let a = sticky(&members, &counts);
            check_exactly_once(&members, &counts, &a)?;
            let sizes: Vec<usize> = a.values().map(Vec::len).collect();
            let (min, max) = (sizes.iter().min().copied().unwrap_or(0), sizes.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1, "{sizes:?}");
            let owned_counts: Vec<usize> = members.values().map(|m| m.owned.len()).collect();
            prop_assert_eq!(moved(&members, &a), minimum_moves(&owned_counts, partitions as usize));
        }
    }
}
