//! The stateful processors of the DSL: table sources and aggregations.
//! Stateless operations are closures (`streams_core::stateless_fn`).

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use streams_core::{
    CacheEntry, Headers, KeyValueStoreHandle, Processor, ProcessorContext, Record, Result, Serde,
    SerdeError, StreamsError,
};

use crate::builder::DslMetrics;
use crate::change::{Change, ValueAndTimestamp};
use crate::options::SerdeArc;

pub(crate) mod cogroup_merge;
pub(crate) mod fk_join;
pub(crate) mod join_buffer;
pub(crate) mod join_times;
pub(crate) mod join_window;
pub(crate) mod observed_stream_time;
pub(crate) mod outer_join_buffer;
mod raw_key_count;
pub(crate) mod session_window_aggregate;
pub(crate) mod sliding_window_aggregate;
mod stream_aggregate;
pub(crate) mod stream_global_join;
pub(crate) mod stream_stream_join;
pub(crate) mod stream_table_join;
pub(crate) mod suppress;
mod table_aggregate;
pub(crate) mod table_join_merger;
mod table_source;
pub(crate) mod table_table_join;
pub(crate) mod time_window_aggregate;
pub(crate) mod versioned_table_source;
pub(crate) mod window_input;

pub(crate) use raw_key_count::RawKeyCount;
pub(crate) use stream_aggregate::StreamAggregate;
pub(crate) use table_aggregate::TableAggregate;
pub(crate) use table_source::TableSource;

/// Adds a value to an aggregate (`None`: the group has none yet).
pub(crate) type AddFn<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;
/// Removes a value from an aggregate.
pub(crate) type SubFn<K, V, VA> = Arc<dyn Fn(&K, &V, VA) -> VA + Send + Sync>;

/// The adder of `count`: one more per record.
pub(crate) fn count_adder<K, V>() -> AddFn<K, V, i64> {
    Arc::new(|_, _, count| count.unwrap_or(0) + 1)
}

/// Reads a value as `()`: what a count takes of the values of its
/// repartition topic, whose source then makes nothing of them but whether
/// each is null. Nothing is written with it: the topic's sink writes the
/// values with the grouped stream's serde.
pub(crate) struct Presence;

impl Serde<()> for Presence {
    fn serialize(&self, _topic: &str, _value: &()) -> std::result::Result<Bytes, SerdeError> {
        Ok(Bytes::new())
    }

    fn deserialize(&self, _topic: &str, _bytes: &Bytes) -> std::result::Result<(), SerdeError> {
        Ok(())
    }

    fn deserialize_slice(
        &self,
        _topic: &str,
        _bytes: &[u8],
    ) -> std::result::Result<(), SerdeError> {
        Ok(())
    }
}

/// The adder of `reduce`: the first value, then `reducer(aggregate, value)`.
pub(crate) fn reduce_adder<K, V, F>(reducer: F) -> AddFn<K, V, V>
where
    V: Clone,
    F: Fn(V, &V) -> V + Send + Sync + 'static,
{
    Arc::new(move |_, value, agg| match agg {
        None => value.clone(),
        Some(agg) => reducer(agg, value),
    })
}

/// The adder of `aggregate`: `aggregator(key, value, aggregate)`, the
/// aggregate starting from `initializer()`.
pub(crate) fn fold_adder<K, V, VA, I, A>(initializer: I, aggregator: A) -> AddFn<K, V, VA>
where
    I: Fn() -> VA + Send + Sync + 'static,
    A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
{
    Arc::new(move |key, value, agg| aggregator(key, value, agg.unwrap_or_else(&initializer)))
}

/// The key and value of an aggregation's input record, or `None` when
/// either is null: aggregations ignore such records (Kafka's rule), logged at
/// debug and counted as dropped.
pub(crate) fn aggregation_input<'r, K, V, KO, VO>(
    ctx: &ProcessorContext<'_, KO, VO>,
    record: &'r Record<K, V>,
    metrics: &DslMetrics,
) -> Option<(&'r K, &'r V)> {
    let (Some(key), Some(value)) = (&record.key, &record.value) else {
        tracing::debug!(
            processor = %ctx.node_name(),
            null_key = record.key.is_none(),
            null_value = record.value.is_none(),
            timestamp = record.timestamp,
            "skipping record with a null key or value: aggregations ignore them"
        );
        metrics.record_dropped();
        return None;
    };
    Some((key, value))
}

/// The read-modify-write of an aggregation's stored value: `add` makes the
/// new aggregate from the old one, stamped with the larger of the old
/// timestamp and `timestamp`. Returns what to store and, for the caller,
/// the old aggregate, the new one and the new timestamp.
#[allow(clippy::type_complexity)]
pub(crate) fn aggregate_step<VA: Clone>(
    old: Option<ValueAndTimestamp<VA>>,
    timestamp: i64,
    add: impl FnOnce(Option<VA>) -> VA,
) -> (Option<ValueAndTimestamp<VA>>, (Option<VA>, VA, i64)) {
    let timestamp = old
        .as_ref()
        .map_or(timestamp, |o| o.timestamp.max(timestamp));
    let old = old.map(|o| o.value);
    let new = add(old.clone());
    (
        Some(ValueAndTimestamp::make(new.clone(), timestamp)),
        (old, new, timestamp),
    )
}

/// The record an aggregation forwards for an update.
pub(crate) fn change_record<K, VA>(
    key: K,
    old: Option<VA>,
    new: VA,
    timestamp: i64,
    headers: Headers,
) -> Record<K, Change<VA>> {
    Record {
        key: Some(key),
        value: Some(Change::new(Some(new), old)),
        timestamp,
        headers,
    }
}

/// The store handle a processor resolved in `init`; an error if it
/// processes a record before that.
pub(crate) fn resolved<'h, H>(handle: &'h Option<H>, store: &str) -> Result<&'h H> {
    handle.as_ref().ok_or_else(|| {
        StreamsError::Internal(format!(
            "the processor of store '{store}' processed a record before init"
        ))
    })
}

/// Registers for cache flushes if the store is cached; returns whether it
/// is.
pub(crate) fn listen_if_cached<K, V>(
    ctx: &mut ProcessorContext<'_, K, V>,
    store: &str,
) -> Result<bool> {
    let cached = ctx.caching_enabled(store)?;
    if cached {
        ctx.set_flush_listener(store)?;
    }
    Ok(cached)
}

/// Whether the store has a record cache, registering for its flushes if
/// `listen` ([`listen_if_cached`]). Processors that share a store (the
/// aggregators of a cogroup) leave its flushes to one of them, so that each
/// update leaving the cache goes downstream once.
pub(crate) fn cached_store<K, V>(
    ctx: &mut ProcessorContext<'_, K, V>,
    store: &str,
    listen: bool,
) -> Result<bool> {
    if listen {
        listen_if_cached(ctx, store)
    } else {
        ctx.caching_enabled(store)
    }
}

/// The timestamps of deletes waiting in a store's cache: a delete leaves
/// no value to carry its timestamp, so it is kept here, by key bytes,
/// until the cache flushes it.
pub(crate) struct DeleteTimes<K> {
    key_serde: SerdeArc<K>,
    store: String,
    times: HashMap<Bytes, i64>,
}

impl<K: 'static> DeleteTimes<K> {
    pub(crate) fn new(key_serde: SerdeArc<K>, store: &str) -> Self {
        Self {
            key_serde,
            store: store.to_owned(),
            times: HashMap::new(),
        }
    }

    pub(crate) fn deleted(&mut self, key: &K, timestamp: i64) -> Result<()> {
        let bytes = self.key_serde.serialize(&self.store, key)?;
        self.times.insert(bytes, timestamp);
        Ok(())
    }

    /// The timestamp of the delete `entry` carries, if it is one.
    pub(crate) fn flushed(&mut self, entry: &CacheEntry) -> Option<i64> {
        let time = self.times.remove(&entry.key);
        entry.new_value.is_none().then_some(time).flatten()
    }
}

/// Forwards an update that left the cache of `store` as a [`Change`], with
/// the new value's timestamp, or `delete_time` for a delete.
pub(crate) fn forward_flushed<K, V>(
    ctx: &mut ProcessorContext<'_, K, Change<V>>,
    store: &str,
    entry: &CacheEntry,
    delete_time: Option<i64>,
) -> Result<()>
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    let change = ctx
        .key_value_store::<K, ValueAndTimestamp<V>>(store)?
        .decode(entry)?;
    let timestamp = match (&change.new_value, delete_time) {
        (Some(new), _) => new.timestamp,
        (None, Some(time)) => time,
        (None, None) => change.old_value.as_ref().map_or(0, |v| v.timestamp),
    };
    ctx.forward(Record::from_parts(
        Some(change.key),
        Some(Change::new(
            change.new_value.map(|v| v.value),
            change.old_value.map(|v| v.value),
        )),
        timestamp,
    ))
}
