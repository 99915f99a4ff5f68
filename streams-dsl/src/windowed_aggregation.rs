//! What every windowed aggregation shares, whatever its windows (time,
//! sliding or session): the store's retention and builder, the
//! aggregating processor, the windowed key serde of the table it makes, and
//! how long that table's windows stay open. A grouped stream's windowed
//! `count`/`reduce`/`aggregate` ([`crate::WindowedKStream`]) and a
//! windowed cogroup ([`crate::WindowedCogroupedKStream`]) both build
//! through [`WindowedBy`].

use std::sync::Arc;
use std::time::Duration;

use streams_core::{Serdes, StoreBuilder, Windowed};

use crate::builder::{apply_materialized, DslMetrics, Handle};
use crate::change::ValueAndTimestampSerde;
use crate::options::{Materialized, SerdeArc};
use crate::processors::session_window_aggregate::{MergeFn, SessionAggregate};
use crate::processors::sliding_window_aggregate::SlidingAggregate;
use crate::processors::time_window_aggregate::WindowedAggregate;
use crate::processors::window_input::NullAddFn;
use crate::processors::AddFn;
use crate::session_windows::SessionWindows;
use crate::sliding_windows::SlidingWindows;
use crate::windows::TimeWindows;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn duration(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The windows an aggregation runs over, with what they need beyond the
/// aggregate's adder: sessions merge, with `MergeFn`. Public only as the
/// return type of a sealed trait's method; users cannot name it.
#[doc(hidden)]
pub enum WindowedBy<K, VA> {
    /// Tumbling or hopping windows (`KStreamWindowAggregate`).
    Time(TimeWindows),
    /// Sliding windows (`KStreamSlidingWindowAggregate`).
    Sliding(SlidingWindows),
    /// Sessions, merged with the merger (`KStreamSessionWindowAggregate`).
    Session(SessionWindows, MergeFn<K, VA>),
}

impl<K, VA> std::fmt::Debug for WindowedBy<K, VA> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Time(w) => f.debug_tuple("Time").field(w).finish(),
            Self::Sliding(w) => f.debug_tuple("Sliding").field(w).finish(),
            Self::Session(w, _) => f.debug_tuple("Session").field(w).finish(),
        }
    }
}

impl<K, VA> Clone for WindowedBy<K, VA> {
    fn clone(&self) -> Self {
        match self {
            Self::Time(w) => Self::Time(*w),
            Self::Sliding(w) => Self::Sliding(*w),
            Self::Session(w, merge) => Self::Session(*w, merge.clone()),
        }
    }
}

/// How the processor an aggregation adds behaves beyond its windows.
pub(crate) struct AggregatorOptions<K, VA> {
    /// What a record with a null value adds (`count`'s); without it such
    /// records are skipped. Sliding windows skip them whatever this says,
    /// as Kafka does.
    pub(crate) add_null: Option<NullAddFn<K, VA>>,
    /// Whether the processor forwards the updates leaving the store's
    /// record cache: only one processor of a cogroup does.
    pub(crate) forwards_flushes: bool,
    /// The dead-letter topic of late records (time windows only).
    pub(crate) late_topic: Option<Arc<str>>,
    pub(crate) metrics: DslMetrics,
}

impl<K, VA> WindowedBy<K, VA>
where
    K: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    /// The store's retention, milliseconds: `retention` if given, else
    /// Kafka's default for these windows. An error for invalid windows or
    /// a retention shorter than the windows need.
    pub(crate) fn retention_ms(
        &self,
        retention: Option<Duration>,
    ) -> std::result::Result<i64, String> {
        match self {
            Self::Time(w) => time_window_retention(*w, retention),
            Self::Sliding(w) => sliding_window_retention(*w, retention),
            Self::Session(w, _) => session_retention(*w, retention),
        }
    }

    /// The aggregation's store: a window store of timestamped aggregates
    /// for time and sliding windows (without a record cache for sliding
    /// windows, whose records each read a range of their key's windows,
    /// which a cache would merge at a cost with nothing to save), a session
    /// store for sessions; as `materialized` asks otherwise.
    pub(crate) fn store_builder<M>(
        &self,
        store: &str,
        key_serde: &SerdeArc<K>,
        value_serde: &SerdeArc<VA>,
        retention_ms: i64,
        materialized: &Materialized<M, VA>,
    ) -> StoreBuilder {
        let window_store = |size_ms: i64| {
            apply_materialized(
                StoreBuilder::window(
                    store,
                    key_serde.clone(),
                    ValueAndTimestampSerde::new(value_serde.clone()),
                    duration(retention_ms),
                    duration(size_ms),
                ),
                materialized,
            )
        };
        match self {
            Self::Time(w) => window_store(w.size_ms()),
            Self::Sliding(w) => window_store(w.time_difference_ms()).with_caching_disabled(),
            Self::Session(..) => apply_materialized(
                StoreBuilder::session(
                    store,
                    key_serde.clone(),
                    value_serde.clone(),
                    duration(retention_ms),
                ),
                materialized,
            ),
        }
    }

    /// Adds the processor `name`, reading `parent`, that aggregates each
    /// record with `add` into the windows of `store`.
    pub(crate) fn add_aggregator<V>(
        &self,
        builder: &Handle,
        name: &str,
        parent: &str,
        store: &str,
        add: AddFn<K, V, VA>,
        options: AggregatorOptions<K, VA>,
    ) where
        V: Clone + Send + 'static,
    {
        let store = store.to_owned();
        let AggregatorOptions {
            add_null,
            forwards_flushes,
            late_topic,
            metrics,
        } = options;
        match self {
            &Self::Time(windows) => builder.add_processor(
                name,
                move || {
                    WindowedAggregate::new(store.clone(), windows, add.clone(), metrics.clone())
                        .with_null_adder(add_null.clone())
                        .with_late_topic(late_topic.clone())
                        .forwarding_flushes(forwards_flushes)
                },
                &[parent],
            ),
            &Self::Sliding(windows) => builder.add_processor(
                name,
                move || SlidingAggregate::new(store.clone(), windows, add.clone(), metrics.clone()),
                &[parent],
            ),
            Self::Session(windows, merge) => {
                let (windows, merge) = (*windows, merge.clone());
                builder.add_processor(
                    name,
                    move || {
                        SessionAggregate::new(
                            store.clone(),
                            windows,
                            add.clone(),
                            merge.clone(),
                            metrics.clone(),
                        )
                        .with_null_adder(add_null.clone())
                        .forwarding_flushes(forwards_flushes)
                    },
                    &[parent],
                );
            }
        }
    }

    /// The key serde of the table the aggregation makes, over the
    /// grouping's key serde: time windows of the window size (the time
    /// difference for sliding windows), or sessions.
    pub(crate) fn windowed_serde(&self, key_serde: SerdeArc<K>) -> SerdeArc<Windowed<K>> {
        match self {
            Self::Time(w) => Arc::new(Serdes::time_windowed(key_serde, w.size_ms())),
            Self::Sliding(w) => Arc::new(Serdes::time_windowed(key_serde, w.time_difference_ms())),
            Self::Session(..) => Arc::new(Serdes::session_windowed(key_serde)),
        }
    }

    /// How long past its end a window of the table can still change: the
    /// grace period; for a session, which closes at end + gap + grace, the
    /// gap plus the grace period. A suppression downstream waits for it.
    pub(crate) fn table_grace_ms(&self) -> i64 {
        match self {
            Self::Time(w) => w.grace_ms(),
            Self::Sliding(w) => w.grace_ms(),
            Self::Session(w, _) => w.inactivity_gap_ms().saturating_add(w.grace_ms()),
        }
    }
}

/// The retention of a time-windowed aggregation's store, milliseconds:
/// `retention` if given, else Kafka's default, the window size plus the
/// grace period (the windows that can still change, no older). An error
/// for invalid windows or a retention shorter than that.
fn time_window_retention(
    windows: TimeWindows,
    retention: Option<Duration>,
) -> std::result::Result<i64, String> {
    windows.validate()?;
    let min_retention = windows.size_ms().saturating_add(windows.grace_ms());
    let retention = retention.map_or(min_retention, millis);
    if retention < min_retention {
        return Err(format!(
            "retention {retention} ms is less than window size plus grace ({min_retention} ms)"
        ));
    }
    Ok(retention)
}

/// The retention of a sliding-window aggregation's store, milliseconds:
/// `retention` if given, else Kafka's default, twice the time difference
/// plus the grace period (the windows a record may read, no older). An
/// error for a time difference of 0 or a retention shorter than that.
fn sliding_window_retention(
    windows: SlidingWindows,
    retention: Option<Duration>,
) -> std::result::Result<i64, String> {
    if windows.time_difference_ms() <= 0 {
        // Kafka 4.1 builds it, then fails on the first record (a window's
        // end must be after its start): refused here before any record.
        return Err(format!(
            "sliding windows need a time difference of at least 1 ms, got {} ms",
            windows.time_difference_ms()
        ));
    }
    let min_retention = windows
        .time_difference_ms()
        .saturating_mul(2)
        .saturating_add(windows.grace_ms());
    let retention = retention.map_or(min_retention, millis);
    if retention < min_retention {
        return Err(format!(
            "retention {retention} ms is less than twice the time difference plus grace ({min_retention} ms)"
        ));
    }
    Ok(retention)
}

/// The retention of a session-windowed aggregation's store, milliseconds:
/// `retention` if given, else the inactivity gap plus the grace period
/// (Kafka's default). An error for an invalid gap or a retention shorter
/// than that.
fn session_retention(
    windows: SessionWindows,
    retention: Option<Duration>,
) -> std::result::Result<i64, String> {
    windows.validate()?;
    let min_retention = windows
        .inactivity_gap_ms()
        .saturating_add(windows.grace_ms());
    let retention = retention.map_or(min_retention, millis);
    if retention < min_retention {
        return Err(format!(
            "retention {retention} ms is less than inactivity gap plus grace ({min_retention} ms)"
        ));
    }
    Ok(retention)
}
