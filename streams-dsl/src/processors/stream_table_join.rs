//! The stream–table join (Kafka's `KStreamKTableJoinProcessor`): each
//! stream record is joined with the table's row of its key (as of the
//! record's timestamp when the table is versioned); table updates emit
//! nothing. With a grace period, stream records first wait in a
//! time-ordered buffer ([`JoinBuffer`]).

use std::fmt;
use std::sync::Arc;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::processors::join_buffer::JoinBuffer;
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
    /// The buffer of a join with a grace period.
    buffer: Option<JoinBuffer<K, V>>,
}

impl<K, V, VT, VR> fmt::Debug for StreamTableJoin<K, V, VT, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTableJoin")
            .field("table", &self.table)
            .field("left", &self.left)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl<K, V, VT, VR> StreamTableJoin<K, V, VT, VR> {
    pub(crate) fn new(
        table: ValueGetter<K, VT>,
        joiner: StreamJoinFn<V, VT, VR>,
        left: bool,
        buffer: Option<JoinBuffer<K, V>>,
    ) -> Self {
        Self {
            table,
            joiner,
            left,
            buffer,
        }
    }
}

impl<K, V, VT, VR> StreamTableJoin<K, V, VT, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VT: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    /// Joins `record` (whose value is not null) with the table's row of
    /// its key as of its timestamp (the current row of a table that is
    /// not versioned) and forwards the result, if any.
    fn join(&self, ctx: &mut ProcessorContext<'_, K, VR>, record: Record<K, V>) -> Result<()> {
        let Some(value) = &record.value else {
            return Ok(());
        };
        let row = match &record.key {
            Some(key) => self
                .table
                .get_as_of(&mut ctx.stores(), key, record.timestamp)?,
            None => None,
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
        if record.value.is_none() {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping record due to a null join value");
            ctx.record_dropped();
            return Ok(());
        }
        if record.key.is_none() {
            // A left join keeps a record with a null key (KIP-962): it has
            // no row to join, and it is joined at once, without waiting in
            // the buffer (Kafka's buffer fails on a null key).
            if self.left {
                return self.join(ctx, record);
            }
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping record due to a null join key");
            ctx.record_dropped();
            return Ok(());
        }
        let Some(mut buffer) = self.buffer.take() else {
            return self.join(ctx, record);
        };
        let result = (|| {
            let (Some(key), Some(value)) = (&record.key, &record.value) else {
                return Ok(());
            };
            if !buffer.put(ctx, key, value, record.timestamp, &record.headers)? {
                // Already older than stream time minus the grace period.
                return self.join(ctx, record);
            }
            for due in buffer.evict(ctx)? {
                self.join(ctx, due)?;
            }
            Ok(())
        })();
        self.buffer = Some(buffer);
        result
    }
}
