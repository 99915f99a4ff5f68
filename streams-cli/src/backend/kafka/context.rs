//! The librdkafka client context: keeps librdkafka's log lines off stderr (they go to
//! `tracing` at debug and info level), remembers the last connection error for the
//! messages of [`super::Cluster::connect`], and for a group member tracks the printed
//! positions and commits them when a rebalance takes partitions away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

/// A partition: topic and number.
pub(crate) type PartitionKey = (String, i32);

/// Shared by librdkafka's threads and the command.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    /// The last error librdkafka reported (a failed connection, say).
    last_error: Mutex<Option<String>>,
    /// Set when librdkafka reports that no broker of the list can be reached.
    all_brokers_down: AtomicBool,
    /// Set once a group member got its first assignment (possibly empty).
    assigned: AtomicBool,
    /// A group member's position in each of its partitions: the offset after the last
    /// printed record, or where reading starts.
    positions: Mutex<HashMap<PartitionKey, i64>>,
}

impl Ctx {
    /// The last error librdkafka reported, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Whether librdkafka found every broker of the list down.
    pub(crate) fn all_brokers_down(&self) -> bool {
        self.all_brokers_down.load(Ordering::Relaxed)
    }

    /// Whether a group member got its partitions.
    pub(crate) fn assigned(&self) -> bool {
        self.assigned.load(Ordering::Relaxed)
    }

    /// The positions, to read or change.
    pub(crate) fn positions(&self) -> MutexGuard<'_, HashMap<PartitionKey, i64>> {
        lock(&self.positions)
    }
}

/// Locks `mutex`, also when a thread panicked holding it (the data stays usable).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // The command reports what failed in its own error line; librdkafka's view of it is
        // there for RUST_LOG=info (its errors and warnings) or debug (the rest).
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::info!(target: "librdkafka", facility = fac, "{log_message}");
            }
            _ => tracing::debug!(target: "librdkafka", facility = fac, "{log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::info!(target: "librdkafka", error = %error, "{reason}");
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.all_brokers_down.store(true, Ordering::Relaxed);
            // "1/1 brokers are down" says less than the connection error before it.
            if lock(&self.last_error).is_some() {
                return;
            }
        }
        *lock(&self.last_error) = Some(reason.to_owned());
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        // What was printed of the partitions taken away is committed, so that their next
        // owner continues after it.
        let mut positions = self.positions();
        let mut offsets = TopicPartitionList::new();
        for elem in revoked.elements() {
            let key = (elem.topic().to_owned(), elem.partition());
            if let Some(offset) = positions.remove(&key) {
                if let Err(e) = offsets.add_partition_offset(&key.0, key.1, Offset::Offset(offset))
                {
                    tracing::warn!(error = %e, "cannot list a revoked partition's offset");
                }
            }
        }
        drop(positions);
        if offsets.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
            tracing::warn!(error = %e, "committing the printed offsets of revoked partitions failed");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if matches!(rebalance, Rebalance::Assign(_)) {
            self.assigned.store(true, Ordering::Relaxed);
        }
    }
}
