//! The typed nodes behind [`crate::task::ErasedNode`]: sources, processors
//! and sinks.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use state_store::CacheEntry;

use crate::error::Result;
use crate::output::Field;
use crate::processor::{Processor, ProcessorContext, TypesMarker};
use crate::record::{Headers, Record};
use crate::serdes::Serde;
use crate::task::{forward_from, take_record, ErasedNode, Exec, Hop};

/// Deserializes input records and forwards them.
pub(crate) struct SourceNode<K, V> {
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> ErasedNode for SourceNode<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(&mut self, exec: Exec<'_>, node: usize, record: &mut dyn Any) -> Hop {
        // A source has no parents; this only happens if a sink loops back
        // inside a task, which the topology builder rules out.
        let record = take_record::<K, V>(record, &exec.plan.nodes[node].name)?;
        let mut exec = exec;
        forward_from(&mut exec, node, record)
    }

    fn deliver(
        &mut self,
        mut exec: Exec<'_>,
        node: usize,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let state = &mut *exec.state;
        let topic = state.current.as_ref().map_or("", |m| &*m.topic);
        let (key_bytes, value_bytes) = match &state.current_bytes {
            Some((k, v)) => (k.as_ref(), v.as_ref()),
            None => (None, None),
        };
        let key = match self.key_serde.deserialize_nullable(topic, key_bytes) {
            Ok(key) => key,
            Err(e) => return state.deserialization_failed(node, e, "key", timestamp, headers),
        };
        let value = match self.value_serde.deserialize_nullable(topic, value_bytes) {
            Ok(value) => value,
            Err(e) => return state.deserialization_failed(node, e, "value", timestamp, headers),
        };
        state.advance_stream_time(timestamp);
        let record = Record {
            key,
            value,
            timestamp,
            headers,
        };
        forward_from(&mut exec, node, record).map_err(|e| *e)
    }
}

/// Runs a user [`Processor`].
pub(crate) struct ProcessorNode<P, KIn, VIn, KOut, VOut> {
    processor: P,
    _types: TypesMarker<KIn, VIn, KOut, VOut>,
}

impl<P, KIn, VIn, KOut, VOut> ProcessorNode<P, KIn, VIn, KOut, VOut> {
    pub(crate) fn new(processor: P) -> Self {
        Self {
            processor,
            _types: PhantomData,
        }
    }
}

impl<P, KIn, VIn, KOut, VOut> ErasedNode for ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: 'static,
    VIn: 'static,
    KOut: 'static,
    VOut: 'static,
{
    fn init(&mut self, exec: Exec<'_>, node: usize) -> Result<()> {
        self.processor.init(&mut ProcessorContext::new(exec, node))
    }

    fn process(&mut self, exec: Exec<'_>, node: usize, record: &mut dyn Any) -> Hop {
        let record = take_record::<KIn, VIn>(record, &exec.plan.nodes[node].name)?;
        match self
            .processor
            .process(&mut ProcessorContext::new(exec, node), record)
        {
            Ok(()) => Ok(()),
            Err(e) => Err(Box::new(e)),
        }
    }

    fn flushed(
        &mut self,
        exec: Exec<'_>,
        node: usize,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        self.processor
            .flushed(&mut ProcessorContext::new(exec, node), store, entry)
    }

    fn close(&mut self) -> Result<()> {
        self.processor.close()
    }
}

/// Serializes records for a topic, straight into the task's output.
pub(crate) struct SinkNode<K, V> {
    topic: Arc<str>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> SinkNode<K, V> {
    pub(crate) fn new(
        topic: Arc<str>,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        Self {
            topic,
            key_serde,
            value_serde,
        }
    }
}

impl<K: 'static, V: 'static> ErasedNode for SinkNode<K, V> {
    fn process(&mut self, exec: Exec<'_>, node: usize, record: &mut dyn Any) -> Hop {
        let record = take_record::<K, V>(record, &exec.plan.nodes[node].name)?;
        let topic = &*self.topic;
        let output = &mut exec.state.output;
        let mark = output.bytes_len();
        let key = match &record.key {
            Some(k) => output
                .write_field(|out| self.key_serde.serialize_into(topic, k, out))
                .map_err(|e| Box::new(e.into()))?,
            None => Field::Null,
        };
        let value = match &record.value {
            Some(v) => {
                match output.write_field(|out| self.value_serde.serialize_into(topic, v, out)) {
                    Ok(value) => value,
                    Err(e) => {
                        output.truncate_bytes(mark);
                        return Err(Box::new(e.into()));
                    }
                }
            }
            None => Field::Null,
        };
        output.push_fields(&self.topic, key, value, record.timestamp, record.headers);
        Ok(())
    }
}
