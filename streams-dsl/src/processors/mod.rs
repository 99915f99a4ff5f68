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
pub(crate) mod stream_global_join;
pub(crate) mod stream_stream_join;
pub(crate) mod stream_table_join;
pub(crate) mod table_join_merger;
pub(crate) mod table_table_join;
pub(crate) mod versioned_table_source;
pub(crate) mod window_input;

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

/// Materializes a table from its topic (Kafka's `KTableSource`): a null
/// value deletes the row; each update goes downstream as a [`Change`].
pub(crate) struct TableSource<K, V> {
    store: String,
    cached: bool,
    metrics: DslMetrics,
    deletes: DeleteTimes<K>,
    _types: PhantomData<fn() -> V>,
}

impl<K, V> fmt::Debug for TableSource<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSource")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V> TableSource<K, V> {
    pub(crate) fn new(store: String, key_serde: SerdeArc<K>, metrics: DslMetrics) -> Self {
        Self {
            deletes: DeleteTimes::new(key_serde, &store),
            store,
            cached: false,
            metrics,
            _types: PhantomData,
        }
    }
}

impl<K, V> Processor<K, V, K, Change<V>> for TableSource<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        self.cached = listen_if_cached(ctx, &self.store)?;
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some(key) = record.key else {
            tracing::debug!(store = %self.store, timestamp = record.timestamp, "skipping table record with a null key");
            self.metrics.record_dropped();
            return Ok(());
        };
        let old = {
            let mut store = ctx.key_value_store::<K, ValueAndTimestamp<V>>(&self.store)?;
            let old = store.get(&key)?;
            match &record.value {
                Some(value) => store.put(
                    &key,
                    &ValueAndTimestamp::make(value.clone(), record.timestamp),
                )?,
                None => {
                    store.delete(&key)?;
                }
            }
            old
        };
        if self.cached {
            if record.value.is_none() {
                self.deletes.deleted(&key, record.timestamp)?;
            }
            return Ok(());
        }
        ctx.forward(Record {
            key: Some(key),
            value: Some(Change::new(record.value, old.map(|o| o.value))),
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let delete_time = self.deletes.flushed(&entry);
        forward_flushed(ctx, store, &entry, delete_time)
    }
}

/// Aggregates a grouped stream (Kafka's `KStreamAggregate` and
/// `KStreamReduce`): null keys and null values are skipped; the aggregate's
/// timestamp is the largest of its records'.
pub(crate) struct StreamAggregate<K, V, VA> {
    store: String,
    /// The store, resolved at `init`.
    handle: Option<KeyValueStoreHandle<K, ValueAndTimestamp<VA>>>,
    add: AddFn<K, V, VA>,
    cached: bool,
    /// Whether this processor forwards the updates leaving the store's
    /// record cache.
    forwards_flushes: bool,
    metrics: DslMetrics,
}

impl<K, V, VA> fmt::Debug for StreamAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamAggregate")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, V, VA> StreamAggregate<K, V, VA> {
    pub(crate) fn new(store: String, add: AddFn<K, V, VA>, metrics: DslMetrics) -> Self {
        Self {
            store,
            handle: None,
            add,
            cached: false,
            forwards_flushes: true,
            metrics,
        }
    }

    /// Whether this processor forwards the updates leaving the store's
    /// record cache (the default); see [`cached_store`].
    pub(crate) fn forwarding_flushes(mut self, forwards: bool) -> Self {
        self.forwards_flushes = forwards;
        self
    }
}

impl<K, V, VA> Processor<K, V, K, Change<VA>> for StreamAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        self.cached = cached_store(ctx, &self.store, self.forwards_flushes)?;
        self.handle = Some(ctx.key_value_store_handle(&self.store)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some((key, value)) = aggregation_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        let (old, new, timestamp) = {
            let mut store = ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?;
            store.update(key, |old| {
                aggregate_step(old, record.timestamp, |old| (self.add)(key, value, old))
            })?
        };
        if self.cached {
            return Ok(());
        }
        let Some(key) = record.key else {
            return Ok(());
        };
        ctx.forward(change_record(key, old, new, timestamp, record.headers))
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        forward_flushed(ctx, store, &entry, None)
    }
}

/// `count` after a repartition: the repartition topic's keys are the bytes
/// of the grouped key serde, which is the store's key serde too, so the
/// source keeps them as bytes and the store is updated by them, with no
/// value of `K` made and dropped per record. A key is read only to forward
/// an update without a record cache (with one, the cache's flushes go
/// downstream, read from the store's bytes). Values arrive as whether each
/// is null ([`Presence`]).
///
/// With a record cache and the store's default value serde, a count held
/// in the cache since its last flush is rewritten in place
/// ([`patch_count`]): no value is decoded, encoded or allocated.
pub(crate) struct RawKeyCount<K> {
    store: String,
    /// The store, resolved at `init`.
    handle: Option<KeyValueStoreHandle<K, ValueAndTimestamp<i64>>>,
    cached: bool,
    /// Whether the store's values are written by the default serdes
    /// (a big-endian timestamp, then the count as a big-endian `i64`), the
    /// layout that [`patch_count`] rewrites.
    default_layout: bool,
    metrics: DslMetrics,
}

impl<K> fmt::Debug for RawKeyCount<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawKeyCount")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K> RawKeyCount<K> {
    /// `default_layout`: the store's value serde is the default one (no
    /// value serde given in `Materialized`).
    pub(crate) fn new(store: String, metrics: DslMetrics, default_layout: bool) -> Self {
        Self {
            store,
            handle: None,
            cached: false,
            default_layout,
            metrics,
        }
    }
}

/// Adds one to a count stored as [`crate::change::ValueAndTimestampSerde`]
/// over the big-endian `i64` serde writes it (16 bytes: the timestamp,
/// then the count), and moves its timestamp to `timestamp` if later: the
/// same step as [`aggregate_step`], on the bytes. Returns `false`, having
/// written nothing, for bytes of another length or a count that would
/// overflow; the caller then takes the general path.
pub(crate) fn patch_count(bytes: &mut [u8], timestamp: i64) -> bool {
    let Ok(stored) = <&mut [u8; 16]>::try_from(bytes) else {
        return false;
    };
    let (time, count) = stored.split_at_mut(8);
    let (Ok(time_bytes), Ok(count_bytes)) =
        (<[u8; 8]>::try_from(&*time), <[u8; 8]>::try_from(&*count))
    else {
        return false;
    };
    let Some(next) = i64::from_be_bytes(count_bytes).checked_add(1) else {
        return false;
    };
    let later = i64::from_be_bytes(time_bytes).max(timestamp);
    time.copy_from_slice(&later.to_be_bytes());
    count.copy_from_slice(&next.to_be_bytes());
    true
}

impl<K> Processor<Bytes, (), K, Change<i64>> for RawKeyCount<K>
where
    K: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<i64>>) -> Result<()> {
        self.cached = listen_if_cached(ctx, &self.store)?;
        self.handle = Some(ctx.key_value_store_handle(&self.store)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<i64>>,
        record: Record<Bytes, ()>,
    ) -> Result<()> {
        let Some((key, _)) = aggregation_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        let mut store = ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?;
        // With a cache, nothing is forwarded per record: a count cached
        // since the last flush is rewritten where it lies.
        if self.cached
            && self.default_layout
            && store.patch_serialized(key, &mut |bytes| patch_count(bytes, record.timestamp))?
        {
            return Ok(());
        }
        let (old, new, timestamp) = store.update_serialized(key, |old| {
            aggregate_step(old, record.timestamp, |count| count.unwrap_or(0) + 1)
        })?;
        if self.cached {
            return Ok(());
        }
        let key = store.deserialize_key(key)?;
        ctx.forward(change_record(key, old, new, timestamp, record.headers))
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<i64>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        forward_flushed(ctx, store, &entry, None)
    }

    /// The count schedules no punctuation: its repartition source runs it
    /// inside its own call.
    fn runs_inline(&self) -> bool {
        true
    }
}

/// Aggregates a grouped table (Kafka's `KTableAggregate` and
/// `KTableReduce`): an update subtracts its old value then adds its new
/// value, and emits once.
pub(crate) struct TableAggregate<K, V, VA> {
    store: String,
    add: AddFn<K, V, VA>,
    sub: SubFn<K, V, VA>,
    cached: bool,
    deletes: DeleteTimes<K>,
}

impl<K, V, VA> fmt::Debug for TableAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableAggregate")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V, VA> TableAggregate<K, V, VA> {
    pub(crate) fn new(
        store: String,
        key_serde: SerdeArc<K>,
        add: AddFn<K, V, VA>,
        sub: SubFn<K, V, VA>,
    ) -> Self {
        Self {
            deletes: DeleteTimes::new(key_serde, &store),
            store,
            add,
            sub,
            cached: false,
        }
    }
}

impl<K, V, VA> Processor<K, Change<V>, K, Change<VA>> for TableAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        self.cached = listen_if_cached(ctx, &self.store)?;
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        record: Record<K, Change<V>>,
    ) -> Result<()> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping table update with a null key");
            return Ok(());
        };
        let (old, new, timestamp) = {
            let mut store = ctx.key_value_store::<K, ValueAndTimestamp<VA>>(&self.store)?;
            let old = store.get(key)?;
            let timestamp = old
                .as_ref()
                .map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
            let mut agg = old.as_ref().map(|o| o.value.clone());
            if let Some(old_value) = &change.old {
                agg = agg.map(|a| (self.sub)(key, old_value, a));
            }
            if let Some(new_value) = &change.new {
                agg = Some((self.add)(key, new_value, agg));
            }
            match &agg {
                Some(agg) => store.put(key, &ValueAndTimestamp::make(agg.clone(), timestamp))?,
                None => {
                    store.delete(key)?;
                }
            }
            (old.map(|o| o.value), agg, timestamp)
        };
        if self.cached {
            if new.is_none() {
                self.deletes.deleted(key, timestamp)?;
            }
            return Ok(());
        }
        if old.is_none() && new.is_none() {
            return Ok(());
        }
        ctx.forward(Record {
            key: record.key,
            value: Some(Change::new(new, old)),
            timestamp,
            headers: record.headers,
        })
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let delete_time = self.deletes.flushed(&entry);
        forward_flushed(ctx, store, &entry, delete_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ValueAndTimestampSerde;
    use proptest::prelude::*;
    use streams_core::{Serde, Serdes};

    fn stored(count: i64, timestamp: i64) -> Vec<u8> {
        let serde = ValueAndTimestampSerde::new(Serdes::i64());
        let mut out = Vec::new();
        serde
            .serialize_into("t", &ValueAndTimestamp::make(count, timestamp), &mut out)
            .unwrap();
        out
    }

    proptest! {
        /// The patch on the bytes is the count's step on values.
        #[test]
        fn patch_count_is_the_count_step_on_the_stored_bytes(
            count in any::<i64>(),
            old_time in any::<i64>(),
            time in any::<i64>(),
        ) {
            let mut bytes = stored(count, old_time);
            let before = bytes.clone();
            let patched = patch_count(&mut bytes, time);
            match count.checked_add(1) {
                Some(_) => {
                    let (new, _) = aggregate_step(
                        Some(ValueAndTimestamp::make(count, old_time)),
                        time,
                        |c| c.unwrap_or(0) + 1,
                    );
                    let new = new.unwrap();
                    prop_assert!(patched);
                    prop_assert_eq!(bytes, stored(new.value, new.timestamp));
                }
                None => {
                    prop_assert!(!patched, "an overflow takes the general path");
                    prop_assert_eq!(bytes, before);
                }
            }
        }

        #[test]
        fn patch_count_leaves_bytes_of_another_length_alone(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assume!(bytes.len() != 16);
            let mut patched = bytes.clone();
            prop_assert!(!patch_count(&mut patched, 5));
            prop_assert_eq!(patched, bytes);
        }
    }
}
