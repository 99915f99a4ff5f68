//! The aggregation of a grouped stream per key and session (Kafka's
//! `KStreamSessionWindowAggregate`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use streams_core::{CacheEntry, Processor, ProcessorContext, Record, Result, Window, Windowed};

use crate::builder::DslMetrics;
use crate::change::Change;
use crate::processors::observed_stream_time::ObservedStreamTime;
use crate::processors::window_input::{skip_null_value, windowed_input, Addition, NullAddFn};
use crate::processors::{cached_store, AddFn};
use crate::session_windows::SessionWindows;

/// Merges two session aggregates of a key: `merge(key, left, right)`;
/// `left` is `None` before the first merge (the initial aggregate is not
/// made yet).
pub(crate) type MergeFn<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;

/// Aggregates a grouped stream per key and session (Kafka's
/// `KStreamSessionWindowAggregate`).
pub(crate) struct SessionAggregate<K, V, VA> {
    store: String,
    windows: SessionWindows,
    add: AddFn<K, V, VA>,
    /// What a record with a null value adds (`count`'s); without it such
    /// records are skipped.
    add_null: Option<NullAddFn<K, VA>>,
    merge: MergeFn<K, VA>,
    metrics: DslMetrics,
    /// The largest timestamp this processor has seen.
    observed: ObservedStreamTime,
    /// Whether the store has a record cache: updates then go downstream
    /// when they leave it.
    cached: bool,
    /// Whether this processor forwards the updates leaving the store's
    /// record cache.
    forwards_flushes: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, VA> fmt::Debug for SessionAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionAggregate")
            .field("store", &self.store)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl<K, V, VA> SessionAggregate<K, V, VA> {
    pub(crate) fn new(
        store: String,
        windows: SessionWindows,
        add: AddFn<K, V, VA>,
        merge: MergeFn<K, VA>,
        metrics: DslMetrics,
    ) -> Self {
        Self {
            store,
            windows,
            add,
            add_null: None,
            merge,
            metrics,
            observed: ObservedStreamTime::default(),
            cached: false,
            forwards_flushes: true,
            _types: PhantomData,
        }
    }

    /// Adds records with a null value with `add_null` rather than skip
    /// them.
    pub(crate) fn with_null_adder(mut self, add_null: Option<NullAddFn<K, VA>>) -> Self {
        self.add_null = add_null;
        self
    }

    /// Whether this processor forwards the updates leaving the store's
    /// record cache (the default); see [`cached_store`].
    pub(crate) fn forwarding_flushes(mut self, forwards: bool) -> Self {
        self.forwards_flushes = forwards;
        self
    }
}

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for SessionAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.cached = cached_store(ctx, &self.store, self.forwards_flushes)?;
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
        let ts = record.timestamp;
        if ts < 0 {
            tracing::debug!(processor = %ctx.node_name(), timestamp = ts, "skipping record with a negative timestamp: it belongs to no session");
            self.metrics.record_dropped();
            return Ok(());
        }
        // A record with a null value moves stream time as in Kafka, which
        // aggregates it, even when no adder takes it.
        let stream_time = self.observed.advance_from(ctx.resumed_stream_time(), ts);
        let Some(addition) = Addition::of(&self.add, self.add_null.as_ref(), value) else {
            skip_null_value(ctx, ts, &self.metrics);
            return Ok(());
        };
        let gap = self.windows.inactivity_gap_ms();
        let close_time = stream_time
            .saturating_sub(gap)
            .saturating_sub(self.windows.grace_ms());
        let outcome = {
            let mut store = ctx.session_store::<K, VA>(&self.store)?;
            let found = store.find_sessions(key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
            let mut window = Window::new(ts, ts);
            let mut agg: Option<VA> = None;
            for (session, session_agg) in &found {
                agg = Some((self.merge)(key, agg, session_agg.clone()));
                window = Window::new(
                    window.start.min(session.window.start),
                    window.end.max(session.window.end),
                );
            }
            if window.end < close_time {
                Err(window)
            } else {
                let mut retracted = Vec::new();
                if window != Window::new(ts, ts) {
                    for (session, session_agg) in found {
                        store.remove(&session)?;
                        retracted.push((session, session_agg));
                    }
                }
                let new = addition.apply(key, agg);
                let merged = Windowed::new(key.clone(), window);
                store.put(&merged, &new)?;
                Ok((retracted, (merged, new)))
            }
        };
        let (retracted, merged) = match outcome {
            Ok(done) => done,
            Err(window) => {
                tracing::debug!(
                    processor = %ctx.node_name(),
                    session_start = window.start,
                    session_end = window.end,
                    expiration = close_time,
                    stream_time,
                    timestamp = ts,
                    "skipping record for expired window"
                );
                self.metrics.record_dropped();
                ctx.record_dropped();
                return Ok(());
            }
        };
        if self.cached {
            // The removals and the merged session go downstream as they
            // leave the cache, in the order of their last write.
            return Ok(());
        }
        for (session, old) in retracted {
            let end = session.window.end;
            ctx.forward(Record {
                key: Some(session),
                value: Some(Change::new(None, Some(old))),
                timestamp: end,
                headers: record.headers.clone(),
            })?;
        }
        let (session, new) = merged;
        let end = session.window.end;
        ctx.forward(Record {
            key: Some(session),
            value: Some(Change::new(Some(new), None)),
            timestamp: end,
            headers: record.headers.clone(),
        })
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let change = ctx.session_store::<K, VA>(store)?.decode(&entry)?;
        // A session's results carry its end as their time, removals too.
        let end = change.key.window.end;
        ctx.forward(Record::from_parts(
            Some(change.key),
            Some(Change::new(change.new_value, change.old_value)),
            end,
        ))
    }
}
