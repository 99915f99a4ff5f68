//! The merger of a table–table join (Kafka's `KTableKTableJoinMerger`):
//! both sides' results meet here, are kept in the join's store when the
//! join is materialized, and go downstream as one table.

use std::fmt;
use std::marker::PhantomData;

use streams_core::{CacheEntry, Processor, ProcessorContext, Record, Result};

use crate::change::{Change, ValueAndTimestamp};
use crate::options::SerdeArc;
use crate::processors::{forward_flushed, listen_if_cached, DeleteTimes};

/// Merges the two sides of a table–table join.
pub(crate) struct TableJoinMerger<K, V> {
    /// The join's store, when it is materialized, and the times of the
    /// deletes waiting in its cache.
    store: Option<(String, DeleteTimes<K>)>,
    send_old: bool,
    cached: bool,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for TableJoinMerger<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableJoinMerger")
            .field("store", &self.store.as_ref().map(|(name, _)| name))
            .finish_non_exhaustive()
    }
}

impl<K, V> TableJoinMerger<K, V> {
    pub(crate) fn new(store: Option<(String, SerdeArc<K>)>, send_old: bool) -> Self
    where
        K: 'static,
    {
        Self {
            store: store.map(|(name, key_serde)| {
                let deletes = DeleteTimes::new(key_serde, &name);
                (name, deletes)
            }),
            send_old,
            cached: false,
            _types: PhantomData,
        }
    }
}

impl<K, V> Processor<K, Change<V>, K, Change<V>> for TableJoinMerger<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        if let Some((store, _)) = &self.store {
            self.cached = listen_if_cached(ctx, store)?;
        }
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        mut record: Record<K, Change<V>>,
    ) -> Result<()> {
        if let (Some((store, deletes)), Some(key), Some(change)) =
            (&mut self.store, &record.key, &record.value)
        {
            let mut store = ctx.key_value_store::<K, ValueAndTimestamp<V>>(store)?;
            match &change.new {
                Some(value) => store.put(
                    key,
                    &ValueAndTimestamp::make(value.clone(), record.timestamp),
                )?,
                None => {
                    store.delete(key)?;
                }
            }
            if self.cached {
                if change.new.is_none() {
                    deletes.deleted(key, record.timestamp)?;
                }
                return Ok(());
            }
        }
        if !self.send_old {
            if let Some(change) = &mut record.value {
                change.old = None;
            }
        }
        ctx.forward(record)
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let delete_time = match &mut self.store {
            Some((_, deletes)) => deletes.flushed(&entry),
            None => None,
        };
        forward_flushed(ctx, store, &entry, delete_time)
    }
}
