//! The Kafka backend: the client seam over any Kafka-protocol broker,
//! through `rdkafka` (librdkafka).
//!
//! [`KafkaClients`] builds librdkafka configurations with Kafka Streams'
//! client settings and makes the clients: the main consumer
//! ([`consumer`]), the restore consumer ([`restore`]), the producer
//! ([`producer`]) and the admin client ([`admin`]).
//!
//! # Settings
//!
//! Keys of the app's configuration prefixed `consumer.`, `main.consumer.`,
//! `restore.consumer.`, `producer.` and `admin.` go, prefix stripped, to
//! the matching librdkafka client (`main.consumer.` and
//! `restore.consumer.` override `consumer.`); a key or value librdkafka
//! rejects is an [`StreamsError::InvalidConfig`] naming the key as the app
//! was given it. `session.timeout.ms`, `heartbeat.interval.ms` and
//! `max.poll.records` of the consumers, and `transaction.timeout.ms` of
//! the producer, are read by the runtime and reach librdkafka through the
//! settings it passes (`max.poll.records` is not a librdkafka key: it
//! bounds how many records one poll gathers).
//!
//! Two keys without prefix are the backend's: `replication.factor` of the
//! internal topics (default -1, the broker's default, as Kafka Streams),
//! and `default.api.timeout.ms` (default 60000), how long a blocking call
//! (metadata, committed offsets, transactional calls, flush) may wait.
//!
//! The settings the runtime relies on are not overridable: the consumers'
//! `group.id`, `client.id`, `enable.auto.commit=false`,
//! `enable.auto.offset.store=false` and, under exactly-once,
//! `isolation.level=read_committed`; the producer's `client.id`,
//! `enable.idempotence=true`, `partitioner=murmur2_random` (the Java
//! client's placement of keyed records) and its transactional id.

mod admin;
mod consumer;
mod context;
mod convert;
mod errors;
mod producer;
mod restore;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;

use crate::config::StreamsConfig;
use crate::error::{ClientErrorKind, Result, StreamsError};

use super::{
    client_error, Admin, ClientSupplier, ConsumerSettings, Isolation, MainConsumer,
    ProducerSettings, RestoreConsumer, StreamProducer,
};

/// The key of the internal topics' replication factor.
const REPLICATION_FACTOR: &str = "replication.factor";
/// The key of the blocking calls' timeout.
const DEFAULT_API_TIMEOUT_MS: &str = "default.api.timeout.ms";
/// Kafka's `default.api.timeout.ms` default.
const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(60);

/// The clients of an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    MainConsumer,
    RestoreConsumer,
    Producer,
    Admin,
}

impl Role {
    /// The prefixes of the keys passed to this client, weakest first.
    fn prefixes(self) -> &'static [&'static str] {
        match self {
            Self::MainConsumer => &["consumer.", "main.consumer."],
            Self::RestoreConsumer => &["consumer.", "restore.consumer."],
            Self::Producer => &["producer."],
            Self::Admin => &["admin."],
        }
    }

    /// Keys of this client that the runtime reads itself.
    fn resolved(self) -> &'static [&'static str] {
        match self {
            Self::MainConsumer | Self::RestoreConsumer => &[
                "session.timeout.ms",
                "heartbeat.interval.ms",
                "max.poll.records",
            ],
            Self::Producer => &["transaction.timeout.ms", "buffer.memory"],
            Self::Admin => &[],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::MainConsumer => "main consumer",
            Self::RestoreConsumer => "restore consumer",
            Self::Producer => "producer",
            Self::Admin => "admin client",
        }
    }
}

/// A librdkafka setting from the app's configuration.
#[derive(Debug, Clone)]
struct PassThrough {
    value: String,
    /// The key as the app was given it, e.g. `producer.linger.ms`.
    from: String,
}

/// The librdkafka settings passed through to each client, by librdkafka
/// key.
#[derive(Debug, Clone, Default)]
struct PassThroughs {
    main: BTreeMap<String, PassThrough>,
    restore: BTreeMap<String, PassThrough>,
    producer: BTreeMap<String, PassThrough>,
    admin: BTreeMap<String, PassThrough>,
}

impl PassThroughs {
    fn from_config(config: &StreamsConfig) -> Self {
        let mut out = Self::default();
        for role in [
            Role::MainConsumer,
            Role::RestoreConsumer,
            Role::Producer,
            Role::Admin,
        ] {
            let map = out.of_mut(role);
            for prefix in role.prefixes() {
                for (key, value) in config.extra() {
                    let Some(key) = key.strip_prefix(prefix) else {
                        continue;
                    };
                    if role.resolved().contains(&key) {
                        continue;
                    }
                    map.insert(
                        key.to_owned(),
                        PassThrough {
                            value: value.clone(),
                            from: format!("{prefix}{key}"),
                        },
                    );
                }
            }
        }
        out
    }

    fn of(&self, role: Role) -> &BTreeMap<String, PassThrough> {
        match role {
            Role::MainConsumer => &self.main,
            Role::RestoreConsumer => &self.restore,
            Role::Producer => &self.producer,
            Role::Admin => &self.admin,
        }
    }

    fn of_mut(&mut self, role: Role) -> &mut BTreeMap<String, PassThrough> {
        match role {
            Role::MainConsumer => &mut self.main,
            Role::RestoreConsumer => &mut self.restore,
            Role::Producer => &mut self.producer,
            Role::Admin => &mut self.admin,
        }
    }
}

/// A Kafka cluster as the app's clients, through librdkafka.
pub(crate) struct KafkaClients {
    bootstrap_servers: String,
    application_id: String,
    pass: PassThroughs,
    /// `replication.factor` of the internal topics; -1 is the broker's
    /// default.
    replication_factor: i32,
    /// `default.api.timeout.ms`.
    api_timeout: Duration,
    /// Consumers outside any group that read partitions' offsets for the
    /// restore consumers; made at the first need.
    probes: Mutex<Option<Arc<restore::Probes>>>,
}

impl fmt::Debug for KafkaClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaClients")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("replication_factor", &self.replication_factor)
            .field("api_timeout", &self.api_timeout)
            .finish_non_exhaustive()
    }
}

impl KafkaClients {
    /// The clients of the app configured by `config`, on the cluster of its
    /// `bootstrap.servers`. Checks every client setting librdkafka would
    /// take; connects to nothing yet.
    pub(crate) fn new(config: &StreamsConfig) -> Result<Self> {
        let Some(servers) = config.bootstrap_servers().filter(|s| !s.trim().is_empty()) else {
            return Err(StreamsError::invalid_config(
                StreamsConfig::BOOTSTRAP_SERVERS,
                "",
                "the Kafka backend needs the host:port list of the cluster's brokers",
            ));
        };
        let replication_factor = match config.extra().get(REPLICATION_FACTOR) {
            None => -1,
            Some(value) => match value.trim().parse::<i32>() {
                Ok(n) if n == -1 || n >= 1 => n,
                _ => {
                    return Err(StreamsError::invalid_config(
                        REPLICATION_FACTOR,
                        value,
                        "expected an integer >= 1, or -1 for the broker's default",
                    ))
                }
            },
        };
        let api_timeout = match config.extra().get(DEFAULT_API_TIMEOUT_MS) {
            None => DEFAULT_API_TIMEOUT,
            Some(value) => match value.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(StreamsError::invalid_config(
                        DEFAULT_API_TIMEOUT_MS,
                        value,
                        "expected a positive integer",
                    ))
                }
            },
        };
        let clients = Self {
            bootstrap_servers: servers.trim().to_owned(),
            application_id: config.application_id().to_owned(),
            pass: PassThroughs::from_config(config),
            replication_factor,
            api_timeout,
            probes: Mutex::new(None),
        };
        // Every setting is checked now, before anything starts.
        let settings = ConsumerSettings {
            client_id: format!("{}-check", clients.application_id),
            group_id: Some(clients.application_id.clone()),
            isolation: Isolation::ReadUncommitted,
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 3_000,
            max_poll_records: 1,
            max_partition_fetch_bytes: 1024 * 1024,
            background_fetch: true,
        };
        consumer::config(&clients, &settings)?;
        restore::reader_config(&clients, &settings)?;
        producer::config(
            &clients,
            &ProducerSettings {
                client_id: settings.client_id.clone(),
                transactional_id: None,
                transaction_timeout_ms: 10_000,
            },
        )?;
        admin::config(&clients)?;
        Ok(clients)
    }

    /// The configuration of a `role` client: `bootstrap.servers`,
    /// `defaults`, the keys passed through from the app's configuration,
    /// then `forced`. Each key is checked by librdkafka; a rejected one is
    /// an [`StreamsError::InvalidConfig`] naming the key as the app gave
    /// it.
    fn config(
        &self,
        role: Role,
        defaults: &[(&str, &str)],
        forced: &[(&str, &str)],
    ) -> Result<ClientConfig> {
        let mut config = ClientConfig::new();
        config.set_log_level(context::log_level());
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        let pass = self.pass.of(role);
        for (key, p) in pass {
            config.set(key, &p.value);
        }
        for (key, value) in forced {
            if let Some(p) = pass.get(*key) {
                if p.value != *value {
                    tracing::warn!(key = %p.from, value = %p.value, used = value, client = role.name(), "this client setting cannot be changed; ignoring it");
                }
            }
            config.set(*key, *value);
        }
        if let Err(e) = config.create_native_config() {
            return Err(match e {
                KafkaError::ClientConfig(_, reason, key, value) => {
                    let key = pass.get(&key).map_or(key, |p| p.from.clone());
                    StreamsError::invalid_config(key, value, reason)
                }
                other => client_error(ClientErrorKind::Fatal, "configure a Kafka client", other),
            });
        }
        Ok(config)
    }

    /// Makes a client of `role` from `config` with `context`.
    fn create<C, T>(role: Role, config: &ClientConfig, context: C) -> Result<T>
    where
        C: rdkafka::client::ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        T::from_config_and_context(config, context).map_err(|e| {
            tracing::error!(client = role.name(), error = %e, "cannot create a Kafka client");
            client_error(
                ClientErrorKind::Fatal,
                match role {
                    Role::MainConsumer => "create the main consumer",
                    Role::RestoreConsumer => "create a restore consumer",
                    Role::Producer => "create a producer",
                    Role::Admin => "create the admin client",
                },
                e,
            )
        })
    }

    /// The offset probes, made at the first call.
    fn probes(&self) -> Result<Arc<restore::Probes>> {
        let mut slot = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(probes) = &*slot {
            return Ok(probes.clone());
        }
        let probes = Arc::new(restore::Probes::new(self)?);
        *slot = Some(probes.clone());
        Ok(probes)
    }
}

impl ClientSupplier for KafkaClients {
    fn main_consumer(&self, settings: ConsumerSettings) -> Result<Box<dyn MainConsumer>> {
        tracing::debug!(client_id = %settings.client_id, "creating a Kafka consumer");
        Ok(Box::new(consumer::KafkaConsumer::new(self, &settings)?))
    }

    fn restore_consumer(&self, settings: ConsumerSettings) -> Result<Box<dyn RestoreConsumer>> {
        Ok(Box::new(restore::KafkaRestoreConsumer::new(
            self, &settings,
        )?))
    }

    fn producer(&self, settings: ProducerSettings) -> Result<Arc<dyn StreamProducer>> {
        tracing::debug!(client_id = %settings.client_id, transactional_id = ?settings.transactional_id, "creating a Kafka producer");
        Ok(Arc::new(producer::KafkaProducer::new(self, &settings)?))
    }

    fn admin(&self) -> Result<Arc<dyn Admin>> {
        Ok(Arc::new(admin::KafkaAdmin::new(self)?))
    }

    fn name(&self) -> &'static str {
        "kafka"
    }
}

/// Runs the blocking `f` on a thread of its own and waits for it without
/// blocking the caller's executor: admin calls run on the app's runtime,
/// which may also serve other work (a broker in the same process).
async fn off_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // The receiver is gone only if the caller stopped waiting.
            drop(tx.send(f()));
        })
        .map_err(|e| StreamsError::Internal(format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| StreamsError::Internal(format!("thread {name} stopped without an answer")))
}
