//! [`AgentDriver`]: the processor that runs one agent over one partition.
//!
//! The stream thread that owns a partition hands each of its records to
//! the driver, which puts it in the agent's mailbox and polls the agent's
//! future on this thread until the agent asks for the next event. Between
//! polls it serves the table operations and sends the agent queued (see
//! `current.rs`). If the agent waits on something else (a timer, a socket
//! of its own), the thread waits with it: a slow agent holds its
//! partitions back, it does not make a backlog. A wall-clock punctuator
//! polls an agent that was woken while no record came (a timer in its
//! body).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::Thread;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::task::ArcWake;
use streams_core::{
    Processor, ProcessorContext, PunctuationType, Record, Result as StreamsResult, StreamsError,
};
use tokio::runtime::Handle;

use crate::current::{Current, Polling, Requests};
use crate::error::{AgentError, AgentResult};
use crate::event::Event;
use crate::mailbox::Mailbox;

/// Starts an agent's future over the mailbox of its driver: the agent's
/// own topic's, or a repartition topic's (of another key type).
pub(crate) type StartFn<K, V> =
    Arc<dyn Fn(Arc<Mailbox<K, V>>) -> BoxFuture<'static, AgentResult> + Send + Sync>;

/// How often an idle agent that was woken is polled.
const WOKEN_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Wakes the stream thread that drives an agent.
struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl ArcWake for ThreadWaker {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.woken.store(true, Ordering::Release);
        arc_self.thread.unpark();
    }
}

/// The running agent of one task.
struct Running<K, V> {
    future: BoxFuture<'static, AgentResult>,
    mailbox: Arc<Mailbox<K, V>>,
    requests: Arc<Requests>,
    waker: Arc<ThreadWaker>,
    current: Current,
}

/// Runs one agent over the records of one partition.
pub(crate) struct AgentDriver<K, V> {
    topic: Arc<str>,
    start: StartFn<K, V>,
    /// Shared with the punctuator that polls a woken agent.
    agent: Arc<Mutex<Agent<K, V>>>,
}

/// An agent of one task, and what polls it.
struct Agent<K, V> {
    name: Arc<str>,
    runtime: Handle,
    running: Option<Running<K, V>>,
}

impl<K, V> fmt::Debug for AgentDriver<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentDriver")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<K, V> AgentDriver<K, V> {
    pub(crate) fn new(
        agent: Arc<str>,
        topic: Arc<str>,
        start: StartFn<K, V>,
        runtime: Handle,
    ) -> Self {
        Self {
            topic,
            start,
            agent: Arc::new(Mutex::new(Agent {
                name: agent,
                runtime,
                running: None,
            })),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, V> Agent<K, V> {
    fn failed(&self, source: streams_core::BoxError) -> StreamsError {
        StreamsError::User(Box::new(AgentError::AgentFailed {
            agent: self.name.to_string(),
            source,
        }))
    }

    /// Polls the agent until it waits for its next event (or ends),
    /// serving what it asks of the task on the way. With `only_if_woken`,
    /// does nothing unless the agent was woken since its last poll.
    fn drive(
        &mut self,
        ctx: &mut ProcessorContext<'_, (), ()>,
        only_if_woken: bool,
    ) -> StreamsResult<()> {
        let Some(running) = self.running.as_mut() else {
            return Ok(());
        };
        if only_if_woken && !running.waker.woken.load(Ordering::Acquire) {
            return Ok(());
        }
        let waker = futures::task::waker(running.waker.clone());
        let mut cx = Context::from_waker(&waker);
        // The agent's runtime and its task's requests, for every poll
        // below (requests served in between never poll an agent).
        let _runtime = self.runtime.enter();
        let _polling = Polling::start(running.current.clone());
        loop {
            running.waker.woken.store(false, Ordering::Release);
            let poll = running.future.as_mut().poll(&mut cx);
            match poll {
                Poll::Ready(Ok(())) => {
                    // What it sent before it returned still goes out.
                    for request in running.requests.take_all() {
                        request(ctx);
                    }
                    tracing::info!(agent = %self.name, task = %ctx.task_id(), "agent returned; its remaining events are passed over");
                    self.running = None;
                    return Ok(());
                }
                Poll::Ready(Err(e)) => {
                    self.running = None;
                    return Err(self.failed(e));
                }
                Poll::Pending => {
                    let requests = running.requests.take_all();
                    if !requests.is_empty() {
                        for request in requests {
                            request(ctx);
                        }
                        continue;
                    }
                    if running.mailbox.waiting() {
                        return Ok(());
                    }
                    // Waiting on something of its own: wait with it.
                    while !running.waker.woken.load(Ordering::Acquire) {
                        std::thread::park_timeout(Duration::from_millis(100));
                    }
                }
            }
        }
    }
}

impl<K, V> Processor<K, V, (), ()> for AgentDriver<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, (), ()>) -> StreamsResult<()> {
        let mailbox = Arc::new(Mailbox::new());
        let requests = Arc::new(Requests::default());
        {
            let mut agent = lock(&self.agent);
            let current = Current {
                agent: agent.name.clone(),
                topic: self.topic.clone(),
                partition: ctx.task_id().partition,
                requests: requests.clone(),
            };
            let future: BoxFuture<'static, AgentResult> = {
                let _runtime = agent.runtime.enter();
                // Outside tokio's cooperative budget: that budget is the
                // stream thread's own task's, which does not yield while
                // the agent runs, so it would run out for good.
                Box::pin(tokio::task::unconstrained((self.start)(mailbox.clone())))
            };
            agent.running = Some(Running {
                future,
                mailbox,
                requests,
                waker: Arc::new(ThreadWaker {
                    thread: std::thread::current(),
                    woken: AtomicBool::new(true),
                }),
                current,
            });
            tracing::debug!(agent = %agent.name, task = %ctx.task_id(), "agent started");
            // Runs the agent up to its first wait for an event.
            agent.drive(ctx, false)?;
        }
        let agent = self.agent.clone();
        ctx.schedule(
            WOKEN_POLL_INTERVAL,
            PunctuationType::WallClockTime,
            move |ctx: &mut ProcessorContext<'_, (), ()>, _now| lock(&agent).drive(ctx, true),
        )?;
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, (), ()>,
        record: Record<K, V>,
    ) -> StreamsResult<()> {
        let mut agent = lock(&self.agent);
        let Some(running) = agent.running.as_ref() else {
            return Ok(());
        };
        let Some(meta) = ctx.record_metadata() else {
            return Err(StreamsError::Internal(format!(
                "agent '{}' got a record without metadata",
                agent.name
            )));
        };
        running.mailbox.put(Event {
            key: record.key,
            value: record.value,
            timestamp: record.timestamp,
            headers: record.headers,
            topic: meta.topic.clone(),
            partition: meta.partition,
            offset: meta.offset,
        });
        agent.drive(ctx, false)
    }

    fn close(&mut self) -> StreamsResult<()> {
        let mut agent = lock(&self.agent);
        if agent.running.take().is_some() {
            tracing::debug!(agent = %agent.name, "agent stopped with its task");
        }
        Ok(())
    }
}
