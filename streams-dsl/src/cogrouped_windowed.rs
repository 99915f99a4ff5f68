//! A cogroup windowed by time, sliding or session windows
//! ([`WindowedCogroupedKStream`]): Kafka's `TimeWindowedCogroupedKStream`
//! and `SessionWindowedCogroupedKStream`.

use std::fmt;
use std::sync::Arc;

use streams_core::Windowed;

use crate::cogrouped::{Built, CogroupedKStream, Initializer};
use crate::ktable::KTable;
use crate::options::{Materialized, Named};
use crate::processors::session_window_aggregate::MergeFn;
use crate::session_windows::SessionWindows;
use crate::sliding_windows::SlidingWindows;
use crate::windowed_aggregation::WindowedBy;
use crate::windowed_kstream::sealed::Fixed;
use crate::windowed_kstream::WindowSpec;
use crate::windows::TimeWindows;

impl<K, VOut> CogroupedKStream<K, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    /// Windows the cogroup by time (Kafka's `windowedBy(Windows)`):
    /// tumbling or hopping windows, aggregated per key and window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedCogroupedKStream<K, VOut> {
        WindowedCogroupedKStream::new(self.same_cogroup(), windows)
    }

    /// Windows the cogroup by sliding windows (Kafka's
    /// `windowedBy(SlidingWindows)`).
    pub fn windowed_by_sliding(
        &self,
        windows: SlidingWindows,
    ) -> SlidingWindowedCogroupedKStream<K, VOut> {
        WindowedCogroupedKStream::new(self.same_cogroup(), windows)
    }

    /// Windows the cogroup by sessions of activity (Kafka's
    /// `windowedBy(SessionWindows)`).
    pub fn windowed_by_session(
        &self,
        windows: SessionWindows,
    ) -> SessionWindowedCogroupedKStream<K, VOut> {
        WindowedCogroupedKStream::new(self.same_cogroup(), windows)
    }
}

/// A cogroup windowed by `W`: `aggregate` per key and window gives a
/// [`KTable`] keyed by [`Windowed`] keys, as
/// [`crate::WindowedKStream`]'s `aggregate` does for one grouped stream
/// (each input's processor keeps its own stream time, and closes windows
/// by it). One store holds the aggregates of every input. `aggregate_named`
/// names the processors after a [`Named`]: `<name>-cogroup-agg-<i>` for
/// the `i`-th input (from 0) and `<name>-cogroup-merge`, as Kafka names
/// them.
pub struct WindowedCogroupedKStream<K, VOut, W> {
    cogroup: CogroupedKStream<K, VOut>,
    windows: W,
}

/// A cogroup windowed by [`TimeWindows`] (Kafka's
/// `TimeWindowedCogroupedKStream`). The store's retention is the
/// [`Materialized`] one, at least and by default the window size plus the
/// grace period.
pub type TimeWindowedCogroupedKStream<K, VOut> = WindowedCogroupedKStream<K, VOut, TimeWindows>;

/// A cogroup windowed by [`SlidingWindows`] (Kafka's
/// `TimeWindowedCogroupedKStream` over sliding windows). The store's
/// retention is the [`Materialized`] one, at least and by default twice
/// the time difference plus the grace period.
pub type SlidingWindowedCogroupedKStream<K, VOut> =
    WindowedCogroupedKStream<K, VOut, SlidingWindows>;

/// A cogroup windowed by [`SessionWindows`] (Kafka's
/// `SessionWindowedCogroupedKStream`). The store's retention is the
/// [`Materialized`] one, at least and by default the gap plus the grace
/// period.
pub type SessionWindowedCogroupedKStream<K, VOut> =
    WindowedCogroupedKStream<K, VOut, SessionWindows>;

impl<K, VOut, W: fmt::Debug> fmt::Debug for WindowedCogroupedKStream<K, VOut, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedCogroupedKStream")
            .field("cogroup", &self.cogroup)
            .field("windows", &self.windows)
            .finish()
    }
}

impl<K, VOut, W> WindowedCogroupedKStream<K, VOut, W>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    W: WindowSpec,
{
    pub(crate) fn new(cogroup: CogroupedKStream<K, VOut>, windows: W) -> Self {
        Self { cogroup, windows }
    }

    /// The windows.
    pub fn windows(&self) -> W {
        self.windows
    }

    /// The windowed table of the cogroup's aggregation over `by`.
    fn build(
        &self,
        by: WindowedBy<K, VOut>,
        initializer: Initializer<VOut>,
        named: Option<Named>,
        materialized: &Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut> {
        let builder = self.cogroup.handle().clone();
        match self
            .cogroup
            .build(Some(by.clone()), initializer, named, materialized)
        {
            Ok(Built {
                merge,
                key_serde,
                value_serde,
                store,
            }) => KTable::new(
                builder,
                merge,
                Some(by.windowed_serde(key_serde)),
                Some(value_serde),
                Some(store),
            )
            .with_window_grace(by.table_grace_ms()),
            Err((node, store)) => KTable::new(builder, node, None, None, Some(store)),
        }
    }
}

impl<K, VOut, W> WindowedCogroupedKStream<K, VOut, W>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    W: WindowSpec + Fixed,
{
    /// Aggregates every input per key and window (time or sliding), each
    /// window starting from `initializer()`. The store's value serde must
    /// be given in `materialized`.
    pub fn aggregate<I>(
        &self,
        initializer: I,
        materialized: Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
    {
        let by = self.windows.fixed();
        self.build(by, Arc::new(initializer), None, &materialized)
    }

    /// [`WindowedCogroupedKStream::aggregate`] with the processors named
    /// after `named`.
    pub fn aggregate_named<I>(
        &self,
        initializer: I,
        named: Named,
        materialized: Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
    {
        let by = self.windows.fixed();
        self.build(by, Arc::new(initializer), Some(named), &materialized)
    }
}

impl<K, VOut> WindowedCogroupedKStream<K, VOut, SessionWindows>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    /// Aggregates every input per key and session, each new session
    /// starting from `initializer()`; when a record bridges sessions their
    /// aggregates are combined with `merger(key, left, right)`, starting
    /// from `initializer()`. The store's value serde must be given in
    /// `materialized`.
    pub fn aggregate<I, M>(
        &self,
        initializer: I,
        merger: M,
        materialized: Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
        M: Fn(&K, VOut, VOut) -> VOut + Send + Sync + 'static,
    {
        self.session_aggregate(initializer, merger, None, &materialized)
    }

    /// [`SessionWindowedCogroupedKStream::aggregate`] with the processors
    /// named after `named`.
    pub fn aggregate_named<I, M>(
        &self,
        initializer: I,
        merger: M,
        named: Named,
        materialized: Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
        M: Fn(&K, VOut, VOut) -> VOut + Send + Sync + 'static,
    {
        self.session_aggregate(initializer, merger, Some(named), &materialized)
    }

    fn session_aggregate<I, M>(
        &self,
        initializer: I,
        merger: M,
        named: Option<Named>,
        materialized: &Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
        M: Fn(&K, VOut, VOut) -> VOut + Send + Sync + 'static,
    {
        let initializer: Initializer<VOut> = Arc::new(initializer);
        let for_merge = initializer.clone();
        let merge: MergeFn<K, VOut> =
            Arc::new(move |key, a, b| merger(key, a.unwrap_or_else(|| for_merge()), b));
        let by = WindowedBy::Session(self.windows, merge);
        self.build(by, initializer, named, materialized)
    }
}
