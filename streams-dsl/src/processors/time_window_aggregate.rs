//! The aggregation of a grouped stream per key and time window (Kafka's
//! `KStreamWindowAggregate`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use streams_core::{
    CacheEntry, Processor, ProcessorContext, Record, Result, WindowStoreHandle, Windowed,
};

use crate::builder::DslMetrics;
use crate::change::{Change, ValueAndTimestamp};
use crate::processors::observed_stream_time::ObservedStreamTime;
use crate::processors::window_input::{skip_null_value, windowed_input, Addition, NullAddFn};
use crate::processors::{aggregate_step, cached_store, change_record, resolved, AddFn};
use crate::windows::{LateRecords, TimeWindows};

/// Aggregates a grouped stream per key and time window (Kafka's
/// `KStreamWindowAggregate`).
pub(crate) struct WindowedAggregate<K, V, VA> {
    store: String,
    windows: TimeWindows,
    add: AddFn<K, V, VA>,
    /// What a record with a null value adds (`count`'s); without it such
    /// records are skipped.
    add_null: Option<NullAddFn<K, VA>>,
    metrics: DslMetrics,
    /// The largest timestamp this processor has seen.
    observed: ObservedStreamTime,
    /// The dead-letter topic of late records.
    late_topic: Option<Arc<str>>,
    /// Whether the store has a record cache: updates then go downstream
    /// when they leave it.
    cached: bool,
    /// Whether this processor forwards the updates leaving the store's
    /// record cache.
    forwards_flushes: bool,
    /// The store, resolved at `init`.
    handle: Option<WindowStoreHandle<K, ValueAndTimestamp<VA>>>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, VA> fmt::Debug for WindowedAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedAggregate")
            .field("store", &self.store)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl<K, V, VA> WindowedAggregate<K, V, VA> {
    pub(crate) fn new(
        store: String,
        windows: TimeWindows,
        add: AddFn<K, V, VA>,
        metrics: DslMetrics,
    ) -> Self {
        Self {
            store,
            windows,
            add,
            add_null: None,
            metrics,
            observed: ObservedStreamTime::default(),
            late_topic: None,
            cached: false,
            forwards_flushes: true,
            handle: None,
            _types: PhantomData,
        }
    }

    /// Adds records with a null value with `add_null` rather than skip
    /// them.
    pub(crate) fn with_null_adder(mut self, add_null: Option<NullAddFn<K, VA>>) -> Self {
        self.add_null = add_null;
        self
    }

    pub(crate) fn with_late_topic(mut self, topic: Option<Arc<str>>) -> Self {
        self.late_topic = topic;
        self
    }

    /// Whether this processor forwards the updates leaving the store's
    /// record cache (the default); see [`cached_store`].
    pub(crate) fn forwarding_flushes(mut self, forwards: bool) -> Self {
        self.forwards_flushes = forwards;
        self
    }
}

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for WindowedAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.cached = cached_store(ctx, &self.store, self.forwards_flushes)?;
        self.handle = Some(ctx.window_store_handle(&self.store)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some((key, value)) = windowed_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        if record.timestamp < 0 {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping record with a negative timestamp: it belongs to no time window");
            self.metrics.record_dropped();
            return Ok(());
        }
        // A record with a null value moves stream time as in Kafka, which
        // aggregates it, even when no adder takes it.
        let stream_time = self
            .observed
            .advance_from(ctx.resumed_stream_time(), record.timestamp);
        let Some(addition) = Addition::of(&self.add, self.add_null.as_ref(), value) else {
            skip_null_value(ctx, record.timestamp, &self.metrics);
            return Ok(());
        };
        let close_time = stream_time.saturating_sub(self.windows.grace_ms());
        for window in self.windows.windows_for(record.timestamp) {
            if window.end <= close_time {
                tracing::debug!(
                    processor = %ctx.node_name(),
                    window_start = window.start,
                    window_end = window.end,
                    expiration = window.end.saturating_add(self.windows.grace_ms()),
                    stream_time,
                    timestamp = record.timestamp,
                    "skipping record for expired window"
                );
                self.metrics.record_dropped();
                ctx.record_dropped();
                if let Some(topic) = &self.late_topic {
                    let (key_bytes, value_bytes) = ctx
                        .input_bytes()
                        .map(|(k, v)| (k.cloned(), v.cloned()))
                        .unwrap_or_default();
                    let mut headers = record.headers.clone();
                    headers
                        .add(
                            LateRecords::LATE_BY_MS_HEADER,
                            Some(Bytes::from(
                                stream_time.saturating_sub(record.timestamp).to_string(),
                            )),
                        )
                        .add(
                            LateRecords::WINDOW_START_HEADER,
                            Some(Bytes::from(window.start.to_string())),
                        )
                        .add(
                            LateRecords::WINDOW_END_HEADER,
                            Some(Bytes::from(window.end.to_string())),
                        );
                    ctx.send_bytes(topic, key_bytes, value_bytes, record.timestamp, headers);
                }
                continue;
            }
            let mut store = ctx.window_store_of(resolved(&self.handle, &self.store)?)?;
            let (old, new, timestamp) = store.update(key, window.start, |old| {
                aggregate_step(old, record.timestamp, |old| addition.apply(key, old))
            })?;
            if self.cached {
                continue;
            }
            ctx.forward(change_record(
                Windowed::new(key.clone(), window),
                old,
                new,
                timestamp,
                record.headers.clone(),
            ))?;
        }
        Ok(())
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        _store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        // Its own store is the only one this processor listens to.
        let change = ctx
            .window_store_of(resolved(&self.handle, &self.store)?)?
            .decode(&entry)?;
        // A window leaves the store by expiry only, never by a delete that
        // goes downstream: a flushed entry without a value carries no time.
        let Some(new) = change.new_value else {
            return Ok(());
        };
        ctx.forward(Record::from_parts(
            Some(change.key),
            Some(Change::new(
                Some(new.value),
                change.old_value.map(|v| v.value),
            )),
            new.timestamp,
        ))
    }
}
