//! [`Event`]: one record as an agent receives it.

use std::sync::Arc;

use streams_core::Headers;

/// One record of an agent's input, with where it came from (Faust's
/// `Event`): key, value, timestamp, headers, topic, partition and offset.
/// A record with no key or no value (a tombstone) has `None` there.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<K, V> {
    /// The key.
    pub key: Option<K>,
    /// The value.
    pub value: Option<V>,
    /// The timestamp, epoch milliseconds.
    pub timestamp: i64,
    /// The headers.
    pub headers: Headers,
    /// The topic it was read from.
    pub topic: Arc<str>,
    /// The partition it was read from.
    pub partition: u32,
    /// Its offset in that partition.
    pub offset: u64,
}
