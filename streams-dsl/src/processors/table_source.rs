//! The table source (Kafka's `KTableSource`): materializes a table from
//! its topic and forwards each update as a `Change`.

use super::*;

/// Materializes a table from its topic (Kafka's `KTableSource`): a null
/// value deletes the row; each update goes downstream as a [`Change`].
pub(crate) struct TableSource<K, V> {
    store: String,
    cached: bool,
    metrics: DslMetrics,
    deletes: DeleteTimes<K>,
    _types: PhantomData<fn() -> V>,
}

impl<K, V> fmt::Debug for TableSource<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableSource")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V> TableSource<K, V> {
    pub(crate) fn new(store: String, key_serde: SerdeArc<K>, metrics: DslMetrics) -> Self {
        Self {
            deletes: DeleteTimes::new(key_serde, &store),
            store,
            cached: false,
            metrics,
            _types: PhantomData,
        }
    }
}

impl<K, V> Processor<K, V, K, Change<V>> for TableSource<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        self.cached = listen_if_cached(ctx, &self.store)?;
        Ok(())
    }

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
        let old = {
            let mut store = ctx.key_value_store::<K, ValueAndTimestamp<V>>(&self.store)?;
            let old = store.get(&key)?;
            match &record.value {
                Some(value) => store.put(
                    &key,
                    &ValueAndTimestamp::make(value.clone(), record.timestamp),
                )?,
                None => {
                    store.delete(&key)?;
                }
            }
            old
        };
        if self.cached {
            if record.value.is_none() {
                self.deletes.deleted(&key, record.timestamp)?;
            }
            return Ok(());
        }
        ctx.forward(Record {
            key: Some(key),
            value: Some(Change::new(record.value, old.map(|o| o.value))),
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let delete_time = self.deletes.flushed(&entry);
        forward_flushed(ctx, store, &entry, delete_time)
    }
}
