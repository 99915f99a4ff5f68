//! The aggregation of a grouped stream (Kafka's `KStreamAggregate` and
//! `KStreamReduce`).

use super::*;

/// Aggregates a grouped stream (Kafka's `KStreamAggregate` and
/// `KStreamReduce`): null keys and null values are skipped; the aggregate's
/// timestamp is the largest of its records'.
pub(crate) struct StreamAggregate<K, V, VA> {
    store: String,
    /// The store, resolved at `init`.
    handle: Option<KeyValueStoreHandle<K, ValueAndTimestamp<VA>>>,
    add: AddFn<K, V, VA>,
    cached: bool,
    /// Whether this processor forwards the updates leaving the store's
    /// record cache.
    forwards_flushes: bool,
    metrics: DslMetrics,
}

impl<K, V, VA> fmt::Debug for StreamAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamAggregate")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, V, VA> StreamAggregate<K, V, VA> {
    pub(crate) fn new(store: String, add: AddFn<K, V, VA>, metrics: DslMetrics) -> Self {
        Self {
            store,
            handle: None,
            add,
            cached: false,
            forwards_flushes: true,
            metrics,
        }
    }

    /// Whether this processor forwards the updates leaving the store's
    /// record cache (the default); see [`cached_store`].
    pub(crate) fn forwarding_flushes(mut self, forwards: bool) -> Self {
        self.forwards_flushes = forwards;
        self
    }
}

impl<K, V, VA> Processor<K, V, K, Change<VA>> for StreamAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        self.cached = cached_store(ctx, &self.store, self.forwards_flushes)?;
        self.handle = Some(ctx.key_value_store_handle(&self.store)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some((key, value)) = aggregation_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        let (old, new, timestamp) = {
            let mut store = ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?;
            store.update(key, |old| {
                aggregate_step(old, record.timestamp, |old| (self.add)(key, value, old))
            })?
        };
        if self.cached {
            return Ok(());
        }
        let Some(key) = record.key else {
            return Ok(());
        };
        ctx.forward(change_record(key, old, new, timestamp, record.headers))
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VA>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        forward_flushed(ctx, store, &entry, None)
    }
}
