//! Session windows: [`SessionWindows`] and [`SessionWindowedKStream`], the
//! aggregations over them.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use streams_core::{
    CacheEntry, Processor, ProcessorContext, Record, Result, Serdes, StoreBuilder, Window, Windowed,
};

use crate::builder::{apply_materialized, DslMetrics};
use crate::change::Change;
use crate::grouped::KGroupedStream;
use crate::ktable::KTable;
use crate::options::{Materialized, Named, SerdeArc};
use crate::processors::observed_stream_time::ObservedStreamTime;
use crate::processors::window_input::{
    count_null_adder, skip_null_value, windowed_input, Addition, NullAddFn,
};
use crate::processors::{cached_store, count_adder, fold_adder, reduce_adder, AddFn};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Merges two session aggregates of a key: `merge(key, left, right)`;
/// `left` is `None` before the first merge (the initial aggregate is not
/// made yet).
pub(crate) type MergeFn<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;

/// Session windows (Kafka's `SessionWindows`): a session of a key is a
/// period of activity, `[start, end]` with both bounds inclusive, that
/// ends once no record of the key arrives for the inactivity gap.
///
/// A record at `t` merges every session of its key that ends at or after
/// `t - gap` and starts at or before `t + gap`. A session is closed, and a
/// record that would extend or create it is dropped, once
/// `end < stream_time - gap - grace`.
///
/// ```
/// use std::time::Duration;
/// use streams_dsl::SessionWindows;
///
/// let sessions = SessionWindows::with_inactivity_gap_and_grace(
///     Duration::from_secs(300),
///     Duration::from_secs(30),
/// );
/// assert_eq!(sessions.inactivity_gap_ms(), 300_000);
/// assert_eq!(sessions.grace_ms(), 30_000);
/// assert!(sessions.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that close after an inactivity `gap`, accepting
    /// out-of-order records for `grace` longer.
    pub fn with_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        Self {
            gap_ms: millis(gap),
            grace_ms: millis(grace),
        }
    }

    /// Sessions that close as soon as stream time passes their end plus
    /// the inactivity `gap`.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::with_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// The inactivity gap, milliseconds.
    pub fn inactivity_gap_ms(&self) -> i64 {
        self.gap_ms
    }

    /// The grace period, milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }

    /// Checks that the gap is more than zero.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.gap_ms <= 0 {
            return Err(format!(
                "session inactivity gap must be more than zero, got {} ms",
                self.gap_ms
            ));
        }
        Ok(())
    }
}

/// A grouped stream windowed by [`SessionWindows`] (Kafka's
/// `SessionWindowedKStream`): `count`, `reduce` and `aggregate` per key
/// and session give a [`KTable`] keyed by [`Windowed`] keys whose window is
/// the session `[start, end]`.
///
/// A record merges the sessions of its key within the gap into one: each
/// merged session is removed from the store and retracted downstream with
/// a tombstone (a `None` value for its old [`Windowed`] key, timestamp =
/// its end), then the merged session goes downstream with its aggregate,
/// timestamp = its end. A record whose merged session would already be
/// closed (`end < stream_time - gap - grace`) is dropped: logged at debug
/// ("skipping record for expired window") and counted in
/// [`crate::DslMetrics::dropped_records`] and the task's `dropped-records`.
/// Stream time is the aggregation's own (Kafka's observed stream time):
/// the largest timestamp of the records it has processed. Records with a
/// null key or a negative timestamp are skipped and counted in the DSL
/// metric; a record with a null value is counted by `count`, as in Kafka,
/// and skipped by `reduce` and `aggregate`, whose functions never see a
/// null value (see `docs/windowing.md`).
///
/// The table's key serde is [`Serdes::session_windowed`] over the
/// grouping's key serde. The store is a session store
/// ([`StoreBuilder::session`]) keeping sessions for the retention of the
/// [`Materialized`] (at least, and by default, gap + grace), on its
/// backend (in memory unless `Materialized::with_backend` says otherwise),
/// without a record cache.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
    named: Option<Named>,
}

impl<K, V> fmt::Debug for SessionWindowedKStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWindowedKStream")
            .field("grouped", &self.grouped)
            .field("windows", &self.windows)
            .field("named", &self.named)
            .finish()
    }
}

impl<K, V> SessionWindowedKStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: SessionWindows) -> Self {
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

    /// The session windows.
    pub fn windows(&self) -> SessionWindows {
        self.windows
    }

    /// Counts the records per key and session (`KSTREAM-AGGREGATE`),
    /// records with a null value included, as Kafka counts them.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let add = count_adder();
        let merge: MergeFn<K, i64> = Arc::new(|_, a, b| a.unwrap_or(0) + b);
        self.do_aggregate(
            "KSTREAM-AGGREGATE-",
            "AGGREGATE",
            materialized,
            Some(Arc::new(Serdes::i64())),
            (add, Some(count_null_adder())),
            merge,
        )
    }

    /// Combines the values per key and session with
    /// `reducer(aggregate, value)` (`KSTREAM-REDUCE`); merged sessions are
    /// combined with `reducer(earlier, later)`.
    pub fn reduce<F>(&self, reducer: F, materialized: Materialized<K, V>) -> KTable<Windowed<K>, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        let reducer = Arc::new(reducer);
        let for_add = reducer.clone();
        let add = reduce_adder(move |agg, value: &V| for_add(agg, value));
        let merge: MergeFn<K, V> = Arc::new(move |_, a, b| match a {
            None => b,
            Some(a) => reducer(a, &b),
        });
        let value_serde = self.grouped.value_serde().cloned();
        self.do_aggregate(
            "KSTREAM-REDUCE-",
            "REDUCE",
            materialized,
            value_serde,
            (add, None),
            merge,
        )
    }

    /// Folds the values per key and session with
    /// `aggregator(key, value, aggregate)`, each new session starting from
    /// `initializer()`; when a record bridges sessions their aggregates
    /// are combined with `merger(key, left, right)`, starting from
    /// `initializer()` (`KSTREAM-AGGREGATE`). The store's value serde must
    /// be given in `materialized`.
    pub fn aggregate<VA, I, A, M>(
        &self,
        initializer: I,
        aggregator: A,
        merger: M,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        M: Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
    {
        let initializer = Arc::new(initializer);
        let for_add = initializer.clone();
        let add = fold_adder(move || for_add(), aggregator);
        let merge: MergeFn<K, VA> =
            Arc::new(move |key, a, b| merger(key, a.unwrap_or_else(|| initializer()), b));
        self.do_aggregate(
            "KSTREAM-AGGREGATE-",
            "AGGREGATE",
            materialized,
            None,
            (add, None),
            merge,
        )
    }

    fn do_aggregate<VA>(
        &self,
        store_prefix: &str,
        operation: &str,
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        (add, add_null): (AddFn<K, V, VA>, Option<NullAddFn<K, VA>>),
        merge: MergeFn<K, VA>,
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
        let retention = match session_retention(windows, materialized.retention) {
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
            move || {
                SessionAggregate::new(
                    store_for.clone(),
                    windows,
                    add.clone(),
                    merge.clone(),
                    metrics.clone(),
                )
                .with_null_adder(add_null.clone())
            },
            &[&parent],
        );
        let store_builder = session_store_builder(&store, &ks, &vs, retention, &materialized);
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        let windowed_serde: SerdeArc<Windowed<K>> = Arc::new(Serdes::session_windowed(ks));
        // A session closes at end + gap + grace: that is the grace a
        // suppression downstream waits for past the session end.
        KTable::new(
            builder.clone(),
            name,
            Some(windowed_serde),
            Some(vs),
            Some(store),
        )
        .with_window_grace(windows.gap_ms.saturating_add(windows.grace_ms))
    }
}

/// The retention of a session-windowed aggregation's store, milliseconds:
/// `retention` if given, else the inactivity gap plus the grace period
/// (Kafka's default). An error for an invalid gap or a retention shorter
/// than that.
pub(crate) fn session_retention(
    windows: SessionWindows,
    retention: Option<Duration>,
) -> std::result::Result<i64, String> {
    windows.validate()?;
    let min_retention = windows.gap_ms.saturating_add(windows.grace_ms);
    let retention = retention.map_or(min_retention, millis);
    if retention < min_retention {
        return Err(format!(
            "retention {retention} ms is less than inactivity gap plus grace ({min_retention} ms)"
        ));
    }
    Ok(retention)
}

/// The session store of a session-windowed aggregation: aggregates per key
/// and session, kept `retention_ms` after the session end, as
/// `materialized` asks.
pub(crate) fn session_store_builder<K: 'static, V: 'static, M>(
    store: &str,
    key_serde: &SerdeArc<K>,
    value_serde: &SerdeArc<V>,
    retention_ms: i64,
    materialized: &Materialized<M, V>,
) -> StoreBuilder {
    apply_materialized(
        StoreBuilder::session(
            store,
            key_serde.clone(),
            value_serde.clone(),
            Duration::from_millis(u64::try_from(retention_ms).unwrap_or(u64::MAX)),
        ),
        materialized,
    )
}

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
        let gap = self.windows.gap_ms;
        let close_time = stream_time
            .saturating_sub(gap)
            .saturating_sub(self.windows.grace_ms);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_must_be_positive() {
        assert!(
            SessionWindows::of_inactivity_gap_with_no_grace(Duration::ZERO)
                .validate()
                .is_err()
        );
        let windows = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(1));
        assert!(windows.validate().is_ok());
        assert_eq!(windows.grace_ms(), 0);
    }
}
