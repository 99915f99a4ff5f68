//! The librdkafka client context of the examples' Kafka clients: librdkafka's log lines
//! and errors go to `tracing` (its errors and warnings at info level, the rest at debug)
//! rather than to stderr as errors, and the last connection error is kept for the
//! message of [`crate::kafka_cluster::KafkaCluster::connect`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Sends librdkafka's log lines to `tracing` (its errors and warnings at info level, the
/// rest at debug) and remembers the last connection error.
#[derive(Debug, Default)]
pub(crate) struct Ctx {
    last_error: Mutex<Option<String>>,
    all_brokers_down: AtomicBool,
}

/// Locks `mutex`, also when a thread panicked holding it (the data stays usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
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

impl ConsumerContext for Ctx {}
