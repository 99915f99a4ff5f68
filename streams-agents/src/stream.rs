//! [`AgentStream`]: the events of an agent's partition, as a
//! `futures::Stream`.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;

use crate::error::Result;
use crate::event::Event;
use crate::topic::Topic;

/// The one-event hand-over between an agent's driver and its stream.
pub(crate) struct Mailbox<K, V> {
    slot: Mutex<Slot<K, V>>,
}

struct Slot<K, V> {
    event: Option<Event<K, V>>,
    /// The stream was polled with no event in the slot since the last
    /// event was put in: the agent is done with every event so far.
    waiting: bool,
}

impl<K, V> Mailbox<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            slot: Mutex::new(Slot {
                event: None,
                waiting: false,
            }),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot<K, V>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `event` over to the stream.
    pub(crate) fn put(&self, event: Event<K, V>) {
        let mut slot = self.slot();
        slot.event = Some(event);
        slot.waiting = false;
    }

    /// Whether the agent has taken every event and asked for the next.
    pub(crate) fn waiting(&self) -> bool {
        let slot = self.slot();
        slot.waiting && slot.event.is_none()
    }
}

/// The events of one partition of an agent's topic, in offset order, as a
/// [`futures::Stream`]: every `StreamExt` combinator works on it
/// (`filter`, `map`, `enumerate`, `chunks`, ...). An event is done with
/// (its offset may be committed) when the agent asks for the next one.
///
/// The stream never ends while the app runs; it is dropped with the agent
/// when its partition is revoked or the app stops.
pub struct AgentStream<K, V> {
    mailbox: Arc<Mailbox<K, V>>,
}

impl<K, V> fmt::Debug for AgentStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentStream").finish_non_exhaustive()
    }
}

impl<K, V> AgentStream<K, V> {
    pub(crate) fn new(mailbox: Arc<Mailbox<K, V>>) -> Self {
        Self { mailbox }
    }
}

impl<K, V> Stream for AgentStream<K, V> {
    type Item = Result<Event<K, V>>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // No waker to keep: the driver polls the agent again when it puts
        // the next event in.
        let mut slot = self.mailbox.slot();
        match slot.event.take() {
            Some(event) => Poll::Ready(Some(Ok(event))),
            None => {
                slot.waiting = true;
                Poll::Pending
            }
        }
    }
}

impl<K, V> AgentStream<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
{
    /// The events' values, as Faust's `async for value in stream`; a
    /// record without a value (a tombstone) is passed over, logged at
    /// debug.
    pub fn values(self) -> impl Stream<Item = Result<V>> + Send {
        async_stream::stream! {
            let mut events = self;
            while let Some(event) = futures::StreamExt::next(&mut events).await {
                match event {
                    Ok(Event { value: Some(value), .. }) => yield Ok(value),
                    Ok(event) => tracing::debug!(
                        topic = %event.topic,
                        partition = event.partition,
                        offset = event.offset,
                        "passing over a record without a value"
                    ),
                    Err(e) => yield Err(e),
                }
            }
        }
    }

    /// Sends every event on to `topic` as it is (Faust's `stream.echo`),
    /// then yields it.
    pub fn echo(self, topic: &Topic<K, V>) -> impl Stream<Item = Result<Event<K, V>>> + Send
    where
        K: Clone,
        V: Clone,
    {
        let topic = topic.clone();
        async_stream::stream! {
            let mut events = self;
            while let Some(event) = futures::StreamExt::next(&mut events).await {
                match event {
                    Ok(event) => {
                        match topic.send_record(event.key.clone(), event.value.clone()).await {
                            Ok(()) => yield Ok(event),
                            Err(e) => yield Err(e),
                        }
                    }
                    Err(e) => yield Err(e),
                }
            }
        }
    }
}
