//! [`JoinWindowWriter`]: keeps one side's records of a stream–stream join
//! in that side's window store (Kafka's `KStreamJoinWindow`, the
//! `KSTREAM-WINDOWED` node).

use std::fmt;
use std::sync::{Arc, Mutex};

use streams_core::{Processor, ProcessorContext, Record, Result, WindowStoreHandle};

use crate::builder::DslMetrics;
use crate::join_serdes::ListSerde;
use crate::processors::join_times::{live_in_store, lock, shared_times, JoinTimes, Side};
use crate::processors::resolved;

/// Puts each record of one side into that side's window store, under its
/// key and timestamp (records of one key and timestamp are all kept, in
/// arrival order: the store holds a list per key and timestamp), then
/// passes it on to the side's join processor.
///
/// A record with a null key or value is passed on but not stored: it can
/// never join. A record is not stored either when the store no longer
/// keeps its timestamp (`ts ≤ store_time − retention`, the store's
/// largest timestamp having advanced past it): it is logged, counted as
/// dropped, and still passed on, so it still joins the records of the
/// other side that are in its window, as in Kafka. A record with a
/// negative timestamp is not stored: no window of the other side reaches
/// below zero.
///
/// A record is added to its list as bytes: the list held is not decoded,
/// its entries are copied and the record's value is written after them
/// with the store's list serde (`list`).
pub(crate) struct JoinWindowWriter<K, V> {
    store: String,
    side: Side,
    retention: i64,
    times_name: String,
    metrics: DslMetrics,
    list: ListSerde<V>,
    handle: Option<WindowStoreHandle<K, Vec<V>>>,
    times: Option<Arc<Mutex<JoinTimes>>>,
}

impl<K, V> fmt::Debug for JoinWindowWriter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinWindowWriter")
            .field("store", &self.store)
            .field("side", &self.side)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl<K, V> JoinWindowWriter<K, V> {
    /// Writes `side`'s records into `store`, whose values are lists written
    /// with `list`, and which keeps them `retention` ms; the join's times
    /// are shared under `times_name`.
    pub(crate) fn new(
        store: String,
        side: Side,
        retention: i64,
        times_name: String,
        metrics: DslMetrics,
        list: ListSerde<V>,
    ) -> Self {
        Self {
            store,
            side,
            retention,
            times_name,
            metrics,
            list,
            handle: None,
            times: None,
        }
    }
}

impl<K, V> Processor<K, V, K, V> for JoinWindowWriter<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, V>) -> Result<()> {
        let handle = ctx.window_store_handle::<K, Vec<V>>(&self.store)?;
        // A store restored from its changelog has the largest timestamp of
        // what it holds, as Kafka's stores find it again on restoration.
        let latest = ctx
            .window_store_of(&handle)?
            .fetch_all(0, i64::MAX)?
            .iter()
            .map(|(windowed, _)| windowed.window.start)
            .max();
        let times = shared_times(ctx, &self.times_name)?;
        if let Some(latest) = latest {
            lock(&times).stored(self.side, latest);
        }
        self.handle = Some(handle);
        self.times = Some(times);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, V>,
        record: Record<K, V>,
    ) -> Result<()> {
        if let Some(key) = &record.key {
            let timestamp = record.timestamp;
            let times = resolved(&self.times, &self.store)?;
            let store_time = lock(times)
                .store_time(self.side)
                .map_or(timestamp, |t| t.max(timestamp));
            if !live_in_store(timestamp, Some(store_time), self.retention) {
                tracing::debug!(
                    processor = %ctx.node_name(),
                    store = %self.store,
                    timestamp,
                    store_time,
                    retention = self.retention,
                    "skipping record for expired join window: the record still joins, but is not kept"
                );
                self.metrics.record_dropped();
                ctx.record_dropped();
            } else if let (Some(value), true) = (&record.value, timestamp >= 0) {
                let (list, store) = (&self.list, &self.store);
                ctx.window_store_of(resolved(&self.handle, store)?)?
                    .update_serialized(key, timestamp, |old, out| {
                        Ok(list.write_appended(store, old, value, out)?)
                    })?;
            }
            // As Kafka's window store, which a put of a null value moves
            // in time as any put does (and then keeps nothing).
            lock(times).stored(self.side, timestamp);
        }
        ctx.forward(record)
    }
}
