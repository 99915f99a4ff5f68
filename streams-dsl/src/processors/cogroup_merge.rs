//! The merge node of a cogroup (Kafka's `KTablePassThrough` named
//! `COGROUPKSTREAM-MERGE`): the updates of every input's aggregator meet
//! here and go downstream unchanged, as one table.

use std::fmt;
use std::marker::PhantomData;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::change::Change;

/// Forwards the updates of a cogroup's aggregators as they come.
pub(crate) struct CogroupMerge<K, V> {
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> fmt::Debug for CogroupMerge<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CogroupMerge").finish()
    }
}

impl<K, V> CogroupMerge<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<K, V> Processor<K, Change<V>, K, Change<V>> for CogroupMerge<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<()> {
        ctx.forward(record)
    }
}
