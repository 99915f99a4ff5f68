//! A stream thread's sender: the thread of its own that appends the stream
//! thread's output to the broker, as Kafka's producer I/O thread does, so
//! that the stream thread processes the next records meanwhile.
//!
//! Batches go out in the order they were handed over, one at a time, each
//! with the producer that was current when it was handed over. The stream
//! thread collects the outcomes: without waiting between polls, and waiting
//! for every batch before anything that must follow them (a flush, an
//! offset commit, a transaction's commit or abort, a new producer). A
//! failed batch is reported once every batch handed over before the report
//! has settled, so that the caller acts on a quiet producer.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::client::{StreamProducer, TopicPartition, Written};
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;
use crate::output::Output;

/// The output of tasks to send (sinks, changelogs, dead letters), per task,
/// by logical topic.
pub(crate) type Outgoing = Vec<(TaskId, Output)>;

/// Per task, the changelog partitions that sent records reached and the
/// next offset of each.
pub(crate) type Sent = Vec<(TaskId, Vec<(TopicPartition, u64)>)>;

/// Where the output of tasks goes: the physical name of each logical topic,
/// and which topics are changelogs (pinned to the task's partition).
#[derive(Debug, Default)]
pub(crate) struct Routing {
    /// Logical topic names of the topology to physical ones (internal topics
    /// get the `<application.id>-` prefix); absent names are physical.
    pub(crate) physical: FxHashMap<String, String>,
    /// Changelog topics, by their physical names.
    pub(crate) changelogs: FxHashSet<String>,
}

/// Batches handed over and not yet settled, at most; handing over one more
/// first waits for the oldest. Bounds the memory of a thread that processes
/// faster than the broker appends.
const MAX_IN_FLIGHT: usize = 2;

struct Job {
    producer: Arc<dyn StreamProducer>,
    routing: Arc<Routing>,
    outgoing: Outgoing,
}

/// The handle the stream thread keeps on its sender thread.
#[derive(Debug)]
pub(crate) struct Sender {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Result<Sent>>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("tasks", &self.outgoing.len())
            .finish_non_exhaustive()
    }
}

/// The changelog partitions that `written` reached, with the next offset
/// of each.
fn changelog_offsets(routing: &Routing, written: Written) -> Vec<(TopicPartition, u64)> {
    written
        .into_iter()
        .filter(|(tp, _)| routing.changelogs.contains(&tp.topic))
        .map(|(tp, last)| (tp, last + 1))
        .collect()
}

/// Sends each task's output, changelog records pinned to the task's
/// partition; returns the changelog offsets reached per task.
async fn send(
    producer: &dyn StreamProducer,
    routing: &Routing,
    outgoing: Outgoing,
) -> Result<Sent> {
    let mut sent = Vec::with_capacity(outgoing.len());
    for (id, output) in outgoing {
        // Each topic's physical name and partition rule, looked up once.
        let targets: Vec<(&str, Option<u32>)> = output
            .topics()
            .iter()
            .map(|topic| {
                let name = routing
                    .physical
                    .get(&**topic)
                    .map_or(&**topic, String::as_str);
                let partition = routing.changelogs.contains(name).then_some(id.partition);
                (name, partition)
            })
            .collect();
        let written = producer.send(&output.outgoing(&targets)).await?;
        sent.push((id, changelog_offsets(routing, written)));
    }
    Ok(sent)
}

impl Sender {
    /// Starts the sender thread `name`.
    pub(crate) fn start(name: String) -> Result<Self> {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(MAX_IN_FLIGHT);
        let (done_tx, done) = mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| StreamsError::Internal(format!("cannot build the sender runtime: {e}")))?;
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let outcome =
                        runtime.block_on(send(&*job.producer, &job.routing, job.outgoing));
                    if done_tx.send(outcome).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| StreamsError::Internal(format!("cannot start a sender thread: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Hands `outgoing` over to be sent with `producer` along `routing`;
    /// first waits for the oldest batch when [`MAX_IN_FLIGHT`] are out.
    /// Returns the outcomes settled meanwhile.
    pub(crate) fn dispatch(
        &mut self,
        producer: &Arc<dyn StreamProducer>,
        routing: &Arc<Routing>,
        outgoing: Outgoing,
    ) -> Result<Sent> {
        let mut settled = Vec::new();
        if outgoing.is_empty() {
            return Ok(settled);
        }
        if self.in_flight >= MAX_IN_FLIGHT {
            settled = self.settle_one()?;
        }
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(Job {
            producer: producer.clone(),
            routing: routing.clone(),
            outgoing,
        })
        .map_err(|_| stopped())?;
        self.in_flight += 1;
        Ok(settled)
    }

    /// The outcomes of the batches that have settled, without waiting
    /// (unless one failed: then every batch out is waited for first).
    pub(crate) fn settle_ready(&mut self) -> Result<Sent> {
        let mut sent = Vec::new();
        while self.in_flight > 0 {
            match self.done.try_recv() {
                Ok(outcome) => {
                    self.in_flight -= 1;
                    match outcome {
                        Ok(s) => sent.extend(s),
                        Err(e) => return Err(self.after_failure(e)),
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.in_flight = 0;
                    return Err(stopped());
                }
            }
        }
        Ok(sent)
    }

    /// Waits for every batch handed over; returns their metadata, or the
    /// first failure once all have settled.
    pub(crate) fn settle_all(&mut self) -> Result<Sent> {
        let mut sent = Vec::new();
        while self.in_flight > 0 {
            sent.extend(self.settle_one()?);
        }
        Ok(sent)
    }

    /// Waits for every batch handed over and drops their outcomes (the
    /// caller is giving the work up: an abort, a dirty close).
    pub(crate) fn discard_all(&mut self) {
        while self.in_flight > 0 {
            self.in_flight -= 1;
            match self.done.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "a send failed while its work was given up")
                }
                Err(_) => self.in_flight = 0,
            }
        }
    }

    fn settle_one(&mut self) -> Result<Sent> {
        if self.in_flight == 0 {
            return Ok(Vec::new());
        }
        self.in_flight -= 1;
        match self.done.recv() {
            Ok(Ok(sent)) => Ok(sent),
            Ok(Err(e)) => Err(self.after_failure(e)),
            Err(_) => {
                self.in_flight = 0;
                Err(stopped())
            }
        }
    }

    /// After a failed batch: lets the later ones settle (their outcomes no
    /// longer matter: the caller stops or starts over from the last
    /// commit) and returns the failure.
    fn after_failure(&mut self, error: StreamsError) -> StreamsError {
        self.discard_all();
        error
    }
}

fn stopped() -> StreamsError {
    StreamsError::Internal("the stream thread's sender thread stopped".to_owned())
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its current batch is out.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the sender thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use broker_embedded::{Broker, BrokerConfig, NewTopic};
    use bytes::Bytes;

    use super::*;
    use crate::client::embedded::EmbeddedClients;
    use crate::client::{ClientSupplier, ProducerSettings};
    use crate::record::Headers;
    use crate::record::RawRecord;

    fn task(partition: u32) -> TaskId {
        TaskId {
            subtopology: 0,
            partition,
        }
    }

    fn raw(value: &str) -> RawRecord {
        RawRecord {
            key: Some(Bytes::from(value.to_owned())),
            value: Some(Bytes::from(value.to_owned())),
            timestamp: 1,
            headers: Headers::new(),
        }
    }

    /// `values` to the changelog (logical name `store-changelog`, physical
    /// `t`), then one record to the output topic `out`.
    fn output(values: &[&str]) -> Output {
        let changelog: Arc<str> = Arc::from("store-changelog");
        let mut out = Output::default();
        for v in values {
            out.push_raw(&changelog, raw(v));
        }
        out.push_raw(&Arc::from("out"), raw("o"));
        out
    }

    #[tokio::test]
    async fn batches_are_sent_in_order_and_a_failure_is_reported_after_the_rest(
    ) -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let broker = Broker::open(dir.path(), BrokerConfig::default()).await?;
        broker.create_topic(NewTopic::new("t", 2)).await?;
        broker.create_topic(NewTopic::new("out", 1)).await?;
        let producer = EmbeddedClients::new(broker.clone()).producer(ProducerSettings {
            client_id: "test".to_owned(),
            transactional_id: None,
            transaction_timeout_ms: 10_000,
        })?;
        let routing = Arc::new(Routing {
            physical: [("store-changelog".to_owned(), "t".to_owned())]
                .into_iter()
                .collect(),
            changelogs: ["t".to_owned()].into_iter().collect(),
        });
        let mut sender = Sender::start("test-producer".to_owned())?;

        // More batches than may be out at once: the oldest settle first.
        // Changelog records go to their task's partition; only changelog
        // offsets come back.
        let mut sent = Vec::new();
        for round in 0..5u32 {
            let outgoing = vec![(task(round % 2), output(&["a", "b"]))];
            sent.extend(sender.dispatch(&producer, &routing, outgoing)?);
        }
        sent.extend(sender.settle_all()?);
        let reached: Vec<(u32, Vec<(u32, u64)>)> = sent
            .iter()
            .map(|(id, r)| {
                (
                    id.partition,
                    r.iter().map(|(tp, o)| (tp.partition, *o)).collect(),
                )
            })
            .collect();
        assert_eq!(
            reached,
            [
                (0, vec![(0, 2)]),
                (1, vec![(1, 2)]),
                (0, vec![(0, 4)]),
                (1, vec![(1, 4)]),
                (0, vec![(0, 6)]),
            ]
        );
        assert_eq!(broker.offsets("out", 0).await?.1, 5);

        // A batch of a task whose changelog partition does not exist fails;
        // the batch handed over after it is still appended before the
        // failure is reported, and nothing is left out.
        sender.dispatch(&producer, &routing, vec![(task(9), output(&["x"]))])?;
        sender.dispatch(&producer, &routing, vec![(task(1), output(&["y"]))])?;
        let failure = sender.settle_all();
        assert!(
            matches!(failure, Err(StreamsError::Client { .. })),
            "{failure:?}"
        );
        assert!(sender.settle_all()?.is_empty());
        assert_eq!(broker.offsets("t", 1).await?.1, 5);
        drop(sender);
        broker.close().await?;
        Ok(())
    }
}
