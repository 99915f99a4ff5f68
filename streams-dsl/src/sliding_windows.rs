//! Sliding windows: [`SlidingWindows`] and [`SlidingWindowedKStream`], the
//! aggregations over them.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use streams_core::{
    Headers, Processor, ProcessorContext, Record, Result, Serdes, Window, Windowed,
};

use crate::builder::DslMetrics;
use crate::change::{Change, ValueAndTimestamp};
use crate::grouped::KGroupedStream;
use crate::ktable::KTable;
use crate::options::{Materialized, Named, SerdeArc};
use crate::processors::observed_stream_time::ObservedStreamTime;
use crate::processors::{aggregation_input, count_adder, fold_adder, reduce_adder, AddFn};
use crate::windows::window_store_builder;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Sliding windows (Kafka's `SlidingWindows`): windows of a fixed length,
/// `[start, start + time_difference]` with **both** bounds inclusive, that
/// are defined by the records rather than aligned to the epoch.
///
/// A record at `t` creates its *left* window `[t - d, t]` (clamped to
/// `[0, d]` for `t < d`), and, once a later record of the key lies within
/// `d` of it, its *right* window `[t + 1, t + 1 + d]`; it updates every
/// existing window that contains it. Two records fall in a common window
/// iff their timestamps differ by at most `d`. A window accepts records
/// while `window_end >= stream_time - grace`; a record is dropped whole
/// when even its right window is closed, `t + 1 + d <= stream_time -
/// grace`.
///
/// ```
/// use std::time::Duration;
/// use streams_dsl::SlidingWindows;
///
/// let windows = SlidingWindows::of_time_difference_and_grace(
///     Duration::from_millis(10),
///     Duration::from_millis(5),
/// );
/// assert_eq!(windows.time_difference_ms(), 10);
/// assert_eq!(windows.grace_ms(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    difference_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of length `time_difference` that accept out-of-order
    /// records until stream time passes their end plus `grace`.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        Self {
            difference_ms: millis(time_difference),
            grace_ms: millis(grace),
        }
    }

    /// Windows of length `time_difference` that close as soon as stream
    /// time passes their end.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// The time difference (the window length), milliseconds.
    pub fn time_difference_ms(&self) -> i64 {
        self.difference_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// A grouped stream windowed by [`SlidingWindows`]: `count`, `reduce` and
/// `aggregate` per key and sliding window give a [`KTable`] keyed by
/// [`Windowed`] keys whose window is `[start, start + time_difference]`
/// (Kafka's `TimeWindowedKStream` over `SlidingWindows`).
///
/// Each update goes downstream at once, timestamp = the largest timestamp
/// of the window's records. Late records are logged at debug ("skipping
/// record for expired window") and counted in
/// [`crate::DslMetrics::dropped_records`] and the task's `dropped-records`,
/// once per closed window they miss. Stream time is the aggregation's own
/// (Kafka's observed stream time): the largest timestamp of the records it
/// has processed. Records with a null key or value, or a negative
/// timestamp, are skipped and counted in the DSL metric, as Kafka skips
/// null keys and values here.
///
/// The table's key serde is [`Serdes::time_windowed`] over the grouping's
/// key serde with the time difference as window size. The store is a
/// window store of [`ValueAndTimestamp`] per window start, kept for the
/// retention of the [`Materialized`] (at least, and by default as in
/// Kafka, `2 * time_difference + grace`), on its backend (in memory unless
/// `Materialized::with_backend` says otherwise), without a record cache.
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
    named: Option<Named>,
}

impl<K, V> fmt::Debug for SlidingWindowedKStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingWindowedKStream")
            .field("grouped", &self.grouped)
            .field("windows", &self.windows)
            .field("named", &self.named)
            .finish()
    }
}

impl<K, V> SlidingWindowedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: SlidingWindows) -> Self {
        Self {
            grouped,
            windows,
            named: None,
        }
    }

    /// Names the aggregation processor built from here (Kafka's
    /// `count(Named, Materialized)` and its kin), so that a topology change
    /// does not rename it; the store is named with [`Materialized::as_`].
    pub fn named(mut self, named: Named) -> Self {
        self.named = Some(named);
        self
    }

    /// The sliding windows.
    pub fn windows(&self) -> SlidingWindows {
        self.windows
    }

    /// Counts the records per key and window (`KSTREAM-AGGREGATE`).
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let add = count_adder();
        self.do_aggregate(
            "KSTREAM-AGGREGATE-",
            "AGGREGATE",
            materialized,
            Some(Arc::new(Serdes::i64())),
            add,
        )
    }

    /// Combines the values per key and window with
    /// `reducer(aggregate, value)` (`KSTREAM-REDUCE`); a window's first
    /// value is its initial aggregate.
    pub fn reduce<F>(&self, reducer: F, materialized: Materialized<K, V>) -> KTable<Windowed<K>, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        let add = reduce_adder(reducer);
        let value_serde = self.grouped.value_serde().cloned();
        self.do_aggregate("KSTREAM-REDUCE-", "REDUCE", materialized, value_serde, add)
    }

    /// Folds the values per key and window with
    /// `aggregator(key, value, aggregate)`, each window starting from
    /// `initializer()` (`KSTREAM-AGGREGATE`). The store's value serde must
    /// be given in `materialized`.
    pub fn aggregate<VA, I, A>(
        &self,
        initializer: I,
        aggregator: A,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        let add = fold_adder(initializer, aggregator);
        self.do_aggregate("KSTREAM-AGGREGATE-", "AGGREGATE", materialized, None, add)
    }

    fn do_aggregate<VA>(
        &self,
        store_prefix: &str,
        operation: &str,
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        add: AddFn<K, V, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
    {
        let builder = self.grouped.handle().clone();
        builder.reject_versioned(&materialized, "a windowed aggregation");
        let windows = self.windows;
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => builder.store_name(store_prefix),
        };
        let name = builder.kstream_name(self.named.clone(), operation);
        let retention = match sliding_window_retention(windows, materialized.retention) {
            Ok(retention) => retention,
            Err(reason) => {
                builder.fail(format!("store '{store}' of '{name}': {reason}"));
                return KTable::new(builder.clone(), name, None, None, Some(store));
            }
        };
        let parent = self.grouped.aggregation_parent(&store, &name);
        let key_serde = materialized
            .key_serde
            .clone()
            .or_else(|| self.grouped.key_serde().cloned());
        let value_serde = materialized.value_serde.clone().or(default_value_serde);
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            builder.fail(format!(
                "store '{store}' of '{name}': no key or value serde; give them with Materialized::with"
            ));
            return KTable::new(builder.clone(), name, None, None, Some(store));
        };
        let metrics = builder.metrics();
        let store_for = store.clone();
        builder.add_processor(
            &name,
            move || SlidingAggregate::new(store_for.clone(), windows, add.clone(), metrics.clone()),
            &[&parent],
        );
        // No record cache: each record reads a range of its key's windows,
        // which the cache would merge at a cost with nothing to save.
        let store_builder = window_store_builder(
            &store,
            &ks,
            &vs,
            retention,
            windows.difference_ms,
            &materialized,
        )
        .with_caching_disabled();
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        let windowed_serde: SerdeArc<Windowed<K>> =
            Arc::new(Serdes::time_windowed(ks, windows.difference_ms));
        KTable::new(
            builder.clone(),
            name,
            Some(windowed_serde),
            Some(vs),
            Some(store),
        )
        .with_window_grace(windows.grace_ms)
    }
}

/// The retention of a sliding-window aggregation's store, milliseconds:
/// `retention` if given, else Kafka's default, twice the time difference
/// plus the grace period (the windows a record may read, no older), at
/// least 1 ms so that a window outlives its own start when both are 0
/// (windows Kafka cannot make at all). An error for a retention shorter
/// than that.
pub(crate) fn sliding_window_retention(
    windows: SlidingWindows,
    retention: Option<Duration>,
) -> std::result::Result<i64, String> {
    let min_retention = windows
        .difference_ms
        .saturating_mul(2)
        .saturating_add(windows.grace_ms);
    let retention = retention.map_or(min_retention.max(1), millis);
    if retention < min_retention {
        return Err(format!(
            "retention {retention} ms is less than twice the time difference plus grace ({min_retention} ms)"
        ));
    }
    Ok(retention)
}

/// Aggregates a grouped stream per key and sliding window (Kafka's
/// `KStreamSlidingWindowAggregate`).
pub(crate) struct SlidingAggregate<K, V, VA> {
    store: String,
    windows: SlidingWindows,
    add: AddFn<K, V, VA>,
    metrics: DslMetrics,
    /// The largest timestamp this processor has seen.
    observed: ObservedStreamTime,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, VA> fmt::Debug for SlidingAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingAggregate")
            .field("store", &self.store)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

/// What one record does to the windows of its key: store writes and the
/// updates to forward, collected while the store is borrowed.
struct Pass<'r, K, V, VA> {
    key: &'r K,
    value: &'r V,
    ts: i64,
    close_time: i64,
    stream_time: i64,
    /// Window starts whose window is written, with the new aggregate.
    writes: Vec<(i64, ValueAndTimestamp<VA>)>,
    /// Updates to forward, in order: window start, new and old aggregate,
    /// timestamp.
    out: Vec<(i64, VA, Option<VA>, i64)>,
    /// Windows the record was too late for.
    dropped: u64,
}

impl<K, V, VA> SlidingAggregate<K, V, VA> {
    pub(crate) fn new(
        store: String,
        windows: SlidingWindows,
        add: AddFn<K, V, VA>,
        metrics: DslMetrics,
    ) -> Self {
        Self {
            store,
            windows,
            add,
            metrics,
            observed: ObservedStreamTime::default(),
            _types: PhantomData,
        }
    }
}

impl<K, V, VA> SlidingAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    /// Adds the record to the window starting at `start`: an existing
    /// window (`base` its aggregate and `base_ts` its timestamp, `existing`
    /// set) or a new one (`base` the aggregate it starts from, if any).
    /// Skipped, and counted, if the window is closed.
    fn update(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        start: i64,
        base: Option<VA>,
        base_ts: i64,
        existing: bool,
    ) {
        let end = start.saturating_add(self.windows.difference_ms);
        if end < pass.close_time {
            tracing::debug!(
                store = %self.store,
                window_start = start,
                window_end = end,
                expiration = end.saturating_add(self.windows.grace_ms),
                stream_time = pass.stream_time,
                timestamp = pass.ts,
                "skipping record for expired window"
            );
            pass.dropped += 1;
            return;
        }
        let new = (self.add)(pass.key, pass.value, base.clone());
        let timestamp = pass.ts.max(base_ts);
        pass.writes
            .push((start, ValueAndTimestamp::make(new.clone(), timestamp)));
        pass.out
            .push((start, new, if existing { base } else { None }, timestamp));
    }

    /// A record at or after the time difference: its left window starts
    /// at `ts - d >= 0`. `windows` are the key's windows starting from
    /// `ts - 2d` to `ts + 1`, by ascending start; they are visited from the
    /// latest start down, as Kafka's aggregation does, so that updates go
    /// out in its order.
    fn process_normal(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        windows: Vec<(i64, ValueAndTimestamp<VA>)>,
    ) {
        let d = self.windows.difference_ms;
        let ts = pass.ts;
        let mut starts = HashSet::new();
        let mut left_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut right_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut left_exists = false;
        let mut right_exists = false;
        let mut previous_ts: Option<i64> = None;
        for (start, window) in windows.into_iter().rev() {
            starts.insert(start);
            let end = start.saturating_add(d);
            if start == ts.saturating_add(1) {
                right_exists = true;
            } else if end > ts {
                // A window holding the record: the latest one holds the
                // records a new right window starts from.
                if right_agg.is_none() {
                    right_agg = Some(window.clone());
                }
                self.update(pass, start, Some(window.value), window.timestamp, true);
            } else if end == ts {
                left_exists = true;
                let latest = window.timestamp;
                self.update(pass, start, Some(window.value), latest, true);
                if latest >= ts {
                    // A record at this time came before: every window this
                    // one would create exists.
                    return;
                }
                previous_ts = Some(latest);
            } else {
                // The latest window ending before the record holds the
                // records a new left window starts from.
                previous_ts = Some(window.timestamp);
                left_agg = Some(window);
                break;
            }
        }
        // The previous record's right window, if it does not exist and
        // reaches this record. When it starts at ts - d it is this record's
        // left window too, which is then updated twice, as in Kafka.
        if let Some(previous) = previous_ts {
            let start = previous.saturating_add(1);
            if !starts.contains(&start) && start.saturating_add(d) >= ts {
                self.update(pass, start, None, ts, false);
            }
        }
        if !left_exists {
            let base = match (previous_ts, left_agg) {
                (Some(previous), Some(left)) if ts.saturating_sub(d) <= previous => {
                    Some(left.value)
                }
                _ => None,
            };
            self.update(pass, ts.saturating_sub(d), base, ts, false);
        }
        if !right_exists {
            self.create_right_window(pass, right_agg);
        }
    }

    /// A record before the time difference: every such record's left
    /// window is `[0, d]`.
    fn process_early(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        windows: Vec<(i64, ValueAndTimestamp<VA>)>,
    ) {
        let ts = pass.ts;
        let mut starts = HashSet::new();
        let mut combined: Option<ValueAndTimestamp<VA>> = None;
        let mut right_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut right_exists = false;
        let mut previous_ts: Option<i64> = None;
        for (start, window) in windows {
            starts.insert(start);
            if start == 0 {
                if window.timestamp < ts {
                    previous_ts = Some(window.timestamp);
                }
                combined = Some(window);
            } else if start <= ts {
                self.update(
                    pass,
                    start,
                    Some(window.value.clone()),
                    window.timestamp,
                    true,
                );
                right_agg = Some(window);
            } else {
                right_exists = true;
            }
        }
        if right_agg.is_none() {
            right_agg = combined.clone().filter(|c| c.timestamp > ts);
        }
        if !right_exists {
            self.create_right_window(pass, right_agg);
        }
        if let Some(previous) = previous_ts {
            let start = previous.saturating_add(1);
            if !starts.contains(&start) {
                self.update(pass, start, None, ts, false);
            }
        }
        match combined {
            None => self.update(pass, 0, None, ts, false),
            Some(window) => self.update(pass, 0, Some(window.value), window.timestamp, true),
        }
    }

    /// Creates the record's right window `[ts + 1, ts + 1 + d]` from the
    /// aggregate of the records after it, if there are any.
    fn create_right_window(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        right_agg: Option<ValueAndTimestamp<VA>>,
    ) {
        let Some(right) = right_agg.filter(|r| r.timestamp > pass.ts) else {
            return;
        };
        let start = pass.ts.saturating_add(1);
        pass.out
            .push((start, right.value.clone(), None, right.timestamp));
        pass.writes.push((start, right));
    }
}

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for SlidingAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some((key, value)) = aggregation_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        let ts = record.timestamp;
        if ts < 0 {
            tracing::debug!(processor = %ctx.node_name(), timestamp = ts, "skipping record with a negative timestamp: it belongs to no window");
            self.metrics.record_dropped();
            return Ok(());
        }
        let d = self.windows.difference_ms;
        let stream_time = self.observed.advance_from(ctx.resumed_stream_time(), ts);
        let close_time = stream_time.saturating_sub(self.windows.grace_ms);
        if ts.saturating_add(1).saturating_add(d) <= close_time {
            tracing::debug!(
                processor = %ctx.node_name(),
                window_start = ts.saturating_add(1),
                window_end = ts.saturating_add(1).saturating_add(d),
                expiration = close_time,
                stream_time,
                timestamp = ts,
                "skipping record for expired window"
            );
            self.metrics.record_dropped();
            ctx.record_dropped();
            return Ok(());
        }
        let mut pass = Pass {
            key,
            value,
            ts,
            close_time,
            stream_time,
            writes: Vec::new(),
            out: Vec::new(),
            dropped: 0,
        };
        {
            let mut store = ctx.window_store::<K, ValueAndTimestamp<VA>>(&self.store)?;
            let from = if ts < d {
                0
            } else {
                ts.saturating_sub(d.saturating_mul(2)).max(0)
            };
            let windows = store.fetch_range(key, from, ts.saturating_add(1))?;
            if ts < d {
                self.process_early(&mut pass, windows);
            } else {
                self.process_normal(&mut pass, windows);
            }
            for (start, window) in &pass.writes {
                store.put(key, *start, Some(window))?;
            }
        }
        for _ in 0..pass.dropped {
            self.metrics.record_dropped();
            ctx.record_dropped();
        }
        for (start, new, old, timestamp) in pass.out {
            let window = Window::new(start, start.saturating_add(d));
            ctx.forward(Record {
                key: Some(Windowed::new(key.clone(), window)),
                value: Some(Change::new(Some(new), old)),
                timestamp,
                headers: Headers::clone(&record.headers),
            })?;
        }
        Ok(())
    }
}
