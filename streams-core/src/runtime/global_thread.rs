//! The global thread (Kafka's `GlobalStreamThread`): reads the topics of
//! the global tables from their beginning to their end before any stream
//! thread starts, then follows them for as long as the app runs.
//!
//! Global tables keep no local files: their topics are their changelogs,
//! so every start reads them in full (what Kafka does without a
//! checkpoint). Under exactly-once they are read `read_committed`, up to
//! the last stable offset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{ClientSupplier, ConsumerSettings, Isolation, PolledRun, TopicPartition};
use crate::config::DeserializationHandler;
use crate::error::{Result, StreamsError};
use crate::global::{Applied, GlobalTables};

use super::setup::Plan;
use super::state::Shared;

/// How long one poll of the global consumer waits for records.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// The running global thread.
#[derive(Debug)]
pub(crate) struct GlobalThread {
    join: Option<std::thread::JoinHandle<()>>,
}

impl GlobalThread {
    /// Waits for the thread to stop (after the app's shutdown flag is set).
    pub(crate) fn join(&mut self) -> bool {
        match self.join.take() {
            Some(join) => join.join().is_ok(),
            None => true,
        }
    }
}

/// Starts the global thread over the partitions of the global tables'
/// topics and returns once it has read them to their end (or failed).
pub(crate) async fn start(
    plan: Arc<Plan>,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
    partitions: Vec<TopicPartition>,
) -> Result<GlobalThread> {
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<()>>();
    let name = format!("{}-GlobalStreamThread", plan.config.application_id());
    let join = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let mut ready = Some(tx);
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| {
                    StreamsError::Internal(format!("cannot build the global thread's runtime: {e}"))
                })
                .and_then(|rt| rt.block_on(run(&plan, &*clients, &shared, partitions, &mut ready)));
            match (result, ready.take()) {
                // Failed while bootstrapping: `start` reports it.
                (Err(e), Some(tx)) => {
                    if tx.send(Err(e)).is_err() {
                        tracing::debug!("the app stopped waiting for the global thread");
                    }
                }
                (Err(e), None) => {
                    tracing::error!(error = %e, "global thread failed");
                    shared.fail(e);
                }
                (Ok(()), _) => {}
            }
        })
        .map_err(|e| StreamsError::Internal(format!("cannot start the global thread: {e}")))?;
    let mut thread = GlobalThread { join: Some(join) };
    match rx.await {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            thread.join();
            Err(e)
        }
        Err(_) => {
            thread.join();
            Err(StreamsError::Internal(
                "the global thread stopped while reading its topics".to_owned(),
            ))
        }
    }
}

async fn run(
    plan: &Plan,
    clients: &dyn ClientSupplier,
    shared: &Shared,
    partitions: Vec<TopicPartition>,
    ready: &mut Option<tokio::sync::oneshot::Sender<Result<()>>>,
) -> Result<()> {
    let eos = plan.process_id.is_some();
    let mut consumer = clients.restore_consumer(ConsumerSettings {
        client_id: format!(
            "{}-GlobalStreamThread-global-consumer",
            plan.config.application_id()
        ),
        group_id: None,
        isolation: if eos {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        },
        session_timeout_ms: plan.clients.session_timeout_ms,
        heartbeat_interval_ms: plan.clients.heartbeat_interval_ms,
        max_poll_records: 5_000,
        max_partition_fetch_bytes: usize::try_from(plan.clients.max_partition_fetch_bytes)
            .unwrap_or(usize::MAX),
        background_fetch: false,
    })?;
    let mut ends = HashMap::new();
    let mut starts = Vec::with_capacity(partitions.len());
    for tp in partitions {
        let marks = consumer.watermarks(&tp).await?;
        ends.insert(tp.clone(), if eos { marks.last_stable } else { marks.high });
        starts.push((tp, marks.log_start));
    }
    consumer.assign(starts).await?;
    let globals = &plan.globals;
    let handler = plan.config.deserialization_handler();

    // Bootstrap: every partition up to the end it had at start.
    let mut applied = 0u64;
    loop {
        let behind = ends
            .iter()
            .any(|(tp, end)| consumer.position(tp).is_none_or(|p| p < *end));
        if !behind || shared.shutting_down() {
            break;
        }
        let runs = consumer.poll(POLL_TIMEOUT).await?;
        if runs.is_empty() && consumer.empty_poll_is_end() {
            break;
        }
        applied += apply(globals, runs, handler)?;
    }
    tracing::info!(
        tables = globals.iter().count(),
        records = applied,
        "global tables read to their end"
    );
    if let Some(tx) = ready.take() {
        if tx.send(Ok(())).is_err() {
            return Ok(());
        }
    }

    // Then follow the topics until the app stops.
    while !shared.shutting_down() {
        let runs = consumer.poll(POLL_TIMEOUT).await?;
        apply(globals, runs, handler)?;
    }
    Ok(())
}

/// Applies polled records to their tables; returns how many it applied.
fn apply(
    globals: &GlobalTables,
    runs: Vec<PolledRun>,
    handler: DeserializationHandler,
) -> Result<u64> {
    let mut applied = 0;
    for run in runs {
        let Some(table) = globals.by_topic(&run.topic) else {
            continue;
        };
        for record in run.records {
            let at = (run.partition, record.offset);
            match table.apply(
                at,
                record.key.as_ref(),
                record.value.as_ref(),
                record.timestamp,
            ) {
                Ok(Applied::Updated) => applied += 1,
                Ok(Applied::NullKey) => {
                    tracing::warn!(table = %table.name(), topic = %run.topic, partition = run.partition, offset = record.offset, "skipping global table record with a null key");
                }
                Err(e @ StreamsError::Deserialization { .. })
                    if handler != DeserializationHandler::Fail =>
                {
                    tracing::warn!(table = %table.name(), topic = %run.topic, partition = run.partition, offset = record.offset, error = %e, "skipping a global table record that does not decode");
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(applied)
}
