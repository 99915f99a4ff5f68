//! The typed nodes behind [`crate::exec::ErasedNode`]: sources, processors
//! and sinks.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use state_store::CacheEntry;

use crate::error::Result;
use crate::error::StreamsError;
use crate::exec::{
    flushed_down, forward_from, inline_entry, run_inline, take_record, ErasedNode, Exec, Hop,
    InlineChild, TypedInput,
};
use crate::output::Field;
use crate::processor::{Processor, ProcessorContext, TypesMarker};
use crate::record::{Headers, Record};
use crate::serdes::Serde;

/// Deserializes input records and forwards them.
pub(crate) struct SourceNode<K, V> {
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    /// The only child, run inside this node's calls.
    pub(crate) inline: InlineChild<K, V>,
}

/// Takes `input` as `slot`'s inline child when it is a
/// `Box<dyn TypedInput<K, V>>`.
fn host<K: 'static, V: 'static>(
    slot: &mut InlineChild<K, V>,
    child: usize,
    input: Box<dyn Any + Send>,
) -> std::result::Result<(), Box<dyn Any + Send>> {
    let input = input.downcast::<Box<dyn TypedInput<K, V>>>()?;
    *slot = Some((child, *input));
    Ok(())
}

/// Closes an inline child, if any.
fn close_inline<K, V>(slot: &mut InlineChild<K, V>) -> Result<()> {
    match slot {
        Some((_, input)) => input.close_inline(),
        None => Ok(()),
    }
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

    fn hosts_inline(&self) -> bool {
        true
    }

    fn into_inline(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn Any + Send>, Box<dyn ErasedNode>> {
        Err(self)
    }

    fn host_inline(
        &mut self,
        child: usize,
        input: Box<dyn Any + Send>,
    ) -> std::result::Result<(), Box<dyn Any + Send>> {
        host(&mut self.inline, child, input)
    }

    fn flushed_inline(
        &mut self,
        exec: Exec<'_>,
        listener: usize,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        flushed_down(&mut self.inline, exec, listener, store, entry)
    }

    fn close(&mut self) -> Result<()> {
        close_inline(&mut self.inline)
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
        match &mut self.inline {
            Some((child, input)) => run_inline(&mut exec, *child, &mut **input, record),
            None => forward_from(&mut exec, node, record).map_err(|e| *e),
        }
    }
}

/// Runs a user [`Processor`].
pub(crate) struct ProcessorNode<P, KIn, VIn, KOut, VOut> {
    processor: P,
    /// The only child, run inside this node's calls.
    inline: InlineChild<KOut, VOut>,
    _types: TypesMarker<KIn, VIn, KOut, VOut>,
}

impl<P, KIn, VIn, KOut, VOut> ProcessorNode<P, KIn, VIn, KOut, VOut> {
    pub(crate) fn new(processor: P) -> Self {
        Self {
            processor,
            inline: None,
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
        self.process_typed(exec, node, record)
    }

    fn flushed(
        &mut self,
        exec: Exec<'_>,
        node: usize,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let mut ctx =
            ProcessorContext::with_inline_child(exec, node, inline_entry(&mut self.inline));
        self.processor.flushed(&mut ctx, store, entry)
    }

    fn close(&mut self) -> Result<()> {
        let closed = self.processor.close();
        let inline = close_inline(&mut self.inline);
        closed.and(inline)
    }

    fn runs_inline(&self) -> bool {
        self.processor.runs_inline()
    }

    fn hosts_inline(&self) -> bool {
        self.processor.runs_inline()
    }

    fn into_inline(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn Any + Send>, Box<dyn ErasedNode>> {
        let input: Box<dyn TypedInput<KIn, VIn>> = self;
        Ok(Box::new(input))
    }

    fn host_inline(
        &mut self,
        child: usize,
        input: Box<dyn Any + Send>,
    ) -> std::result::Result<(), Box<dyn Any + Send>> {
        host(&mut self.inline, child, input)
    }

    fn flushed_inline(
        &mut self,
        exec: Exec<'_>,
        listener: usize,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        flushed_down(&mut self.inline, exec, listener, store, entry)
    }
}

impl<P, KIn, VIn, KOut, VOut> TypedInput<KIn, VIn> for ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: 'static,
    VIn: 'static,
    KOut: 'static,
    VOut: 'static,
{
    fn process_typed(&mut self, exec: Exec<'_>, node: usize, record: Record<KIn, VIn>) -> Hop {
        let mut ctx =
            ProcessorContext::with_inline_child(exec, node, inline_entry(&mut self.inline));
        match self.processor.process(&mut ctx, record) {
            Ok(()) => Ok(()),
            Err(e) => Err(Box::new(e)),
        }
    }

    fn flushed_inline(
        &mut self,
        exec: Exec<'_>,
        listener: usize,
        store: &str,
        entry: CacheEntry,
        here: bool,
    ) -> Result<()> {
        if here {
            return ErasedNode::flushed(self, exec, listener, store, entry);
        }
        flushed_down(&mut self.inline, exec, listener, store, entry)
    }

    fn close_inline(&mut self) -> Result<()> {
        ErasedNode::close(self)
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
        self.process_typed(exec, node, record)
    }

    fn runs_inline(&self) -> bool {
        true
    }

    fn into_inline(
        self: Box<Self>,
    ) -> std::result::Result<Box<dyn Any + Send>, Box<dyn ErasedNode>> {
        let input: Box<dyn TypedInput<K, V>> = self;
        Ok(Box::new(input))
    }
}

impl<K: 'static, V: 'static> TypedInput<K, V> for SinkNode<K, V> {
    fn process_typed(&mut self, exec: Exec<'_>, _node: usize, record: Record<K, V>) -> Hop {
        let topic = &*self.topic;
        let output = &mut exec.state.output;
        let mark = output.bytes_len();
        let key = match &record.key {
            Some(k) => match self.key_serde.bytes_of(k) {
                Some(bytes) => output.push_slice(bytes),
                None => output
                    .write_field(|out| self.key_serde.serialize_into(topic, k, out))
                    .map_err(|e| Box::new(e.into()))?,
            },
            None => Field::Null,
        };
        let value = match &record.value {
            Some(v) => match self.value_serde.bytes_of(v) {
                Some(bytes) => output.push_slice(bytes),
                None => {
                    match output.write_field(|out| self.value_serde.serialize_into(topic, v, out)) {
                        Ok(value) => value,
                        Err(e) => {
                            output.truncate_bytes(mark);
                            return Err(Box::new(e.into()));
                        }
                    }
                }
            },
            None => Field::Null,
        };
        output.push_fields(&self.topic, key, value, record.timestamp, record.headers);
        Ok(())
    }

    fn flushed_inline(
        &mut self,
        _exec: Exec<'_>,
        listener: usize,
        store: &str,
        _entry: CacheEntry,
        _here: bool,
    ) -> Result<()> {
        Err(StreamsError::Internal(format!(
            "node #{listener} listens to store '{store}' but a sink ends its chain"
        )))
    }

    fn close_inline(&mut self) -> Result<()> {
        Ok(())
    }
}
