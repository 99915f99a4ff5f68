//! The left side's subscriptions (Kafka's `SubscriptionSendProcessorSupplier`):
//! each update of a left row subscribes it to its foreign key's right row,
//! and unsubscribes it from the previous foreign key when that changed.

use std::fmt;
use std::sync::Arc;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::change::Change;
use crate::options::SerdeArc;

use super::{value_hash, Instruction, SubscriptionWrapper};

/// The foreign key of a left value; `None`: no foreign key.
pub(crate) type ForeignKeyFn<V, KO> = Arc<dyn Fn(&V) -> Option<KO> + Send + Sync>;

/// The processor sending a left table's subscriptions.
pub(crate) struct SubscriptionSend<K, V, KO> {
    extractor: ForeignKeyFn<V, KO>,
    foreign_key_serde: SerdeArc<KO>,
    value_serde: SerdeArc<V>,
    /// The subscription topic, for the serdes.
    topic: String,
    left: bool,
    /// The left table is versioned: its out-of-order updates are skipped.
    versioned: bool,
    _key: std::marker::PhantomData<fn() -> K>,
}

impl<K, V, KO> fmt::Debug for SubscriptionSend<K, V, KO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionSend")
            .field("topic", &self.topic)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

impl<K, V, KO> SubscriptionSend<K, V, KO> {
    pub(crate) fn new(
        extractor: ForeignKeyFn<V, KO>,
        (foreign_key_serde, value_serde): (SerdeArc<KO>, SerdeArc<V>),
        topic: String,
        left: bool,
        versioned: bool,
    ) -> Self {
        Self {
            extractor,
            foreign_key_serde,
            value_serde,
            topic,
            left,
            versioned,
            _key: std::marker::PhantomData,
        }
    }
}

impl<K, V, KO> SubscriptionSend<K, V, KO>
where
    KO: 'static,
    V: 'static,
{
    fn same_key(&self, a: &Option<KO>, b: &Option<KO>) -> Result<bool> {
        let bytes = |k: &Option<KO>| {
            k.as_ref()
                .map(|k| self.foreign_key_serde.serialize(&self.topic, k))
                .transpose()
        };
        Ok(bytes(a)? == bytes(b)?)
    }
}

impl<K, V, KO> Processor<K, Change<V>, KO, SubscriptionWrapper<K>> for SubscriptionSend<K, V, KO>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    KO: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, KO, SubscriptionWrapper<K>>,
        record: Record<K, Change<V>>,
    ) -> Result<()> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            return Ok(());
        };
        if self.versioned && !change.is_latest {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping an out-of-order update of a versioned table in a foreign-key join");
            ctx.record_dropped();
            return Ok(());
        }
        let hash = change
            .new
            .as_ref()
            .map(|v| {
                self.value_serde
                    .serialize(&self.topic, v)
                    .map(|b| value_hash(&b))
            })
            .transpose()?;
        let new_fk = change.new.as_ref().and_then(|v| (self.extractor)(v));
        let old_fk = change.old.as_ref().and_then(|v| (self.extractor)(v));
        // Kafka 4.1's instructions.
        let mut out = Vec::with_capacity(2);
        if self.left {
            if change.old.is_some() {
                if old_fk.is_some() && !self.same_key(&old_fk, &new_fk)? {
                    out.push((old_fk.clone(), Instruction::DeleteKeyNoPropagate));
                }
                out.push((new_fk, Instruction::PropagateNullIfNoFkValAvailable));
            } else if change.new.is_some() {
                out.push((new_fk, Instruction::PropagateNullIfNoFkValAvailable));
            }
        } else if change.old.is_some() {
            match (old_fk, new_fk) {
                (None, None) => return skip_null_foreign_key(ctx, record.timestamp),
                (None, Some(new)) => {
                    out.push((Some(new), Instruction::PropagateOnlyIfFkValAvailable))
                }
                (Some(old), None) => out.push((Some(old), Instruction::DeleteKeyAndPropagate)),
                (Some(old), Some(new)) => {
                    if self.same_key(&Some(old.clone()), &Some(new.clone()))? {
                        out.push((Some(new), Instruction::PropagateOnlyIfFkValAvailable));
                    } else {
                        out.push((Some(old), Instruction::DeleteKeyNoPropagate));
                        out.push((Some(new), Instruction::PropagateNullIfNoFkValAvailable));
                    }
                }
            }
        } else if change.new.is_some() {
            match new_fk {
                Some(new) => out.push((Some(new), Instruction::PropagateOnlyIfFkValAvailable)),
                None => return skip_null_foreign_key(ctx, record.timestamp),
            }
        }
        for (foreign_key, instruction) in out {
            ctx.forward(Record {
                key: foreign_key,
                value: Some(SubscriptionWrapper {
                    hash,
                    instruction,
                    primary_key: key.clone(),
                }),
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}

fn skip_null_foreign_key<KO, VO>(
    ctx: &mut ProcessorContext<'_, KO, VO>,
    timestamp: i64,
) -> Result<()> {
    tracing::warn!(processor = %ctx.node_name(), timestamp, "skipping record due to a null foreign key");
    ctx.record_dropped();
    Ok(())
}
