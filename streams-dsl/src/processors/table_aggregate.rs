//! The aggregation of a grouped table (Kafka's `KTableAggregate` and
//! `KTableReduce`): subtract the old value, add the new one.

use super::*;

/// Aggregates a grouped table (Kafka's `KTableAggregate` and
/// `KTableReduce`): an update subtracts its old value then adds its new
/// value, and emits once.
pub(crate) struct TableAggregate<K, V, VA> {
    store: String,
    add: AddFn<K, V, VA>,
    sub: SubFn<K, V, VA>,
    cached: bool,
    deletes: DeleteTimes<K>,
}

impl<K, V, VA> fmt::Debug for TableAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableAggregate")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V, VA> TableAggregate<K, V, VA> {
    pub(crate) fn new(
        store: String,
        key_serde: SerdeArc<K>,
        add: AddFn<K, V, VA>,
        sub: SubFn<K, V, VA>,
    ) -> Self {
        Self {
            deletes: DeleteTimes::new(key_serde, &store),
            store,
            add,
            sub,
            cached: false,
        }
    }
}

impl<K, V, VA> Processor<K, Change<V>, K, Change<VA>> for TableAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        self.cached = listen_if_cached(ctx, &self.store)?;
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        record: Record<K, Change<V>>,
    ) -> Result<()> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping table update with a null key");
            return Ok(());
        };
        let (old, new, timestamp) = {
            let mut store = ctx.key_value_store::<K, ValueAndTimestamp<VA>>(&self.store)?;
            let old = store.get(key)?;
            let timestamp = old
                .as_ref()
                .map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
            let mut agg = old.as_ref().map(|o| o.value.clone());
            if let Some(old_value) = &change.old {
                agg = agg.map(|a| (self.sub)(key, old_value, a));
            }
            if let Some(new_value) = &change.new {
                agg = Some((self.add)(key, new_value, agg));
            }
            match &agg {
                Some(agg) => store.put(key, &ValueAndTimestamp::make(agg.clone(), timestamp))?,
                None => {
                    store.delete(key)?;
                }
            }
            (old.map(|o| o.value), agg, timestamp)
        };
        if self.cached {
            if new.is_none() {
                self.deletes.deleted(key, timestamp)?;
            }
            return Ok(());
        }
        if old.is_none() && new.is_none() {
            return Ok(());
        }
        ctx.forward(Record {
            key: record.key,
            value: Some(Change::new(new, old)),
            timestamp,
            headers: record.headers,
        })
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let delete_time = self.deletes.flushed(&entry);
        forward_flushed(ctx, store, &entry, delete_time)
    }
}
