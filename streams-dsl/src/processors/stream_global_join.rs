//! The stream–global table join (Kafka's `KStreamKTableJoinProcessor` over
//! a global table): each stream record looks up the global row of a key
//! computed from it.

use std::fmt;
use std::sync::Arc;

use streams_core::{GlobalTableView, Processor, ProcessorContext, Record, Result};

use crate::options::SerdeArc;

/// The global table's key of a stream record; `None`: no key to look up.
pub(crate) type KeyMapFn<K, V, KG> = Arc<dyn Fn(Option<&K>, &V) -> Option<KG> + Send + Sync>;
/// Joins a stream value with the global row, if any; `None` where the
/// join has no result.
pub(crate) type GlobalJoinFn<V, VG, VR> = Arc<dyn Fn(&V, Option<&VG>) -> Option<VR> + Send + Sync>;

/// The processor of a stream–global table join.
pub(crate) struct StreamGlobalJoin<K, V, KG, VG, VR> {
    store: String,
    serdes: (SerdeArc<KG>, SerdeArc<VG>),
    /// The table's view, resolved at init.
    table: Option<GlobalTableView<KG, VG>>,
    key_mapper: KeyMapFn<K, V, KG>,
    joiner: GlobalJoinFn<V, VG, VR>,
    left: bool,
}

impl<K, V, KG, VG, VR> fmt::Debug for StreamGlobalJoin<K, V, KG, VG, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamGlobalJoin")
            .field("store", &self.store)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<K, V, KG, VG, VR> StreamGlobalJoin<K, V, KG, VG, VR> {
    pub(crate) fn new(
        store: String,
        serdes: (SerdeArc<KG>, SerdeArc<VG>),
        key_mapper: KeyMapFn<K, V, KG>,
        joiner: GlobalJoinFn<V, VG, VR>,
        left: bool,
    ) -> Self {
        Self {
            store,
            serdes,
            table: None,
            key_mapper,
            joiner,
            left,
        }
    }
}

impl<K, V, KG, VG, VR> Processor<K, V, K, VR> for StreamGlobalJoin<K, V, KG, VG, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    KG: Clone + Send + 'static,
    VG: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VR>) -> Result<()> {
        self.table = Some(ctx.stores().global_table(
            &self.store,
            self.serdes.0.clone(),
            self.serdes.1.clone(),
        )?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some(value) = &record.value else {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping record due to a null join value");
            ctx.record_dropped();
            return Ok(());
        };
        let mapped = (self.key_mapper)(record.key.as_ref(), value);
        // As Kafka 4.1's: a left join keeps a record that has no key to
        // look up (it joins with nothing); an inner join drops it.
        if mapped.is_none() && !self.left {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping record due to a null join key");
            ctx.record_dropped();
            return Ok(());
        }
        let row = match (&mapped, &self.table) {
            (Some(key), Some(table)) => table.get(key)?.map(|(row, _)| row),
            _ => None,
        };
        let Some(joined) = (self.joiner)(value, row.as_ref()) else {
            return Ok(());
        };
        ctx.forward(Record {
            key: record.key,
            value: Some(joined),
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }
}
