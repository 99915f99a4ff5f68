//! The right table's updates (Kafka's `ForeignTableJoinProcessorSupplier`):
//! every left row subscribed to the updated foreign key is answered with
//! the new right row.

use std::fmt;

use bytes::Bytes;
use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::change::{Change, ValueAndTimestamp};
use crate::options::SerdeArc;

use super::{foreign_key_prefix, ResponseWrapper, SubscriptionWrapper};

/// The processor answering subscribers when the right table changes.
pub(crate) struct ForeignTableJoin<KO, K, VO> {
    store: String,
    foreign_key_serde: SerdeArc<KO>,
    /// The subscription topic, for the serde.
    topic: String,
    /// The right table is versioned: its out-of-order updates are skipped.
    versioned: bool,
    _types: std::marker::PhantomData<fn() -> (K, VO)>,
}

impl<KO, K, VO> fmt::Debug for ForeignTableJoin<KO, K, VO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForeignTableJoin")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<KO, K, VO> ForeignTableJoin<KO, K, VO> {
    pub(crate) fn new(
        store: String,
        foreign_key_serde: SerdeArc<KO>,
        topic: String,
        versioned: bool,
    ) -> Self {
        Self {
            store,
            foreign_key_serde,
            topic,
            versioned,
            _types: std::marker::PhantomData,
        }
    }
}

/// The smallest byte string above every string that starts with `prefix`,
/// if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl<KO, K, VO> Processor<KO, Change<VO>, K, ResponseWrapper<VO>> for ForeignTableJoin<KO, K, VO>
where
    KO: Clone + Send + 'static,
    K: Clone + Send + 'static,
    VO: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, ResponseWrapper<VO>>,
        record: Record<KO, Change<VO>>,
    ) -> Result<()> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping a foreign table update with a null key");
            ctx.record_dropped();
            return Ok(());
        };
        if self.versioned && !change.is_latest {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping an out-of-order update of a versioned table in a foreign-key join");
            ctx.record_dropped();
            return Ok(());
        }
        let prefix = foreign_key_prefix(&self.foreign_key_serde.serialize(&self.topic, key)?);
        let subscribers: Vec<SubscriptionWrapper<K>> = {
            let store = ctx
                .key_value_store::<Bytes, ValueAndTimestamp<SubscriptionWrapper<K>>>(&self.store)?;
            let entries = match prefix_end(&prefix) {
                // `range` is inclusive: the end itself never starts with
                // the prefix, and is filtered out below.
                Some(end) => store.range(&Bytes::from(prefix.clone()), &Bytes::from(end))?,
                None => store.all()?,
            };
            let mut subscribers = Vec::new();
            for entry in entries {
                let (stored, subscription) = entry?;
                if stored.starts_with(&prefix) {
                    subscribers.push(subscription.value);
                }
            }
            subscribers
        };
        for subscription in subscribers {
            ctx.forward(Record {
                key: Some(subscription.primary_key),
                value: Some(ResponseWrapper {
                    hash: subscription.hash,
                    foreign_value: change.new.clone(),
                }),
                timestamp: record.timestamp,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_end_is_above_every_string_with_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
    }
}
