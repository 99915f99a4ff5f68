//! A consumer's read-ahead thread ([`ConsumerConfig::background_fetch`]).
//!
//! The consumer asks for the next fetch of a partition while its caller
//! processes what the last one returned; the thread reads and decodes the
//! batches (the CPU-heavy part of a poll) and hands them back. At most one
//! fetch per partition is outstanding; each carries an id, and the consumer
//! drops a result whose id it no longer waits for (after a seek or a
//! reassignment).
//!
//! [`ConsumerConfig::background_fetch`]: crate::ConsumerConfig::background_fetch

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::debug;

use crate::broker::Broker;
use crate::error::Result;
use crate::record::RecordBatch;
use crate::IsolationLevel;

/// One fetch to run.
#[derive(Debug)]
struct Job {
    id: u64,
    topic: Arc<str>,
    partition: u32,
    offset: u64,
    max_bytes: usize,
    isolation: IsolationLevel,
}

/// How long a read-ahead waits for data at the end of a partition before it
/// comes back empty (Kafka's `fetch.max.wait.ms` default): the consumer then
/// asks again, so that a fetch for a partition it stopped reading does not
/// wait forever.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// A finished fetch; empty when the partition had no data for [`MAX_WAIT`].
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) id: u64,
    pub(crate) batches: Result<Vec<RecordBatch>>,
}

/// The consumer's end of its read-ahead thread. Dropping it ends the thread
/// once its current fetch is done.
#[derive(Debug)]
pub(crate) struct Prefetcher {
    /// Taken on drop, so that the thread sees the channel close.
    jobs: Option<mpsc::Sender<Job>>,
    /// Signalled after each job sent, so that a thread waiting for data sees it.
    new_job: Arc<Notify>,
    done: Arc<Mutex<VecDeque<Done>>>,
    /// Signalled after each finished fetch (a permit is kept if nobody waits).
    pub(crate) ready: Arc<Notify>,
    next_id: u64,
}

impl Prefetcher {
    /// Starts the thread; `None` (with a debug line) if the system refuses
    /// one, in which case the consumer reads in its caller as without
    /// read-ahead.
    pub(crate) fn start(broker: &Broker) -> Option<Prefetcher> {
        let (jobs, receiver) = mpsc::channel::<Job>();
        let done = Arc::new(Mutex::new(VecDeque::new()));
        let ready = Arc::new(Notify::new());
        let new_job = Arc::new(Notify::new());
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                debug!(error = %e, "no read-ahead thread; fetching in the polling task");
                return None;
            }
        };
        let fetcher = Fetcher {
            broker: broker.clone(),
            jobs: receiver,
            new_job: new_job.clone(),
            done: done.clone(),
            ready: ready.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("consumer-fetch".to_owned())
            .spawn(move || runtime.block_on(fetcher.run()));
        match spawned {
            Ok(_) => Some(Prefetcher {
                jobs: Some(jobs),
                new_job,
                done,
                ready,
                next_id: 0,
            }),
            Err(e) => {
                debug!(error = %e, "no read-ahead thread; fetching in the polling task");
                None
            }
        }
    }

    /// Asks for a fetch; returns its id, or `None` if the thread is gone.
    pub(crate) fn request(
        &mut self,
        topic: &Arc<str>,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Option<u64> {
        self.next_id += 1;
        let id = self.next_id;
        self.jobs
            .as_ref()?
            .send(Job {
                id,
                topic: topic.clone(),
                partition,
                offset,
                max_bytes,
                isolation,
            })
            .ok()
            .map(|()| {
                self.new_job.notify_one();
                id
            })
    }

    /// The fetches finished since the last call.
    pub(crate) fn take_done(&self) -> VecDeque<Done> {
        std::mem::take(&mut *self.done.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The read-ahead thread's side.
struct Fetcher {
    broker: Broker,
    jobs: mpsc::Receiver<Job>,
    new_job: Arc<Notify>,
    done: Arc<Mutex<VecDeque<Done>>>,
    ready: Arc<Notify>,
}

impl Fetcher {
    /// Runs the jobs until the consumer is gone. A job at the end of its
    /// partition waits, as a Kafka fetch does, until data arrives there or
    /// [`MAX_WAIT`] passes; the others go on meanwhile.
    async fn run(self) {
        let mut waiting: Vec<(Job, tokio::time::Instant)> = Vec::new();
        loop {
            // Registered before reading, so that an append in between wakes the wait.
            let arrived = self.broker.inner.data_arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            loop {
                match self.jobs.try_recv() {
                    Ok(job) => waiting.push((job, tokio::time::Instant::now() + MAX_WAIT)),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
            let now = tokio::time::Instant::now();
            let mut finished = Vec::new();
            waiting.retain(|(job, deadline)| {
                let batches = self.broker.read_partition(
                    &job.topic,
                    job.partition,
                    job.offset,
                    job.max_bytes,
                    job.isolation,
                );
                let empty = matches!(&batches, Ok(b) if b.is_empty());
                if empty && now < *deadline {
                    return true;
                }
                finished.push(Done {
                    id: job.id,
                    batches,
                });
                false
            });
            if !finished.is_empty() {
                self.done
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(finished);
                self.ready.notify_one();
            }
            let next_deadline = waiting.iter().map(|(_, d)| *d).min();
            tokio::select! {
                _ = &mut arrived, if next_deadline.is_some() => {}
                _ = self.new_job.notified() => {}
                _ = async {
                    match next_deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }
}

impl Drop for Prefetcher {
    /// Closes the job channel and wakes the thread, which then ends.
    fn drop(&mut self) {
        drop(self.jobs.take());
        self.new_job.notify_one();
    }
}
