//! A grouped stream windowed by time, sliding or session windows
//! ([`WindowedKStream`]) and its aggregations: one `count`, `reduce` and
//! `aggregate` for every kind of window.

use std::fmt;
use std::sync::Arc;

use streams_core::{Serdes, Windowed};

use crate::grouped::KGroupedStream;
use crate::ktable::KTable;
use crate::options::{Materialized, Named, SerdeArc};
use crate::processors::session_window_aggregate::MergeFn;
use crate::processors::window_input::{count_null_adder, NullAddFn};
use crate::processors::{count_adder, fold_adder, reduce_adder, AddFn};
use crate::session_windows::SessionWindows;
use crate::sliding_windows::SlidingWindows;
use crate::windowed_aggregation::{AggregatorOptions, WindowedBy};
use crate::windows::{LateRecords, TimeWindows};

pub(crate) mod sealed {
    use crate::processors::session_window_aggregate::MergeFn;
    use crate::windowed_aggregation::WindowedBy;

    /// What the DSL needs of a kind of window; implemented for
    /// [`crate::TimeWindows`], [`crate::SlidingWindows`] and
    /// [`crate::SessionWindows`] only.
    pub trait Windowing: Copy + std::fmt::Debug + Send + Sync + 'static {
        /// The windows to aggregate over; sessions merge their aggregates
        /// with `merge`, which other windows never call.
        fn windowed_by<K, VA>(self, merge: MergeFn<K, VA>) -> WindowedBy<K, VA>;
    }

    /// Windows whose aggregates never merge (time and sliding windows):
    /// their `aggregate` takes no merger.
    pub trait Fixed: Windowing {
        /// The windows to aggregate over.
        fn fixed<K, VA>(self) -> WindowedBy<K, VA>;
    }

    impl Fixed for crate::windows::TimeWindows {
        fn fixed<K, VA>(self) -> WindowedBy<K, VA> {
            WindowedBy::Time(self)
        }
    }

    impl Fixed for crate::sliding_windows::SlidingWindows {
        fn fixed<K, VA>(self) -> WindowedBy<K, VA> {
            WindowedBy::Sliding(self)
        }
    }
}

/// A kind of window a grouped stream or a cogroup can be windowed by:
/// [`TimeWindows`], [`SlidingWindows`] or [`SessionWindows`].
pub trait WindowSpec: sealed::Windowing {}

impl sealed::Windowing for TimeWindows {
    fn windowed_by<K, VA>(self, _merge: MergeFn<K, VA>) -> WindowedBy<K, VA> {
        WindowedBy::Time(self)
    }
}
impl WindowSpec for TimeWindows {}

impl sealed::Windowing for SlidingWindows {
    fn windowed_by<K, VA>(self, _merge: MergeFn<K, VA>) -> WindowedBy<K, VA> {
        WindowedBy::Sliding(self)
    }
}
impl WindowSpec for SlidingWindows {}

impl sealed::Windowing for SessionWindows {
    fn windowed_by<K, VA>(self, merge: MergeFn<K, VA>) -> WindowedBy<K, VA> {
        WindowedBy::Session(self, merge)
    }
}
impl WindowSpec for SessionWindows {}

/// A grouped stream windowed by `W` (Kafka's `TimeWindowedKStream` and
/// `SessionWindowedKStream`): `count`, `reduce` and `aggregate` per key and
/// window give a [`KTable`] keyed by [`Windowed`] keys. Made by
/// [`KGroupedStream::windowed_by`] ([`TimeWindowedKStream`]),
/// [`KGroupedStream::windowed_by_sliding`] ([`SlidingWindowedKStream`])
/// and [`KGroupedStream::windowed_by_session`]
/// ([`SessionWindowedKStream`]); what each kind of window does with a
/// record is written on those three.
///
/// Every operation has a `*_named` twin that names its processor, so that
/// a topology change does not rename it; the store is named with
/// [`Materialized::as_`]. Stream time is the aggregation's own (Kafka's
/// observed stream time): the largest timestamp of the records it has
/// processed. Late records are logged at debug ("skipping record for
/// expired window") and counted in [`crate::DslMetrics::dropped_records`]
/// and the task's `dropped-records`
/// ([`streams_core::TopologyTestDriver::dropped_records`]). Records with a
/// null key or a negative timestamp are skipped and counted in the DSL
/// metric; a record with a null value is counted by `count` of time and
/// session windows, as in Kafka, and skipped by `reduce` and `aggregate`,
/// whose functions never see a null value (see `docs/windowing.md`).
///
/// Each update goes downstream at once, timestamp = the largest timestamp
/// of the window's records (the window store has no record cache, whatever
/// the [`Materialized`] says, except where written below). The store keeps
/// windows for the retention of the [`Materialized`] (at least, and by
/// default as in Kafka, what the windows need), on its backend (in memory
/// unless [`Materialized::with_backend`] says otherwise).
pub struct WindowedKStream<K, V, W> {
    grouped: KGroupedStream<K, V>,
    windows: W,
    late: LateRecords,
}

/// A grouped stream windowed by [`TimeWindows`] (Kafka's
/// `TimeWindowedKStream`).
///
/// Each record updates every window it falls into, in ascending window
/// start. A window's aggregate has the largest timestamp of its records.
/// A record is dropped for a window whose end plus grace is at or before
/// stream time, once per window.
/// [`TimeWindowedKStream::with_late_records`] also routes late records to
/// a dead-letter topic. The table's key serde is [`Serdes::time_windowed`]
/// over the grouping's key serde, so `to_stream().to(..)` needs no serdes
/// for the key.
pub type TimeWindowedKStream<K, V> = WindowedKStream<K, V, TimeWindows>;

/// A grouped stream windowed by [`SlidingWindows`] (Kafka's
/// `TimeWindowedKStream` over `SlidingWindows`): windows
/// `[start, start + time_difference]`.
///
/// A record missing a closed window is counted once per closed window it
/// misses. Records with a null value are skipped by every operation,
/// `count` too, as Kafka skips them here. The table's key serde is
/// [`Serdes::time_windowed`] over the grouping's key serde with the time
/// difference as window size; the store is a window store of
/// [`crate::ValueAndTimestamp`] per window start, kept at least
/// `2 * time_difference + grace`, without a record cache.
pub type SlidingWindowedKStream<K, V> = WindowedKStream<K, V, SlidingWindows>;

/// A grouped stream windowed by [`SessionWindows`] (Kafka's
/// `SessionWindowedKStream`): windows are the sessions `[start, end]`.
///
/// A record merges the sessions of its key within the gap into one: each
/// merged session is removed from the store and retracted downstream with
/// a tombstone (a `None` value for its old [`Windowed`] key, timestamp =
/// its end), then the merged session goes downstream with its aggregate,
/// timestamp = its end. A record whose merged session would already be
/// closed (`end < stream_time - gap - grace`) is dropped. The table's key
/// serde is [`Serdes::session_windowed`] over the grouping's key serde; the
/// store is a session store ([`streams_core::StoreBuilder::session`])
/// kept at least gap + grace.
pub type SessionWindowedKStream<K, V> = WindowedKStream<K, V, SessionWindows>;

impl<K, V, W: fmt::Debug> fmt::Debug for WindowedKStream<K, V, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedKStream")
            .field("grouped", &self.grouped)
            .field("windows", &self.windows)
            .field("late", &self.late)
            .finish()
    }
}

impl<K, V, W> WindowedKStream<K, V, W>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    W: WindowSpec,
{
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: W) -> Self {
        Self {
            grouped,
            windows,
            late: LateRecords::default(),
        }
    }

    /// The windows.
    pub fn windows(&self) -> W {
        self.windows
    }

    /// Counts the records per key and window (`KSTREAM-AGGREGATE`); the
    /// store holds `i64` counts (by default with [`Serdes::i64`]).
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        self.do_count(None, materialized)
    }

    /// [`WindowedKStream::count`] with the processor named `named`.
    pub fn count_named(
        &self,
        named: Named,
        materialized: Materialized<K, i64>,
    ) -> KTable<Windowed<K>, i64> {
        self.do_count(Some(named), materialized)
    }

    fn do_count(
        &self,
        named: Option<Named>,
        materialized: Materialized<K, i64>,
    ) -> KTable<Windowed<K>, i64> {
        let merge: MergeFn<K, i64> = Arc::new(|_, a, b| a.unwrap_or(0) + b);
        self.build(
            ("KSTREAM-AGGREGATE-", "AGGREGATE", named),
            materialized,
            Some(Arc::new(Serdes::i64())),
            (count_adder(), Some(count_null_adder())),
            self.windows.windowed_by(merge),
        )
    }

    /// Combines the values per key and window with
    /// `reducer(aggregate, value)` (`KSTREAM-REDUCE`); a window's first
    /// value is its initial aggregate, and merged sessions are combined
    /// with `reducer(earlier, later)`.
    pub fn reduce<F>(&self, reducer: F, materialized: Materialized<K, V>) -> KTable<Windowed<K>, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.do_reduce(reducer, None, materialized)
    }

    /// [`WindowedKStream::reduce`] with the processor named `named`.
    pub fn reduce_named<F>(
        &self,
        reducer: F,
        named: Named,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V>
    where
        F: Fn(V, &V) -> V + Send + Sync + 'static,
    {
        self.do_reduce(reducer, Some(named), materialized)
    }

    fn do_reduce<F>(
        &self,
        reducer: F,
        named: Option<Named>,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V>
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
        self.build(
            ("KSTREAM-REDUCE-", "REDUCE", named),
            materialized,
            value_serde,
            (add, None),
            self.windows.windowed_by(merge),
        )
    }

    /// The aggregation: its processor, reading the grouped stream (or its
    /// repartition), and its store, as `by` and `materialized` say.
    fn build<VA>(
        &self,
        (store_prefix, operation, named): (&str, &str, Option<Named>),
        materialized: Materialized<K, VA>,
        default_value_serde: Option<SerdeArc<VA>>,
        (add, add_null): (AddFn<K, V, VA>, Option<NullAddFn<K, VA>>),
        by: WindowedBy<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
    {
        let builder = self.grouped.handle().clone();
        builder.reject_versioned(&materialized, "a windowed aggregation");
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => builder.store_name(store_prefix),
        };
        let name = builder.kstream_name(named, operation);
        let retention = match by.retention_ms(materialized.retention) {
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
        let late_topic: Option<Arc<str>> = self.late.topic().map(Arc::from);
        if let Some(topic) = self.late.topic() {
            builder.apply(|t| {
                t.add_output_topic(topic)?;
                Ok(())
            });
        }
        by.add_aggregator(
            &builder,
            &name,
            &parent,
            &store,
            add,
            AggregatorOptions {
                add_null,
                forwards_flushes: true,
                late_topic,
                metrics: builder.metrics(),
            },
        );
        let store_builder = by.store_builder(&store, &ks, &vs, retention, &materialized);
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        KTable::new(
            builder.clone(),
            name,
            Some(by.windowed_serde(ks)),
            Some(vs),
            Some(store),
        )
        .with_window_grace(by.table_grace_ms())
    }

    /// A fold per key and window over `by`.
    fn fold<VA, I, A>(
        &self,
        initializer: I,
        aggregator: A,
        named: Option<Named>,
        materialized: Materialized<K, VA>,
        by: WindowedBy<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        self.build(
            ("KSTREAM-AGGREGATE-", "AGGREGATE", named),
            materialized,
            None,
            (fold_adder(initializer, aggregator), None),
            by,
        )
    }
}

impl<K, V> WindowedKStream<K, V, TimeWindows>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// What the aggregations built from here do with late records, besides
    /// counting and logging them; see [`LateRecords`].
    pub fn with_late_records(mut self, late: LateRecords) -> Self {
        self.late = late;
        self
    }
}

impl<K, V, W> WindowedKStream<K, V, W>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    W: WindowSpec + sealed::Fixed,
{
    /// Folds the values per key and window with
    /// `aggregator(key, value, aggregate)`, each window starting from
    /// `initializer()` (`KSTREAM-AGGREGATE`), for time and sliding windows
    /// (sessions take a merger too). The store's value serde must be given
    /// in `materialized`.
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
        let by = self.windows.fixed();
        self.fold(initializer, aggregator, None, materialized, by)
    }

    /// [`WindowedKStream::aggregate`] with the processor named `named`.
    pub fn aggregate_named<VA, I, A>(
        &self,
        initializer: I,
        aggregator: A,
        named: Named,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    {
        let by = self.windows.fixed();
        self.fold(initializer, aggregator, Some(named), materialized, by)
    }
}

impl<K, V> WindowedKStream<K, V, SessionWindows>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
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
        self.do_session_fold(initializer, aggregator, merger, None, materialized)
    }

    /// [`SessionWindowedKStream::aggregate`] with the processor named
    /// `named`.
    pub fn aggregate_named<VA, I, A, M>(
        &self,
        initializer: I,
        aggregator: A,
        merger: M,
        named: Named,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA>
    where
        VA: Clone + Send + 'static,
        I: Fn() -> VA + Send + Sync + 'static,
        A: Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        M: Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
    {
        self.do_session_fold(initializer, aggregator, merger, Some(named), materialized)
    }

    fn do_session_fold<VA, I, A, M>(
        &self,
        initializer: I,
        aggregator: A,
        merger: M,
        named: Option<Named>,
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
        let merge: MergeFn<K, VA> =
            Arc::new(move |key, a, b| merger(key, a.unwrap_or_else(|| initializer()), b));
        let by = WindowedBy::Session(self.windows, merge);
        self.fold(move || for_add(), aggregator, named, materialized, by)
    }
}
