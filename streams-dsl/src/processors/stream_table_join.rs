//! The stream–table join (Kafka's `KStreamKTableJoinProcessor`): each
//! stream record is joined with the table's current row of its key; table
//! updates emit nothing.

use std::fmt;
use std::sync::Arc;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::value_getter::ValueGetter;

/// Joins a stream value with the table's row, if any; `None` where the
/// join has no result.
pub(crate) type StreamJoinFn<V, VT, VR> = Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// The processor of a stream–table join.
pub(crate) struct StreamTableJoin<K, V, VT, VR> {
    table: ValueGetter<K, VT>,
    joiner: StreamJoinFn<V, VT, VR>,
    /// A left join: a record without a table row is joined with `None`.
    left: bool,
}

impl<K, V, VT, VR> fmt::Debug for StreamTableJoin<K, V, VT, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTableJoin")
            .field("table", &self.table)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<K, V, VT, VR> StreamTableJoin<K, V, VT, VR> {
    pub(crate) fn new(
        table: ValueGetter<K, VT>,
        joiner: StreamJoinFn<V, VT, VR>,
        left: bool,
    ) -> Self {
        Self {
            table,
            joiner,
            left,
        }
    }
}

impl<K, V, VT, VR> Processor<K, V, K, VR> for StreamTableJoin<K, V, VT, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VT: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
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
        let row = match &record.key {
            Some(key) => self.table.get(&mut ctx.stores(), key)?,
            // A left join keeps a record with a null key (KIP-962): it has
            // no row to join.
            None if self.left => None,
            None => {
                tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping record due to a null join key");
                ctx.record_dropped();
                return Ok(());
            }
        };
        if row.is_none() && !self.left {
            return Ok(());
        }
        let Some(joined) = (self.joiner)(value, row.as_ref().map(|r| &r.value)) else {
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
