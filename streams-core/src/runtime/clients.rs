//! The clients of a stream thread: the settings of its consumers and
//! producer, and how the thread calls them.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::client::{
    ClientSupplier, ConsumerSettings, Isolation, ProducerSettings, StreamProducer,
};
use crate::error::{Result, StreamsError};

use super::setup::Plan;

/// How long a poll waits for data before the loop checks for shutdown,
/// commits and wall-clock punctuation.
pub(super) const POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// Runs a broker call that completes without waiting.
///
/// The embedded broker's calls run in the caller and complete at their
/// first poll; the rebalance listener, which is synchronous, relies on
/// that. A call that would wait is reported instead of blocking the thread.
pub(super) fn now<F: Future>(fut: F) -> Result<F::Output> {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(StreamsError::Internal(
            "a broker call from the stream thread did not complete at once".to_owned(),
        )),
    }
}

pub(super) fn consumer_settings(plan: &Plan, index: usize, group: bool) -> ConsumerSettings {
    let eos = plan.process_id.is_some();
    ConsumerSettings {
        client_id: format!(
            "{}-StreamThread-{}-{}",
            plan.config.application_id(),
            index + 1,
            if group {
                "consumer"
            } else {
                "restore-consumer"
            }
        ),
        group_id: group.then(|| plan.config.application_id().to_owned()),
        session_timeout_ms: plan.clients.session_timeout_ms,
        heartbeat_interval_ms: plan.clients.heartbeat_interval_ms,
        max_poll_records: if group {
            usize::try_from(plan.clients.max_poll_records).unwrap_or(usize::MAX)
        } else {
            5_000
        },
        isolation: if eos {
            Isolation::ReadCommitted
        } else {
            Isolation::ReadUncommitted
        },
        max_partition_fetch_bytes: usize::try_from(plan.clients.max_partition_fetch_bytes)
            .unwrap_or(usize::MAX),
        // The stream thread's consumer decodes its next fetches on a thread of its own
        // while the thread processes; the restore consumer reads in bulk as it goes.
        background_fetch: group,
    }
}

/// The thread's producer: transactional (and idempotent) with a
/// transactional id, idempotent without.
pub(super) fn make_producer(
    clients: &dyn ClientSupplier,
    transactional_id: Option<&str>,
    plan: &Plan,
    index: usize,
) -> Result<Arc<dyn StreamProducer>> {
    clients.producer(ProducerSettings {
        client_id: format!(
            "{}-StreamThread-{}-producer",
            plan.config.application_id(),
            index + 1
        ),
        transactional_id: transactional_id.map(str::to_owned),
        transaction_timeout_ms: plan.clients.transaction_timeout_ms,
    })
}

/// Whether a failed call means "the tasks moved or the producer was
/// fenced" (abort, close the tasks dirty, rejoin, go on), as Kafka Streams'
/// `TaskMigratedException`, rather than an error that stops the thread (an
/// unknown topic, a record too large, I/O).
pub(super) fn task_migrated(error: &StreamsError) -> bool {
    error.is_task_migrated()
}
