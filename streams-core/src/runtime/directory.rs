//! What interactive queries know, shared by the app, its query handle and
//! the instances exchange without importing one another: the stores of
//! the topology with their sub-topologies and partition counts, and the
//! other instances' published tasks.
//!
//! Instance record value layout (version 1, see `docs/format.md`): `u8
//! version | i64 published_ms (BE) | u32 task count (BE) | per task: u32
//! sub-topology, u32 partition (BE)`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::exec::TaskId;
use crate::query::codec::ErasedCodec;
use crate::query::{HostInfo, StoreKind};

/// The version byte of an instance record.
const RECORD_VERSION: u8 = 1;

/// What interactive queries need of the topology and the partition
/// counts, worked out at start.
#[derive(Debug)]
pub(crate) struct QueryPlan {
    /// This instance's `application.server`.
    pub(crate) server: Option<HostInfo>,
    pub(crate) stores: BTreeMap<String, StorePlan>,
    pub(crate) subs: BTreeMap<u32, SubPlan>,
}

/// One store of the topology.
#[derive(Debug)]
pub(crate) struct StorePlan {
    pub(crate) kind: StoreKind,
    pub(crate) sub: u32,
    pub(crate) window_size_ms: Option<i64>,
    pub(crate) changelog: String,
    pub(crate) key_codec: Arc<dyn ErasedCodec>,
    pub(crate) value_codec: Arc<dyn ErasedCodec>,
}

/// One sub-topology: its physical input topics, its stores and its
/// partition count.
#[derive(Debug, Default)]
pub(crate) struct SubPlan {
    pub(crate) sources: Vec<String>,
    pub(crate) stores: Vec<String>,
    pub(crate) partitions: u32,
}

/// What an instance last published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceRecord {
    /// Its tasks, sorted.
    pub(crate) tasks: Vec<TaskId>,
    /// When it published them (wall clock, epoch ms).
    pub(crate) published_ms: i64,
}

impl InstanceRecord {
    pub(super) fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(13 + 8 * self.tasks.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.published_ms.to_be_bytes());
        let count = u32::try_from(self.tasks.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for task in self.tasks.iter().take(count as usize) {
            out.extend_from_slice(&task.subtopology.to_be_bytes());
            out.extend_from_slice(&task.partition.to_be_bytes());
        }
        Bytes::from(out)
    }

    pub(super) fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let (&version, rest) = bytes.split_first().ok_or("an empty record")?;
        if version != RECORD_VERSION {
            return Err(format!("unknown version {version}"));
        }
        let take = |at: usize, n: usize| rest.get(at..at + n).ok_or("a truncated record");
        let published_ms = i64::from_be_bytes(take(0, 8)?.try_into().map_err(|_| "bad length")?);
        let count = u32::from_be_bytes(take(8, 4)?.try_into().map_err(|_| "bad length")?);
        let expected = 12usize.saturating_add((count as usize).saturating_mul(8));
        if rest.len() != expected {
            return Err(format!(
                "{} bytes after the version for {count} tasks, expected {expected}",
                rest.len()
            ));
        }
        let tasks = rest[12..]
            .chunks_exact(8)
            .map(|c| TaskId {
                subtopology: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                partition: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Self {
            tasks,
            published_ms,
        })
    }
}

/// The other instances' records by `application.server`.
pub(crate) type Instances = BTreeMap<String, InstanceRecord>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let record = InstanceRecord {
            tasks: vec![
                TaskId {
                    subtopology: 0,
                    partition: 2,
                },
                TaskId {
                    subtopology: 1,
                    partition: 0,
                },
            ],
            published_ms: 1_700_000_000_000,
        };
        let bytes = record.encode();
        // The layout of docs/format.md, byte by byte.
        assert_eq!(
            bytes.as_ref(),
            [
                1, 0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
                1, 0, 0, 0, 0
            ]
        );
        assert_eq!(InstanceRecord::decode(&bytes), Ok(record));
        assert!(InstanceRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(InstanceRecord::decode(&[]).is_err());
        let mut other = bytes.to_vec();
        other[0] = 9;
        assert!(InstanceRecord::decode(&other).is_err());
        let mut huge = bytes[..9].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(InstanceRecord::decode(&huge).is_err());
    }
}
