//! The librdkafka client context of every Kafka client but the main
//! consumer's: librdkafka's logs and errors go to `tracing`.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

/// Routes librdkafka's log lines and error callbacks to `tracing`, under
/// the target `librdkafka`, with the client's id.
#[derive(Debug, Clone)]
pub(super) struct Logging {
    client: Arc<str>,
}

impl Logging {
    pub(super) fn new(client: &str) -> Self {
        Self {
            client: Arc::from(client),
        }
    }

    pub(super) fn log_line(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let client = &*self.client;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", client, facility, "{message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", client, facility, "{message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", client, facility, "{message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", client, facility, "{message}")
            }
        }
    }

    /// librdkafka's error callback: mostly transient conditions (a broker
    /// down, a connection refused) that the client recovers from itself;
    /// what the runtime must act on comes back from the calls.
    pub(super) fn error_event(&self, error: &KafkaError, reason: &str) {
        let client = &*self.client;
        tracing::warn!(target: "librdkafka", client, error = %error, "{reason}");
    }
}

impl ClientContext for Logging {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log_line(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.error_event(&error, reason);
    }
}

impl ConsumerContext for Logging {}

/// The librdkafka log level that lets through what `tracing` would show
/// of the target `librdkafka`.
pub(super) fn log_level() -> RDKafkaLogLevel {
    if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
        RDKafkaLogLevel::Debug
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
        RDKafkaLogLevel::Info
    } else if tracing::enabled!(target: "librdkafka", tracing::Level::WARN) {
        RDKafkaLogLevel::Warning
    } else {
        RDKafkaLogLevel::Error
    }
}
