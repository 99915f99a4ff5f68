//! What a commit writes besides outputs: the consumed offsets carry the
//! partition time as their metadata (Kafka Streams' encoding), and the
//! records of repartition topics that commits consumed are purged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::client::{Admin, TopicPartition};

/// The version byte of the partition time in committed offset metadata.
pub(super) const PARTITION_TIME_MAGIC: u8 = 1;

/// Encodes a partition time as committed offset metadata, as Kafka Streams
/// does: base64 of a version byte (1) and the time (i64, big-endian).
pub(super) fn encode_partition_time(time: i64) -> String {
    let mut bytes = Vec::with_capacity(9);
    bytes.push(PARTITION_TIME_MAGIC);
    bytes.extend_from_slice(&time.to_be_bytes());
    BASE64.encode(bytes)
}

/// Decodes the partition time committed with `tp`'s offset; `None` for
/// empty metadata, and, with a warning, for metadata that is not a
/// partition time (another client's, or damaged): stream time then starts
/// from the records.
pub(super) fn decode_partition_time(tp: &TopicPartition, metadata: &str) -> Option<i64> {
    if metadata.is_empty() {
        return None;
    }
    let decoded = BASE64
        .decode(metadata)
        .ok()
        .and_then(|bytes| match bytes.split_first() {
            Some((&PARTITION_TIME_MAGIC, rest)) if rest.len() >= 8 => {
                let mut time = [0u8; 8];
                time.copy_from_slice(&rest[..8]);
                Some(i64::from_be_bytes(time))
            }
            _ => None,
        });
    if decoded.is_none() {
        tracing::warn!(partition = %tp, metadata, "committed offset metadata is not a partition time; ignoring it");
    }
    decoded
}

/// Deletes the records of repartition topics that a commit consumed, as
/// Kafka Streams does: at most every `repartition.purge.interval.ms`, up
/// to the offsets committed last.
pub(super) struct Purger {
    pub(super) interval: Duration,
    pub(super) last: Instant,
    pub(super) pending: HashMap<TopicPartition, u64>,
}

impl Purger {
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: Instant::now(),
            pending: HashMap::new(),
        }
    }

    /// Notes the repartition offsets of a commit that succeeded; purges
    /// when the interval has passed. A failed purge is only logged: the
    /// records stay until the next one.
    pub(super) async fn committed(
        &mut self,
        offsets: Vec<(TopicPartition, u64)>,
        admin: &dyn Admin,
    ) {
        for (tp, offset) in offsets {
            let entry = self.pending.entry(tp).or_insert(offset);
            *entry = (*entry).max(offset);
        }
        if self.pending.is_empty() || self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let purge: Vec<(TopicPartition, u64)> = self.pending.drain().collect();
        match admin.delete_records(&purge).await {
            Ok(()) => tracing::debug!(
                partitions = purge.len(),
                "purged committed records of repartition topics"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot purge committed records of repartition topics")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partition_time_metadata_is_kafkas_encoding() {
        // Version 1, then 1_000 as a big-endian i64.
        assert_eq!(encode_partition_time(1_000), "AQAAAAAAAAPo");
        let tp = TopicPartition::new("t", 0);
        assert_eq!(decode_partition_time(&tp, "AQAAAAAAAAPo"), Some(1_000));
    }

    #[test]
    fn other_metadata_is_no_partition_time() {
        let tp = TopicPartition::new("t", 0);
        for metadata in [
            "",
            "not base64!",
            "AgAAAAAAAAPo",
            "AQAA",
            "printed by the CLI",
        ] {
            assert_eq!(decode_partition_time(&tp, metadata), None, "{metadata}");
        }
    }

    proptest! {
        #[test]
        fn partition_time_round_trips(time in any::<i64>()) {
            let tp = TopicPartition::new("t", 0);
            prop_assert_eq!(decode_partition_time(&tp, &encode_partition_time(time)), Some(time));
        }
    }
}
