//! Time windows: [`TimeWindows`] (tumbling and hopping) and
//! [`TimeWindowedKStream`], the aggregations over them.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use streams_core::{
    CacheEntry, Processor, ProcessorContext, Record, Result, Serdes, StoreBuilder, Window,
    WindowStoreHandle, Windowed,
};

use crate::builder::{apply_materialized, DslMetrics};
use crate::change::{Change, ValueAndTimestamp, ValueAndTimestampSerde};
use crate::grouped::KGroupedStream;
use crate::ktable::KTable;
use crate::options::{Materialized, Named, SerdeArc};
use crate::processors::observed_stream_time::ObservedStreamTime;
use crate::processors::window_input::{
    count_null_adder, skip_null_value, windowed_input, Addition, NullAddFn,
};
use crate::processors::{
    aggregate_step, cached_store, change_record, count_adder, fold_adder, reduce_adder, resolved,
    AddFn,
};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Fixed-size time windows aligned to the epoch (Kafka's `TimeWindows`):
/// tumbling when the advance equals the size, hopping when it is smaller.
///
/// Windows are half-open, `[start, start + size)`. A record at `ts` belongs
/// to every window whose start is a non-negative multiple of the advance
/// with `start <= ts < start + size`. A window accepts records until stream
/// time reaches its end plus the grace period.
///
/// ```
/// use std::time::Duration;
/// use streams_core::Window;
/// use streams_dsl::TimeWindows;
///
/// let hopping = TimeWindows::of_size_with_no_grace(Duration::from_millis(10))
///     .advance_by(Duration::from_millis(5));
/// assert!(hopping.validate().is_ok());
/// assert_eq!(
///     hopping.windows_for(12),
///     [Window::new(5, 15), Window::new(10, 20)]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size`, closing as soon as stream time reaches
    /// their end.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that accept out-of-order records until
    /// stream time reaches their end plus `grace`.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size_ms = millis(size);
        Self {
            size_ms,
            advance_ms: size_ms,
            grace_ms: millis(grace),
        }
    }

    /// Hopping windows: a new window starts every `advance`, which must be
    /// more than zero and at most the size (checked by
    /// [`TimeWindows::validate`], and when the topology is built).
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance_ms = millis(advance);
        self
    }

    /// The window size, milliseconds.
    pub fn size_ms(&self) -> i64 {
        self.size_ms
    }

    /// The advance, milliseconds.
    pub fn advance_ms(&self) -> i64 {
        self.advance_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Checks that the size is more than zero and that
    /// `0 < advance <= size`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.size_ms <= 0 {
            return Err(format!(
                "window size must be more than zero, got {} ms",
                self.size_ms
            ));
        }
        if self.advance_ms <= 0 || self.advance_ms > self.size_ms {
            return Err(format!(
                "window advance must be more than zero and at most the size ({} ms), got {} ms",
                self.size_ms, self.advance_ms
            ));
        }
        Ok(())
    }

    /// The windows a record at `timestamp` belongs to, by ascending start:
    /// every `[s, s + size)` with `s` a multiple of the advance, `s >= 0`
    /// and `s <= timestamp < s + size`. Empty for a negative timestamp or
    /// invalid windows.
    pub fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        let mut out = Vec::new();
        if timestamp < 0 || self.validate().is_err() {
            return out;
        }
        // The lowest start with start + size > timestamp, rounded up to a
        // multiple of the advance.
        let lowest = (timestamp - self.size_ms + 1).max(0);
        let rem = lowest % self.advance_ms;
        let mut start = if rem == 0 {
            Some(lowest)
        } else {
            (lowest - rem).checked_add(self.advance_ms)
        };
        while let Some(s) = start.filter(|s| *s <= timestamp) {
            out.push(Window::new(s, s.saturating_add(self.size_ms)));
            start = s.checked_add(self.advance_ms);
        }
        out
    }
}

/// What a windowed aggregation does with the records it drops as late:
/// only count and log them ([`LateRecords::drop`], the default), or also
/// send each to a dead-letter topic ([`LateRecords::to_topic`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LateRecords {
    topic: Option<String>,
}

impl LateRecords {
    /// The header holding how late a routed record was: stream time minus
    /// its timestamp, in milliseconds, as decimal ASCII.
    pub const LATE_BY_MS_HEADER: &'static str = "late.by.ms";
    /// The header holding the start of the window the record was dropped
    /// for, as decimal ASCII.
    pub const WINDOW_START_HEADER: &'static str = "late.window.start";
    /// The header holding the end of the window the record was dropped
    /// for, as decimal ASCII.
    pub const WINDOW_END_HEADER: &'static str = "late.window.end";

    /// Late records are counted and logged, nothing more (the default).
    pub fn drop() -> Self {
        Self { topic: None }
    }

    /// Each late record also goes to `topic`, once per window it is
    /// dropped for: its key and value bytes as the aggregation's task read
    /// them (from the source topic, or from the repartition topic after a
    /// key change), its timestamp and headers, plus the headers
    /// [`LateRecords::LATE_BY_MS_HEADER`],
    /// [`LateRecords::WINDOW_START_HEADER`] and
    /// [`LateRecords::WINDOW_END_HEADER`]. The runtime creates the topic
    /// (one partition) if it does not exist; under exactly-once the routed
    /// records are part of the task's transaction.
    pub fn to_topic(topic: impl Into<String>) -> Self {
        Self {
            topic: Some(topic.into()),
        }
    }

    /// The dead-letter topic, if any.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_deref()
    }
}

/// A grouped stream windowed by [`TimeWindows`] (Kafka's
/// `TimeWindowedKStream`): `count`, `reduce` and `aggregate` per key and
/// window give a [`KTable`] keyed by [`Windowed`] keys.
///
/// Each record updates every window it falls into, in ascending window
/// start, and each update goes downstream at once (the window store has no
/// record cache, whatever the [`Materialized`] says). A window's aggregate
/// has the largest timestamp of its records. A record is dropped for a
/// window whose end plus grace is at or before stream time: logged at
/// debug ("skipping record for expired window") and counted in
/// [`crate::DslMetrics::dropped_records`] and the task's `dropped-records`
/// ([`streams_core::TopologyTestDriver::dropped_records`]), once per
/// window. Stream time is the aggregation's own (Kafka's observed stream
/// time): the largest timestamp of the records it has processed. Records
/// with a null key or a negative timestamp are skipped and counted in the
/// DSL metric; a record with a null value is counted by `count`, as in
/// Kafka, and skipped by `reduce` and `aggregate`, whose functions never
/// see a null value (see `docs/windowing.md`).
///
/// [`TimeWindowedKStream::with_late_records`] also routes late records to
/// a dead-letter topic.
///
/// The table's key serde is [`Serdes::time_windowed`] over the grouping's
/// key serde, so `to_stream().to(..)` needs no serdes for the key.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
    late: LateRecords,
    named: Option<Named>,
}

impl<K, V> fmt::Debug for TimeWindowedKStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindowedKStream")
            .field("grouped", &self.grouped)
            .field("windows", &self.windows)
            .field("late", &self.late)
            .field("named", &self.named)
            .finish()
    }
}

impl<K, V> TimeWindowedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: TimeWindows) -> Self {
        Self {
            grouped,
            windows,
            late: LateRecords::default(),
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

    /// What the aggregations built from here do with late records, besides
    /// counting and logging them; see [`LateRecords`].
    pub fn with_late_records(mut self, late: LateRecords) -> Self {
        self.late = late;
        self
    }

    /// The windows.
    pub fn windows(&self) -> TimeWindows {
        self.windows
    }

    /// Counts the records per key and window (`KSTREAM-AGGREGATE`),
    /// records with a null value included, as Kafka counts them.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let add = count_adder();
        self.do_aggregate(
            "KSTREAM-AGGREGATE-",
            "AGGREGATE",
            materialized,
            Some(Arc::new(Serdes::i64())),
            add,
            Some(count_null_adder()),
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
        self.do_aggregate(
            "KSTREAM-REDUCE-",
            "REDUCE",
            materialized,
            value_serde,
            add,
            None,
        )
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
        self.do_aggregate(
            "KSTREAM-AGGREGATE-",
            "AGGREGATE",
            materialized,
            None,
            add,
            None,
        )
    }

    fn do_aggregate<VA>(
        &self,
        store_prefix: &str,
        operation: &str,
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        add: AddFn<K, V, VA>,
        add_null: Option<NullAddFn<K, VA>>,
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
        let retention = match time_window_retention(windows, materialized.retention) {
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
        let late_topic: Option<Arc<str>> = self.late.topic().map(Arc::from);
        if let Some(topic) = self.late.topic() {
            builder.apply(|t| {
                t.add_output_topic(topic)?;
                Ok(())
            });
        }
        builder.add_processor(
            &name,
            move || {
                WindowedAggregate::new(store_for.clone(), windows, add.clone(), metrics.clone())
                    .with_null_adder(add_null.clone())
                    .with_late_topic(late_topic.clone())
            },
            &[&parent],
        );
        let store_builder =
            window_store_builder(&store, &ks, &vs, retention, windows.size_ms, &materialized);
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        let windowed_serde: SerdeArc<Windowed<K>> =
            Arc::new(Serdes::time_windowed(ks, windows.size_ms));
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

/// The retention of a time-windowed aggregation's store, milliseconds:
/// `retention` if given, else Kafka's default, the window size plus the
/// grace period (the windows that can still change, no older). An error
/// for invalid windows or a retention shorter than that.
pub(crate) fn time_window_retention(
    windows: TimeWindows,
    retention: Option<Duration>,
) -> std::result::Result<i64, String> {
    windows.validate()?;
    let min_retention = windows.size_ms.saturating_add(windows.grace_ms);
    let retention = retention.map_or(min_retention, millis);
    if retention < min_retention {
        return Err(format!(
            "retention {retention} ms is less than window size plus grace ({min_retention} ms)"
        ));
    }
    Ok(retention)
}

/// The window store of a windowed aggregation: timestamped aggregates per
/// key and window start, windows of `size_ms` kept `retention_ms`, as
/// `materialized` asks.
pub(crate) fn window_store_builder<K: 'static, V: 'static, M>(
    store: &str,
    key_serde: &SerdeArc<K>,
    value_serde: &SerdeArc<V>,
    retention_ms: i64,
    size_ms: i64,
    materialized: &Materialized<M, V>,
) -> StoreBuilder {
    let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
    apply_materialized(
        StoreBuilder::window(
            store,
            key_serde.clone(),
            ValueAndTimestampSerde::new(value_serde.clone()),
            millis(retention_ms),
            millis(size_ms),
        ),
        materialized,
    )
}

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
        let close_time = stream_time.saturating_sub(self.windows.grace_ms);
        for window in self.windows.windows_for(record.timestamp) {
            if window.end <= close_time {
                tracing::debug!(
                    processor = %ctx.node_name(),
                    window_start = window.start,
                    window_end = window.end,
                    expiration = window.end.saturating_add(self.windows.grace_ms),
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Every window start from 0 to `ts`, checked one by one.
    fn brute_force(size: i64, advance: i64, ts: i64) -> Vec<Window> {
        (0..=ts)
            .filter(|s| s % advance == 0 && *s <= ts && ts < s + size)
            .map(|s| Window::new(s, s + size))
            .collect()
    }

    proptest! {
        #[test]
        fn windows_for_matches_brute_force(
            size in 1u64..50,
            advance_frac in 0.0f64..1.0,
            ts in 0i64..500,
        ) {
            // 1 <= advance <= size.
            let advance = 1 + ((size - 1) as f64 * advance_frac) as u64;
            let windows = TimeWindows::of_size_with_no_grace(ms(size)).advance_by(ms(advance));
            prop_assert!(windows.validate().is_ok());
            prop_assert_eq!(
                windows.windows_for(ts),
                brute_force(size as i64, advance as i64, ts)
            );
        }
    }

    #[test]
    fn tumbling_window_end_belongs_to_the_next_window() {
        let windows = TimeWindows::of_size_with_no_grace(ms(10));
        assert_eq!(windows.windows_for(9), [Window::new(0, 10)]);
        assert_eq!(windows.windows_for(10), [Window::new(10, 20)]);
        assert!(windows.windows_for(-1).is_empty());
    }

    #[test]
    fn advance_is_validated() {
        let size = TimeWindows::of_size_with_no_grace(ms(10));
        assert!(size.advance_by(ms(0)).validate().is_err());
        assert!(size.advance_by(ms(11)).validate().is_err());
        assert!(size.advance_by(ms(10)).validate().is_ok());
        assert!(TimeWindows::of_size_with_no_grace(ms(0))
            .validate()
            .is_err());
        assert!(size.advance_by(ms(11)).windows_for(5).is_empty());
    }

    #[test]
    fn large_timestamps_do_not_overflow() {
        let windows = TimeWindows::of_size_with_no_grace(ms(10)).advance_by(ms(3));
        let got = windows.windows_for(i64::MAX);
        assert!(!got.is_empty());
        assert!(got
            .iter()
            .all(|w| w.start > i64::MAX - 10 && w.end == i64::MAX));
    }
}
