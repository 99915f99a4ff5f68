//! What the agent being driven on this thread may reach: its task's stores
//! and outputs, through requests its driver serves between two polls.
//!
//! An agent's future is polled by its driver (a processor of the stream
//! thread that owns the agent's partition). A table operation or a send in
//! the agent's body does not touch the task itself: it queues a request,
//! which the driver runs with the task's processor context as soon as the
//! poll returns, then polls again. So every effect of an event is made by
//! the task that processed it, in its commit (its transaction under
//! exactly-once), before the event's offset can be committed.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::oneshot;
use streams_core::ProcessorContext;

use crate::error::{AgentError, Result};

/// A request of the agent's body, run by its driver with the task's
/// context.
pub(crate) type Request = Box<dyn for<'a> FnOnce(&mut ProcessorContext<'a, (), ()>) + Send>;

/// The requests an agent queued during one poll.
#[derive(Default)]
pub(crate) struct Requests {
    queue: Mutex<VecDeque<Request>>,
}

impl Requests {
    pub(crate) fn push(&self, request: Request) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(request);
    }

    pub(crate) fn take_all(&self) -> VecDeque<Request> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The agent being polled on this thread.
#[derive(Clone)]
pub(crate) struct Current {
    pub(crate) agent: Arc<str>,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: u32,
    pub(crate) requests: Arc<Requests>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Marks `current` as the agent being polled on this thread until dropped.
pub(crate) struct Polling {
    previous: Option<Current>,
}

impl Polling {
    pub(crate) fn start(current: Current) -> Self {
        let previous = CURRENT.with(|c| c.borrow_mut().replace(current));
        Self { previous }
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Whether an agent is being polled on this thread.
pub(crate) fn polling() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// The agent being polled on this thread, or an error naming `what`.
pub(crate) fn current(what: impl FnOnce() -> String) -> Result<Current> {
    CURRENT
        .with(|c| c.borrow().clone())
        .ok_or_else(|| AgentError::OutsideAgent { what: what() })
}

/// Queues `run` for the agent's driver, which runs it before the agent
/// gets its next event, and does not wait for it: for what has no answer
/// (a send).
pub(crate) fn submit<F>(what: impl FnOnce() -> String, run: F) -> Result<()>
where
    F: for<'a> FnOnce(&mut ProcessorContext<'a, (), ()>) + Send + 'static,
{
    let current = current(what)?;
    current.requests.push(Box::new(run));
    Ok(())
}

/// Queues `run` for the agent's driver and waits for its answer.
pub(crate) async fn request<T, F>(what: impl Fn() -> String, run: F) -> Result<T>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&Current, &mut ProcessorContext<'a, (), ()>) -> Result<T> + Send + 'static,
{
    let current = current(&what)?;
    let (tx, rx) = oneshot::channel();
    let for_run = current.clone();
    current.requests.push(Box::new(move |ctx| {
        let _ = tx.send(run(&for_run, ctx));
    }));
    match rx.await {
        Ok(answer) => answer,
        Err(oneshot::Canceled) => Err(AgentError::TaskClosed { what: what() }),
    }
}
