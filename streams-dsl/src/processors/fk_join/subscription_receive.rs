//! The right side's subscriptions (Kafka's `SubscriptionReceiveProcessorSupplier`
//! and `SubscriptionJoinProcessorSupplier` in one): a subscription is kept
//! in (or removed from) the subscription store, and answered with the
//! right row of its foreign key as its instruction says.

use std::fmt;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::change::ValueAndTimestamp;
use crate::options::SerdeArc;
use crate::value_getter::ValueGetter;

use super::{combined_key, Instruction, ResponseWrapper, SubscriptionWrapper};

/// The processor receiving subscriptions.
pub(crate) struct SubscriptionReceive<K, KO, VO> {
    store: String,
    serdes: (SerdeArc<KO>, SerdeArc<K>),
    /// The subscription topic, for the serdes.
    topic: String,
    right: ValueGetter<KO, VO>,
}

impl<K, KO, VO> fmt::Debug for SubscriptionReceive<K, KO, VO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionReceive")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, KO, VO> SubscriptionReceive<K, KO, VO> {
    pub(crate) fn new(
        store: String,
        serdes: (SerdeArc<KO>, SerdeArc<K>),
        topic: String,
        right: ValueGetter<KO, VO>,
    ) -> Self {
        Self {
            store,
            serdes,
            topic,
            right,
        }
    }
}

impl<K, KO, VO> Processor<KO, SubscriptionWrapper<K>, K, ResponseWrapper<VO>>
    for SubscriptionReceive<K, KO, VO>
where
    K: Clone + Send + 'static,
    KO: Clone + Send + 'static,
    VO: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, ResponseWrapper<VO>>,
        record: Record<KO, SubscriptionWrapper<K>>,
    ) -> Result<()> {
        let Some(subscription) = record.value else {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping a subscription without a value");
            ctx.record_dropped();
            return Ok(());
        };
        let right = match &record.key {
            None if subscription.instruction != Instruction::PropagateNullIfNoFkValAvailable => {
                tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping a subscription with a null foreign key");
                ctx.record_dropped();
                return Ok(());
            }
            // A left join's row without a foreign key: answered with no
            // row, never kept.
            None => None,
            Some(foreign_key) => {
                let fk = self.serdes.0.serialize(&self.topic, foreign_key)?;
                let pk = self
                    .serdes
                    .1
                    .serialize(&self.topic, &subscription.primary_key)?;
                let key = combined_key(&fk, &pk);
                {
                    let mut store = ctx
                        .key_value_store::<bytes::Bytes, ValueAndTimestamp<SubscriptionWrapper<K>>>(
                            &self.store,
                        )?;
                    match subscription.instruction {
                        Instruction::DeleteKeyAndPropagate | Instruction::DeleteKeyNoPropagate => {
                            store.delete(&key)?;
                        }
                        _ => store.put(
                            &key,
                            &ValueAndTimestamp::make(subscription.clone(), record.timestamp),
                        )?,
                    }
                }
                self.right.get(&mut ctx.stores(), foreign_key)?
            }
        };
        let timestamp = right
            .as_ref()
            .map_or(record.timestamp, |r| r.timestamp.max(record.timestamp));
        let foreign_value = match subscription.instruction {
            Instruction::DeleteKeyNoPropagate => return Ok(()),
            Instruction::DeleteKeyAndPropagate => None,
            Instruction::PropagateNullIfNoFkValAvailable => right.map(|r| r.value),
            Instruction::PropagateOnlyIfFkValAvailable => match right {
                Some(r) => Some(r.value),
                None => return Ok(()),
            },
        };
        ctx.forward(Record {
            key: Some(subscription.primary_key),
            value: Some(ResponseWrapper {
                hash: subscription.hash,
                foreign_value,
            }),
            timestamp,
            headers: record.headers,
        })
    }
}
