//! A cogroup windowed by time ([`TimeWindowedCogroupedKStream`]), by
//! sliding windows ([`SlidingWindowedCogroupedKStream`]) or by sessions
//! ([`SessionWindowedCogroupedKStream`]): Kafka's
//! `TimeWindowedCogroupedKStream` and `SessionWindowedCogroupedKStream`.

use std::fmt;
use std::sync::Arc;

use streams_core::{Serdes, Windowed};

use crate::cogrouped::{Built, CogroupWindows, CogroupedKStream, Initializer};
use crate::ktable::KTable;
use crate::options::{Materialized, Named, SerdeArc};
use crate::session_windows::{MergeFn, SessionWindows};
use crate::sliding_windows::SlidingWindows;
use crate::windows::TimeWindows;

impl<K, VOut> CogroupedKStream<K, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    /// Windows the cogroup by time (Kafka's `windowedBy(Windows)`):
    /// tumbling or hopping windows, aggregated per key and window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedCogroupedKStream<K, VOut> {
        TimeWindowedCogroupedKStream::new(self.same_cogroup(), windows)
    }

    /// Windows the cogroup by sliding windows (Kafka's
    /// `windowedBy(SlidingWindows)`).
    pub fn windowed_by_sliding(
        &self,
        windows: SlidingWindows,
    ) -> SlidingWindowedCogroupedKStream<K, VOut> {
        SlidingWindowedCogroupedKStream::new(self.same_cogroup(), windows)
    }

    /// Windows the cogroup by sessions of activity (Kafka's
    /// `windowedBy(SessionWindows)`).
    pub fn windowed_by_session(
        &self,
        windows: SessionWindows,
    ) -> SessionWindowedCogroupedKStream<K, VOut> {
        SessionWindowedCogroupedKStream::new(self.same_cogroup(), windows)
    }
}

/// The windowed table a cogroup's build made, or the failed one.
fn windowed_table<K, VOut>(
    cogroup: &CogroupedKStream<K, VOut>,
    built: Result<Built<K, VOut>, (String, String)>,
    key_serde: impl FnOnce(SerdeArc<K>) -> SerdeArc<Windowed<K>>,
    grace_ms: i64,
) -> KTable<Windowed<K>, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    let builder = cogroup.handle().clone();
    match built {
        Ok(Built {
            merge,
            key_serde: ks,
            value_serde,
            store,
        }) => KTable::new(
            builder,
            merge,
            Some(key_serde(ks)),
            Some(value_serde),
            Some(store),
        )
        .with_window_grace(grace_ms),
        Err((node, store)) => KTable::new(builder, node, None, None, Some(store)),
    }
}

/// A cogroup windowed by [`TimeWindows`] (Kafka's
/// `TimeWindowedCogroupedKStream`): `aggregate` per key and window gives a
/// [`KTable`] keyed by [`Windowed`] keys, as
/// [`crate::TimeWindowedKStream::aggregate`] does for one grouped stream
/// (each input's processor keeps its own stream time, and closes windows
/// by it).
pub struct TimeWindowedCogroupedKStream<K, VOut> {
    cogroup: CogroupedKStream<K, VOut>,
    windows: TimeWindows,
    named: Option<Named>,
}

impl<K, VOut> fmt::Debug for TimeWindowedCogroupedKStream<K, VOut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindowedCogroupedKStream")
            .field("cogroup", &self.cogroup)
            .field("windows", &self.windows)
            .field("named", &self.named)
            .finish()
    }
}

impl<K, VOut> TimeWindowedCogroupedKStream<K, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    pub(crate) fn new(cogroup: CogroupedKStream<K, VOut>, windows: TimeWindows) -> Self {
        Self {
            cogroup,
            windows,
            named: None,
        }
    }

    /// Names the processors built from here after `named`
    /// (`<name>-cogroup-agg-<i>`, `<name>-cogroup-merge`).
    pub fn named(mut self, named: Named) -> Self {
        self.named = Some(named);
        self
    }

    /// The windows.
    pub fn windows(&self) -> TimeWindows {
        self.windows
    }

    /// Aggregates every input per key and window, each window starting
    /// from `initializer()`. The store's value serde must be given in
    /// `materialized`; its retention is the `Materialized` one, at least
    /// and by default the window size plus the grace period.
    pub fn aggregate<I>(
        &self,
        initializer: I,
        materialized: Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
    {
        let windows = self.windows;
        let built = self.cogroup.build(
            CogroupWindows::Time(windows),
            Arc::new(initializer),
            self.named.clone(),
            &materialized,
        );
        windowed_table(
            &self.cogroup,
            built,
            |ks| Arc::new(Serdes::time_windowed(ks, windows.size_ms())),
            windows.grace_ms(),
        )
    }
}

/// A cogroup windowed by [`SlidingWindows`] (Kafka's
/// `TimeWindowedCogroupedKStream` over sliding windows): `aggregate` per
/// key and sliding window, as [`crate::SlidingWindowedKStream::aggregate`]
/// does for one grouped stream.
pub struct SlidingWindowedCogroupedKStream<K, VOut> {
    cogroup: CogroupedKStream<K, VOut>,
    windows: SlidingWindows,
    named: Option<Named>,
}

impl<K, VOut> fmt::Debug for SlidingWindowedCogroupedKStream<K, VOut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingWindowedCogroupedKStream")
            .field("cogroup", &self.cogroup)
            .field("windows", &self.windows)
            .field("named", &self.named)
            .finish()
    }
}

impl<K, VOut> SlidingWindowedCogroupedKStream<K, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    pub(crate) fn new(cogroup: CogroupedKStream<K, VOut>, windows: SlidingWindows) -> Self {
        Self {
            cogroup,
            windows,
            named: None,
        }
    }

    /// Names the processors built from here after `named`
    /// (`<name>-cogroup-agg-<i>`, `<name>-cogroup-merge`).
    pub fn named(mut self, named: Named) -> Self {
        self.named = Some(named);
        self
    }

    /// The windows.
    pub fn windows(&self) -> SlidingWindows {
        self.windows
    }

    /// Aggregates every input per key and sliding window, each window
    /// starting from `initializer()`. The store's value serde must be
    /// given in `materialized`; its retention is the `Materialized` one, at
    /// least and by default twice the time difference plus the grace
    /// period.
    pub fn aggregate<I>(
        &self,
        initializer: I,
        materialized: Materialized<K, VOut>,
    ) -> KTable<Windowed<K>, VOut>
    where
        I: Fn() -> VOut + Send + Sync + 'static,
    {
        let windows = self.windows;
        let built = self.cogroup.build(
            CogroupWindows::Sliding(windows),
            Arc::new(initializer),
            self.named.clone(),
            &materialized,
        );
        windowed_table(
            &self.cogroup,
            built,
            |ks| Arc::new(Serdes::time_windowed(ks, windows.time_difference_ms())),
            windows.grace_ms(),
        )
    }
}

/// A cogroup windowed by [`SessionWindows`] (Kafka's
/// `SessionWindowedCogroupedKStream`): `aggregate` per key and session, as
/// [`crate::SessionWindowedKStream::aggregate`] does for one grouped
/// stream.
pub struct SessionWindowedCogroupedKStream<K, VOut> {
    cogroup: CogroupedKStream<K, VOut>,
    windows: SessionWindows,
    named: Option<Named>,
}

impl<K, VOut> fmt::Debug for SessionWindowedCogroupedKStream<K, VOut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWindowedCogroupedKStream")
            .field("cogroup", &self.cogroup)
            .field("windows", &self.windows)
            .field("named", &self.named)
            .finish()
    }
}

impl<K, VOut> SessionWindowedCogroupedKStream<K, VOut>
where
    K: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
{
    pub(crate) fn new(cogroup: CogroupedKStream<K, VOut>, windows: SessionWindows) -> Self {
        Self {
            cogroup,
            windows,
            named: None,
        }
    }

    /// Names the processors built from here after `named`
    /// (`<name>-cogroup-agg-<i>`, `<name>-cogroup-merge`).
    pub fn named(mut self, named: Named) -> Self {
        self.named = Some(named);
        self
    }

    /// The session windows.
    pub fn windows(&self) -> SessionWindows {
        self.windows
    }

    /// Aggregates every input per key and session, each new session
    /// starting from `initializer()`; when a record bridges sessions their
    /// aggregates are combined with `merger(key, left, right)`, starting
    /// from `initializer()`. The store's value serde must be given in
    /// `materialized`; its retention is the `Materialized` one, at least
    /// and by default the gap plus the grace period.
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
        let windows = self.windows;
        let initializer: Initializer<VOut> = Arc::new(initializer);
        let for_merge = initializer.clone();
        let merge: MergeFn<K, VOut> =
            Arc::new(move |key, a, b| merger(key, a.unwrap_or_else(|| for_merge()), b));
        let built = self.cogroup.build(
            CogroupWindows::Session(windows, merge),
            initializer,
            self.named.clone(),
            &materialized,
        );
        // A session closes at end + gap + grace: that is the grace a
        // suppression downstream waits for past the session end.
        windowed_table(
            &self.cogroup,
            built,
            |ks| Arc::new(Serdes::session_windowed(ks)),
            windows
                .inactivity_gap_ms()
                .saturating_add(windows.grace_ms()),
        )
    }
}
