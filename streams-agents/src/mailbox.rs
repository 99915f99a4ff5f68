//! [`Mailbox`]: the one-event hand-over between an agent's driver and its
//! stream.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use crate::error::Result;
use crate::event::Event;

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

impl<K, V> Mailbox<K, V> {
    /// The next event, or `Pending` with the agent marked as waiting.
    pub(crate) fn poll_event(&self) -> Poll<Option<Result<Event<K, V>>>> {
        let mut slot = self.slot();
        match slot.event.take() {
            Some(event) => Poll::Ready(Some(Ok(event))),
            None => {
                slot.waiting = true;
                Poll::Pending
            }
        }
    }
}
