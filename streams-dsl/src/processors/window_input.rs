//! How the time- and session-window aggregations read their input: Kafka
//! skips only null keys there, and hands a null value to the aggregator.

use std::sync::Arc;

use streams_core::{ProcessorContext, Record};

use crate::builder::DslMetrics;
use crate::processors::AddFn;

/// Adds a record with a null value to an aggregate (`None`: the window has
/// none yet). Only `count` has one: it needs no value. User functions
/// never see a null value, so `reduce`, `aggregate` and `cogroup` skip such
/// records (see `docs/windowing.md`).
pub(crate) type NullAddFn<K, VA> = Arc<dyn Fn(&K, Option<VA>) -> VA + Send + Sync>;

/// The null-value adder of `count`: one more, as for any record.
pub(crate) fn count_null_adder<K>() -> NullAddFn<K, i64> {
    Arc::new(|_, count| count.unwrap_or(0) + 1)
}

/// The key and value of a time- or session-window aggregation's input
/// record, or `None` for a null key (logged at debug and counted as
/// dropped). The value is `None` when null.
pub(crate) fn windowed_input<'r, K, V, KO, VO>(
    ctx: &ProcessorContext<'_, KO, VO>,
    record: &'r Record<K, V>,
    metrics: &DslMetrics,
) -> Option<(&'r K, Option<&'r V>)> {
    let Some(key) = &record.key else {
        tracing::debug!(
            processor = %ctx.node_name(),
            timestamp = record.timestamp,
            "skipping record with a null key: aggregations ignore them"
        );
        metrics.record_dropped();
        return None;
    };
    Some((key, record.value.as_ref()))
}

/// What one record adds to the windows it updates: its value, or, for a
/// null value, what the aggregation's [`NullAddFn`] makes of it.
pub(crate) enum Addition<'a, K, V, VA> {
    /// A value, added with the aggregation's adder.
    Value(&'a AddFn<K, V, VA>, &'a V),
    /// A null value, added with the aggregation's null-value adder.
    Null(&'a NullAddFn<K, VA>),
}

impl<'a, K, V, VA> Addition<'a, K, V, VA> {
    /// The addition of `value`; `None` for a null value the aggregation
    /// has no adder for (the caller skips the record).
    pub(crate) fn of(
        add: &'a AddFn<K, V, VA>,
        add_null: Option<&'a NullAddFn<K, VA>>,
        value: Option<&'a V>,
    ) -> Option<Self> {
        match (value, add_null) {
            (Some(value), _) => Some(Self::Value(add, value)),
            (None, Some(add_null)) => Some(Self::Null(add_null)),
            (None, None) => None,
        }
    }

    /// The aggregate after adding the record to `old`.
    pub(crate) fn apply(&self, key: &K, old: Option<VA>) -> VA {
        match self {
            Self::Value(add, value) => add(key, value, old),
            Self::Null(add_null) => add_null(key, old),
        }
    }
}

/// Logs and counts a record whose null value an aggregation skips.
pub(crate) fn skip_null_value<KO, VO>(
    ctx: &ProcessorContext<'_, KO, VO>,
    timestamp: i64,
    metrics: &DslMetrics,
) {
    tracing::debug!(
        processor = %ctx.node_name(),
        timestamp,
        "skipping record with a null value: no user function sees one"
    );
    metrics.record_dropped();
}
