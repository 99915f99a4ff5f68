//! A table source kept in a versioned store (Kafka's `KTableSource` over a
//! `VersionedKeyValueStore`, KIP-914).

use std::fmt;
use std::marker::PhantomData;

use streams_core::{Processor, ProcessorContext, PutOutcome, Record, Result};

use crate::builder::DslMetrics;
use crate::change::Change;

/// Materializes a table from its topic into a versioned store: each record
/// is put as a version at its timestamp (a null value is a delete) and
/// forwarded as a [`Change`] from the key's latest value. An out-of-order
/// record (older than the key's latest version) goes into the history and
/// is forwarded with `is_latest: false`; one older than the history
/// retention is not put and not forwarded, and counts as dropped.
pub(crate) struct VersionedTableSource<K, V> {
    store: String,
    metrics: DslMetrics,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for VersionedTableSource<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionedTableSource")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, V> VersionedTableSource<K, V> {
    pub(crate) fn new(store: String, metrics: DslMetrics) -> Self {
        Self {
            store,
            metrics,
            _types: PhantomData,
        }
    }
}

impl<K, V> Processor<K, V, K, Change<V>> for VersionedTableSource<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some(key) = record.key else {
            tracing::debug!(store = %self.store, timestamp = record.timestamp, "skipping table record with a null key");
            self.metrics.record_dropped();
            return Ok(());
        };
        let (old, outcome) = {
            let mut store = ctx.versioned_key_value_store::<K, V>(&self.store)?;
            let old = store.get(&key)?;
            let outcome = store.put(&key, record.value.as_ref(), record.timestamp)?;
            (old, outcome)
        };
        if let Some(old) = &old {
            if record.timestamp < old.timestamp {
                tracing::debug!(store = %self.store, old_timestamp = old.timestamp, new_timestamp = record.timestamp, "detected out-of-order table update");
            }
        }
        if outcome == PutOutcome::NotPut {
            tracing::debug!(store = %self.store, timestamp = record.timestamp, "skipping table update older than the store's history retention");
            ctx.record_dropped();
            return Ok(());
        }
        ctx.forward(Record {
            key: Some(key),
            value: Some(
                Change::new(record.value, old.map(|o| o.value)).with_is_latest(outcome.is_latest()),
            ),
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }
}
