//! Per-partition producer state: the last batches of every idempotent producer (for
//! duplicate detection and sequence checks), the open transactions (for the last stable
//! offset) and the aborted transactions index (for `read_committed` fetches).
//!
//! Nothing here is persisted separately: [`Log::open`](super::Log::open) rebuilds the state
//! by scanning the header of every batch of every segment (control batches are decoded to
//! tell a commit from an abort), since every batch carries its producer id, epoch, base
//! sequence and flags.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::Bytes;

/// How many batches per producer are remembered for duplicate detection (Kafka's
/// `max.in.flight.requests.per.connection` bound).
pub(crate) const BATCHES_KEPT: usize = 5;

/// Control record type of an abort marker.
pub(crate) const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker.
pub(crate) const CONTROL_TYPE_COMMIT: i16 = 1;

/// The key of a control record: version i16 (0) + type i16 (0 abort, 1 commit).
pub(crate) fn control_key(commit: bool) -> Bytes {
    let kind = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    Bytes::from(key)
}

/// The value of a control record: version i16 (0) + coordinator epoch i32.
pub(crate) fn control_value(coordinator_epoch: i32) -> Bytes {
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    Bytes::from(value)
}

/// Whether a control record key is a commit marker; `None` for a key this build does not
/// know.
pub(crate) fn control_is_commit(key: &[u8]) -> Option<bool> {
    if key.len() < 4 {
        return None;
    }
    let version = i16::from_be_bytes([key[0], key[1]]);
    let kind = i16::from_be_bytes([key[2], key[3]]);
    match (version, kind) {
        (0, CONTROL_TYPE_COMMIT) => Some(true),
        (0, CONTROL_TYPE_ABORT) => Some(false),
        _ => None,
    }
}

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) base_offset: u64,
    pub(crate) last_offset: u64,
    pub(crate) timestamp: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    /// The last [`BATCHES_KEPT`] batches of this epoch, oldest first.
    batches: VecDeque<BatchMeta>,
    /// The first offset of the producer's open transaction in this partition.
    txn_first_offset: Option<u64>,
}

/// A producer's state in one partition, as Kafka's DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    /// The producer id.
    pub producer_id: i64,
    /// Its latest epoch here.
    pub epoch: i16,
    /// The sequence of its last record here, -1 without one.
    pub last_sequence: i32,
    /// The max timestamp of its last batch here, -1 without one.
    pub last_timestamp: i64,
    /// The first offset of its open transaction here.
    pub txn_start_offset: Option<u64>,
}

/// An aborted transaction: its producer and offset range (the last offset is the abort
/// marker's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub(crate) producer_id: i64,
    pub(crate) first_offset: u64,
    pub(crate) last_offset: u64,
}

/// Why a batch of a producer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProducerCheck {
    /// The batch is new and in sequence: append it.
    Append,
    /// The batch was appended before: acknowledge it with these offsets.
    Duplicate(BatchMeta),
    /// The producer's epoch is older than the partition's.
    StaleEpoch { current: i16 },
    /// The sequence does not follow the producer's last one.
    OutOfOrder { expected: i32 },
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions by first offset.
    ongoing: BTreeMap<u64, i64>,
    /// Aborted transactions, by ascending abort marker offset.
    aborted: Vec<AbortedTxn>,
}

fn seq_after(seq: i32, count: u32) -> i32 {
    // Sequences wrap at i32::MAX back to 0, as Kafka's do.
    ((i64::from(seq) + i64::from(count)) % (i64::from(i32::MAX) + 1)) as i32
}

/// The sequence of the last record of a batch that starts at `first` with `count` records.
pub(crate) fn last_seq(first: i32, count: u32) -> i32 {
    seq_after(first, count.saturating_sub(1))
}

impl ProducerStates {
    /// Checks a data batch of `count` records from `(producer_id, epoch)` starting at
    /// `base_sequence` (-1: no sequence, only the epoch is checked).
    pub(crate) fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        count: u32,
    ) -> ProducerCheck {
        // A producer this partition does not know (new, or its batches are gone with
        // retention) may start at any sequence, as in Kafka.
        let Some(entry) = self.producers.get(&producer_id) else {
            return ProducerCheck::Append;
        };
        if epoch < entry.epoch {
            return ProducerCheck::StaleEpoch {
                current: entry.epoch,
            };
        }
        if base_sequence < 0 {
            return ProducerCheck::Append;
        }
        if epoch > entry.epoch {
            return if base_sequence == 0 {
                ProducerCheck::Append
            } else {
                ProducerCheck::OutOfOrder { expected: 0 }
            };
        }
        let last = last_seq(base_sequence, count);
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == base_sequence && b.last_seq == last)
        {
            return ProducerCheck::Duplicate(*b);
        }
        let expected = entry.batches.back().map_or(0, |b| seq_after(b.last_seq, 1));
        if base_sequence == expected {
            ProducerCheck::Append
        } else {
            ProducerCheck::OutOfOrder { expected }
        }
    }

    /// Records an appended data batch (or one found by the scan on open).
    #[allow(clippy::too_many_arguments, reason = "the fields of one batch header")]
    pub(crate) fn on_batch(
        &mut self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        count: u32,
        transactional: bool,
        base_offset: u64,
        last_offset: u64,
        timestamp: i64,
    ) {
        if producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if base_sequence >= 0 {
            entry.batches.push_back(BatchMeta {
                first_seq: base_sequence,
                last_seq: last_seq(base_sequence, count),
                base_offset,
                last_offset,
                timestamp,
            });
            while entry.batches.len() > BATCHES_KEPT {
                entry.batches.pop_front();
            }
        }
        if transactional && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(base_offset);
            self.ongoing.insert(base_offset, producer_id);
        }
    }

    /// Records a commit or abort marker of `producer_id` at `offset`. A marker with a newer
    /// epoch fences older ones, and sequences start again at 0 in that epoch.
    pub(crate) fn on_marker(&mut self, producer_id: i64, epoch: i16, commit: bool, offset: u64) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if let Some(first) = entry.txn_first_offset.take() {
            self.ongoing.remove(&first);
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset: first,
                    last_offset: offset,
                });
            }
        }
    }

    /// The current epoch of a producer in this partition, if known.
    pub(crate) fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// The first offset of the earliest open transaction.
    pub(crate) fn first_unstable_offset(&self) -> Option<u64> {
        self.ongoing.keys().next().copied()
    }

    /// Producers with an open transaction in this partition, with their epochs.
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16)> {
        self.ongoing
            .values()
            .map(|pid| (*pid, self.epoch(*pid).unwrap_or(0)))
            .collect()
    }

    /// Every producer with state here: `(id, epoch, last sequence, last batch's timestamp,
    /// first offset of its open transaction)`, by id (Kafka's DescribeProducers).
    pub(crate) fn active(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(&id, e)| ActiveProducer {
                producer_id: id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.batches.back().map_or(-1, |b| b.timestamp),
                txn_start_offset: e.txn_first_offset,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// The largest producer id seen.
    pub(crate) fn max_producer_id(&self) -> Option<i64> {
        self.producers.keys().max().copied()
    }

    /// Whether the data batch of `producer_id` at `base_offset` belongs to an aborted
    /// transaction.
    pub(crate) fn is_aborted(&self, producer_id: i64, base_offset: u64) -> bool {
        let from = self
            .aborted
            .partition_point(|a| a.last_offset < base_offset);
        self.aborted[from..]
            .iter()
            .any(|a| a.producer_id == producer_id && a.first_offset <= base_offset)
    }

    /// `(producer id, first offset)` of the aborted transactions that overlap offsets
    /// `from..to`, as a `read_committed` fetch of that range lists them.
    pub(crate) fn aborted_overlapping(&self, from: u64, to: u64) -> Vec<(i64, u64)> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < to)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Forgets aborted transactions that ended below `offset` (retention removed them).
    pub(crate) fn prune_aborted_below(&mut self, offset: u64) {
        self.aborted.retain(|a| a.last_offset >= offset);
    }

    /// The aborted transactions index, oldest abort first.
    #[cfg(test)]
    pub(crate) fn aborted(&self) -> &[AbortedTxn] {
        &self.aborted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_duplicates_and_epochs() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(1, 0, 0, 3), ProducerCheck::Append);
        s.on_batch(1, 0, 0, 3, false, 10, 12, 5);
        assert!(matches!(
            s.check(1, 0, 0, 3),
            ProducerCheck::Duplicate(BatchMeta {
                base_offset: 10,
                last_offset: 12,
                ..
            })
        ));
        assert_eq!(
            s.check(1, 0, 4, 1),
            ProducerCheck::OutOfOrder { expected: 3 }
        );
        assert_eq!(s.check(1, 0, 3, 1), ProducerCheck::Append);
        assert_eq!(s.check(2, 0, 7, 1), ProducerCheck::Append);
        s.on_marker(1, 2, false, 13);
        assert_eq!(
            s.check(1, 1, 0, 1),
            ProducerCheck::StaleEpoch { current: 2 }
        );
        assert_eq!(
            s.check(1, 2, 3, 1),
            ProducerCheck::OutOfOrder { expected: 0 }
        );
        assert_eq!(s.check(1, 2, 0, 1), ProducerCheck::Append);
    }

    #[test]
    fn transactions_move_the_lso_and_fill_the_aborted_index() {
        let mut s = ProducerStates::default();
        s.on_batch(1, 0, 0, 2, true, 0, 1, 0);
        s.on_batch(2, 0, 0, 2, true, 2, 3, 0);
        s.on_batch(1, 0, 2, 2, true, 4, 5, 0);
        assert_eq!(s.first_unstable_offset(), Some(0));
        s.on_marker(1, 0, false, 6);
        assert_eq!(s.first_unstable_offset(), Some(2));
        s.on_marker(2, 0, true, 7);
        assert_eq!(s.first_unstable_offset(), None);
        assert!(s.is_aborted(1, 0) && s.is_aborted(1, 4));
        assert!(!s.is_aborted(2, 2));
        assert_eq!(s.aborted().len(), 1);
        assert_eq!(control_is_commit(&control_key(true)), Some(true));
        assert_eq!(control_is_commit(&control_key(false)), Some(false));
    }
}
