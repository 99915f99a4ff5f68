//! The left side's answers (Kafka's `ResponseJoinProcessorSupplier`): a
//! response is joined with the left row's current value, unless that value
//! changed since it subscribed (its hash differs), in which case a later
//! response will answer the newer subscription.

use std::fmt;
use std::sync::Arc;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::options::SerdeArc;
use crate::value_getter::ValueGetter;

use super::{value_hash, ResponseWrapper};

/// Joins the left value with the right row, if any; `None` where the join
/// has no result (an inner join without a right row).
pub(crate) type FkJoinFn<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

/// The processor resolving responses.
pub(crate) struct ResponseJoin<K, V, VO, VR> {
    left_table: ValueGetter<K, V>,
    value_serde: SerdeArc<V>,
    /// The response topic, for the serde.
    topic: String,
    joiner: FkJoinFn<V, VO, VR>,
}

impl<K, V, VO, VR> fmt::Debug for ResponseJoin<K, V, VO, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseJoin")
            .field("left_table", &self.left_table)
            .finish_non_exhaustive()
    }
}

impl<K, V, VO, VR> ResponseJoin<K, V, VO, VR> {
    pub(crate) fn new(
        left_table: ValueGetter<K, V>,
        value_serde: SerdeArc<V>,
        topic: String,
        joiner: FkJoinFn<V, VO, VR>,
    ) -> Self {
        Self {
            left_table,
            value_serde,
            topic,
            joiner,
        }
    }
}

impl<K, V, VO, VR> Processor<K, ResponseWrapper<VO>, K, VR> for ResponseJoin<K, V, VO, VR>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VO: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VR>,
        record: Record<K, ResponseWrapper<VO>>,
    ) -> Result<()> {
        let (Some(key), Some(response)) = (&record.key, &record.value) else {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping a subscription response without a key or value");
            ctx.record_dropped();
            return Ok(());
        };
        let current = self.left_table.get(&mut ctx.stores(), key)?;
        let current_hash = current
            .as_ref()
            .map(|c| {
                self.value_serde
                    .serialize(&self.topic, &c.value)
                    .map(|b| value_hash(&b))
            })
            .transpose()?;
        if current_hash != response.hash {
            tracing::trace!(processor = %ctx.node_name(), "dropping a response to an outdated subscription");
            return Ok(());
        }
        let result = current
            .as_ref()
            .and_then(|c| (self.joiner)(&c.value, response.foreign_value.as_ref()));
        ctx.forward(Record {
            key: record.key,
            value: result,
            timestamp: record.timestamp,
            headers: record.headers,
        })
    }
}
