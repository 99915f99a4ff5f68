//! What the runtime works out from the topology before it starts: which
//! topics are internal, their partition counts, the co-partitioning check,
//! and the warnings about generated names.

use std::collections::{BTreeMap, HashMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::client::{Admin, NewTopic, TopicPartition};
use crate::config::{ProcessingGuarantee, StreamsConfig};
use crate::error::{Result, StreamsError};
use crate::global::GlobalTables;
use crate::store::changelog_topic;
use crate::topology::is_internal_topic_name;
use crate::topology::{SubTopology, Topology};

use super::sender::Routing;

/// The immutable plan that every stream thread shares.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) topology: Topology,
    pub(crate) config: StreamsConfig,
    pub(crate) subs: Vec<SubTopology>,
    /// Physical topic read by a source to (sub-topology id, topic name in
    /// the topology).
    pub(crate) source_of: FxHashMap<String, (u32, Arc<str>)>,
    /// Topic names of the topology that the runtime renames (repartition
    /// topics, prefixed with the application id).
    /// Physical topic names and changelog topics, shared with the sender
    /// threads.
    pub(crate) routing: Arc<Routing>,
    /// `<state.dir>/<application.id>`.
    pub(crate) app_dir: PathBuf,
    /// The record caches of each stream thread's tasks together, in bytes
    /// (`cache.max.bytes.buffering` over `num.stream.threads`, as Kafka).
    pub(crate) cache_bytes_per_thread: usize,
    /// The settings of the clients each stream thread creates.
    pub(crate) clients: ClientSettings,
    /// Under exactly-once: this instance's stable id, which names the
    /// transactional ids of its stream threads.
    pub(crate) process_id: Option<String>,
    /// The instance's global tables, shared by every task.
    pub(crate) globals: Arc<GlobalTables>,
    /// Every partition of the global tables' topics.
    pub(crate) global_partitions: Vec<TopicPartition>,
}

/// Client settings taken from `consumer.*`, `main.consumer.*` and
/// `producer.*` keys of the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientSettings {
    /// `session.timeout.ms` of the main consumer.
    pub(crate) session_timeout_ms: u64,
    /// `heartbeat.interval.ms` of the main consumer.
    pub(crate) heartbeat_interval_ms: u64,
    /// `transaction.timeout.ms` of the transactional producers.
    pub(crate) transaction_timeout_ms: u64,
    /// `max.poll.records` of the main consumer.
    pub(crate) max_poll_records: u64,
    /// `max.partition.fetch.bytes` of the consumers: the most one fetch of
    /// a partition reads (each assigned partition has at most one fetch
    /// read ahead).
    pub(crate) max_partition_fetch_bytes: u64,
    /// `buffer.memory` of the producers: the output a stream thread holds
    /// before it waits for its sender.
    pub(crate) buffer_memory: u64,
    /// `repartition.purge.interval.ms`: how often records of repartition
    /// topics that were committed are deleted.
    pub(crate) repartition_purge_interval_ms: u64,
}

impl ClientSettings {
    /// The output one processing round of a stream thread may make before
    /// the rest of its tasks wait for the next round: a third of
    /// `buffer.memory`, since the sender holds up to two rounds handed over
    /// while the thread makes the third.
    pub(crate) fn output_bytes_per_loop(&self) -> usize {
        usize::try_from(self.buffer_memory / 3)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Kafka Streams' defaults: the consumer's 45 s session and 3 s
    /// heartbeat, 1000 records per poll (Kafka Streams' override of the
    /// consumer's 500), and a 10 s transaction timeout.
    const DEFAULT_SESSION_TIMEOUT_MS: u64 = 45_000;
    const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 3_000;
    const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 10_000;
    const DEFAULT_MAX_POLL_RECORDS: u64 = 1_000;
    /// Kafka's consumer default: 1 MiB.
    const DEFAULT_MAX_PARTITION_FETCH_BYTES: u64 = 1024 * 1024;
    /// Kafka's producer default: 32 MiB.
    const DEFAULT_BUFFER_MEMORY: u64 = 32 * 1024 * 1024;
    const DEFAULT_REPARTITION_PURGE_INTERVAL_MS: u64 = 30_000;

    fn from_config(config: &StreamsConfig) -> Result<Self> {
        let setting = |keys: &[&str], default: u64| -> Result<u64> {
            for key in keys {
                if let Some(value) = config.extra().get(*key) {
                    return match value.parse::<u64>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => Err(StreamsError::invalid_config(
                            *key,
                            value,
                            "expected a positive integer",
                        )),
                    };
                }
            }
            Ok(default)
        };
        let session_timeout_ms = setting(
            &[
                "main.consumer.session.timeout.ms",
                "consumer.session.timeout.ms",
            ],
            Self::DEFAULT_SESSION_TIMEOUT_MS,
        )?;
        let heartbeat_interval_ms = setting(
            &[
                "main.consumer.heartbeat.interval.ms",
                "consumer.heartbeat.interval.ms",
            ],
            Self::DEFAULT_HEARTBEAT_INTERVAL_MS
                .min(session_timeout_ms / 3)
                .max(1),
        )?;
        let transaction_timeout_ms = setting(
            &["producer.transaction.timeout.ms"],
            Self::DEFAULT_TRANSACTION_TIMEOUT_MS,
        )?;
        let max_poll_records = setting(
            &[
                "main.consumer.max.poll.records",
                "consumer.max.poll.records",
            ],
            Self::DEFAULT_MAX_POLL_RECORDS,
        )?;
        let max_partition_fetch_bytes = setting(
            &[
                "main.consumer.max.partition.fetch.bytes",
                "consumer.max.partition.fetch.bytes",
            ],
            Self::DEFAULT_MAX_PARTITION_FETCH_BYTES,
        )?;
        let buffer_memory = setting(&["producer.buffer.memory"], Self::DEFAULT_BUFFER_MEMORY)?;
        let repartition_purge_interval_ms = setting(
            &["repartition.purge.interval.ms"],
            Self::DEFAULT_REPARTITION_PURGE_INTERVAL_MS,
        )?;
        Ok(Self {
            repartition_purge_interval_ms,
            session_timeout_ms,
            heartbeat_interval_ms,
            transaction_timeout_ms,
            max_poll_records,
            max_partition_fetch_bytes,
            buffer_memory,
        })
    }
}

/// The file in `<state.dir>/<application.id>` that keeps the instance's
/// process id across restarts.
const PROCESS_ID_FILE: &str = ".process-id";

/// Version byte of the process id file; the id follows as ASCII hex.
const PROCESS_ID_VERSION: u8 = 1;

/// The process id stored in `app_dir`, or a new one written there.
///
/// The id is stable across restarts of an instance on the same state
/// directory, so that the transactional ids of a restarted instance are
/// those of its previous incarnation, which they fence.
fn process_id(app_dir: &std::path::Path) -> Result<String> {
    use std::hash::{BuildHasher, Hasher};

    let path = app_dir.join(PROCESS_ID_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => match bytes.split_first() {
            Some((&PROCESS_ID_VERSION, id))
                if !id.is_empty() && id.iter().all(u8::is_ascii_hexdigit) =>
            {
                return Ok(String::from_utf8_lossy(id).into_owned());
            }
            _ => {
                tracing::warn!(file = %path.display(), "unreadable process id file; writing a new id")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(StreamsError::Store(state_store::StoreError::CheckpointIo {
                path,
                source,
            }))
        }
    }
    // RandomState is seeded from the OS's random source.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    let id = format!("{:016x}", hasher.finish());
    let io = |source| {
        StreamsError::Store(state_store::StoreError::CheckpointIo {
            path: path.clone(),
            source,
        })
    };
    std::fs::create_dir_all(app_dir).map_err(io)?;
    let tmp = app_dir.join(format!("{PROCESS_ID_FILE}.tmp"));
    let mut bytes = vec![PROCESS_ID_VERSION];
    bytes.extend_from_slice(id.as_bytes());
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    tracing::info!(process_id = %id, dir = %app_dir.display(), "created the instance's process id");
    Ok(id)
}

impl Plan {
    /// Every physical topic the application subscribes to, sorted.
    pub(crate) fn subscription(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.source_of.keys().cloned().collect();
        topics.sort();
        topics
    }
}

/// Whether a name was generated (`KSTREAM-MAP-0000000003`,
/// `KSTREAM-AGGREGATE-STATE-STORE-0000000002`) rather than given.
pub(crate) fn is_generated_name(name: &str) -> bool {
    let base = name.strip_suffix("-repartition").unwrap_or(name);
    let base = base.strip_suffix("-changelog").unwrap_or(base);
    let base = base.strip_suffix("-topic").unwrap_or(base);
    let digits = base.rsplit('-').next().unwrap_or("");
    (base.starts_with("KSTREAM-") || base.starts_with("KTABLE-") || base.contains("-STATE-STORE-"))
        && digits.len() == 10
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Topics of the topology that are written by a sink and read by a source
/// and named as internal topics ([`is_internal_topic_name`]): the runtime
/// creates them, prefixed with the application id, as repartition topics.
fn repartition_topics(topology: &Topology) -> Vec<String> {
    let sinks: HashSet<&str> = topology.sink_topics().into_iter().collect();
    topology
        .source_topics()
        .into_iter()
        .filter(|t| sinks.contains(t) && is_internal_topic_name(t))
        .map(str::to_owned)
        .collect()
}

/// Logs a warning for each store and internal topic left with a generated
/// name (whose name, and so whose data, a topology change would move).
fn warn_generated_names(topology: &Topology, subs: &[SubTopology], repartition: &[String]) {
    for store in topology.state_stores() {
        if is_generated_name(store.name()) {
            tracing::warn!(
                store = store.name(),
                "state store has a generated name; the name (and its changelog topic) changes \
                 when the topology changes, which breaks a rolling upgrade: name it"
            );
        }
    }
    for sub in subs {
        for &node in &sub.nodes {
            let def = topology.node(node);
            // A processor's name names no state (its stores and topics
            // do), so this is no warning.
            if !def.stores.is_empty() && is_generated_name(&def.name) {
                tracing::debug!(
                    processor = %def.name,
                    "stateful processor has a generated name"
                );
            }
        }
    }
    for topic in repartition {
        if is_generated_name(topic) {
            tracing::warn!(
                %topic,
                "internal topic has a generated name; name the operation so that a topology \
                 change does not rename it"
            );
        }
    }
}

/// Checks the topology and the configuration, checks co-partitioning, and
/// creates the internal topics.
pub(crate) async fn prepare(
    topology: Topology,
    config: StreamsConfig,
    admin: &dyn Admin,
) -> Result<Plan> {
    topology.validate()?;
    config.validate()?;
    let app = config.application_id().to_owned();
    let subs = topology.sub_topologies();
    let repartition = repartition_topics(&topology);
    warn_generated_names(&topology, &subs, &repartition);

    let mut physical = FxHashMap::default();
    for topic in &repartition {
        let name = if topic.starts_with(&format!("{app}-")) {
            topic.clone()
        } else {
            format!("{app}-{topic}")
        };
        physical.insert(topic.clone(), name);
    }

    // Partition counts of the user's source topics.
    let mut partitions: HashMap<String, u32> = HashMap::new();
    for topic in topology.source_topics() {
        if physical.contains_key(topic) {
            continue;
        }
        match admin.partition_count(topic).await? {
            Some(n) => {
                partitions.insert(topic.to_owned(), n);
            }
            None => {
                return Err(StreamsError::MissingSourceTopic {
                    topic: topic.to_owned(),
                })
            }
        }
    }

    // Repartition topics take the partition count of the sub-topology that
    // writes them. Sub-topologies are numbered upstream first; a few passes
    // settle chains of repartitions.
    let sub_sources = |sub: &SubTopology| -> Vec<String> {
        sub.nodes
            .iter()
            .flat_map(|&n| topology.node(n).source_topics().to_vec())
            .collect()
    };
    let sub_sinks = |sub: &SubTopology| -> Vec<String> {
        sub.nodes
            .iter()
            .filter_map(|&n| match &topology.node(n).kind {
                crate::topology::NodeKind::Sink { topic } => Some(topic.clone()),
                _ => None,
            })
            .collect()
    };
    // A repartition topic read together with the user's topics (a join of
    // a re-keyed stream with a table, say) is co-partitioned with them: as
    // Kafka Streams, it takes their largest partition count, whatever
    // wrote it.
    let mut fixed: HashMap<String, u32> = HashMap::new();
    for sub in &subs {
        let sources = sub_sources(sub);
        let external = sources
            .iter()
            .filter(|t| !physical.contains_key(*t))
            .filter_map(|t| partitions.get(t).copied())
            .max();
        if let Some(count) = external {
            for topic in sources.iter().filter(|t| physical.contains_key(*t)) {
                fixed.insert(topic.clone(), count);
            }
        }
    }
    partitions.extend(fixed.iter().map(|(t, n)| (t.clone(), *n)));
    for _ in 0..=subs.len() {
        for sub in &subs {
            let count = sub_sources(sub)
                .iter()
                .filter_map(|t| partitions.get(t).copied())
                .max();
            if let Some(count) = count {
                for sink in sub_sinks(sub) {
                    if physical.contains_key(&sink) && !fixed.contains_key(&sink) {
                        let entry = partitions.entry(sink).or_insert(count);
                        *entry = (*entry).max(count);
                    }
                }
            }
        }
    }

    // Co-partitioning, and the partition count of each sub-topology.
    let mut sub_partitions: BTreeMap<u32, u32> = BTreeMap::new();
    for sub in &subs {
        let topics = sub_sources(sub);
        let counts: Vec<(String, u32)> = topics
            .iter()
            .map(|t| (t.clone(), partitions.get(t).copied().unwrap_or(1)))
            .collect();
        if counts.windows(2).any(|w| w[0].1 != w[1].1) {
            let topics = counts
                .iter()
                .map(|(t, n)| format!("{} ({n})", plan_name(&physical, t)))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(StreamsError::CoPartitioning {
                subtopology: sub.id,
                topics,
            });
        }
        if let Some((_, n)) = counts.first() {
            sub_partitions.insert(sub.id, *n);
        }
    }

    for topic in &repartition {
        let n = partitions.get(topic).copied().unwrap_or(1);
        // As Kafka Streams' repartition topics: kept until purged after
        // the commit that consumed them (`retention.ms = -1`), not by age.
        let new = NewTopic::new(plan_name(&physical, topic), n)
            .config("cleanup.policy", "delete")
            .config("retention.ms", "-1");
        ensure_internal(admin, new, n).await?;
    }
    let mut changelogs = FxHashSet::default();
    for sub in &subs {
        let n = sub_partitions.get(&sub.id).copied().unwrap_or(1);
        for &store in &sub.stores {
            let builder = topology.store_builder(store);
            if !builder.logging_enabled() {
                continue;
            }
            let name = changelog_topic(&app, builder.name());
            let mut new = NewTopic::new(name.clone(), n).config("cleanup.policy", "compact");
            for (key, value) in builder.log_config() {
                new = new.config(key.clone(), value.clone());
            }
            ensure_internal(admin, new, n).await?;
            changelogs.insert(name);
        }
    }
    if let Some(dlq) = config.dead_letter_topic() {
        if admin.create_topic(NewTopic::new(dlq, 1)).await? {
            tracing::info!(topic = dlq, "created the dead letter topic");
        }
    }
    for topic in topology.output_topics() {
        if admin.create_topic(NewTopic::new(topic, 1)).await? {
            tracing::info!(topic, "created an output topic of the topology");
        }
    }

    let mut source_of = FxHashMap::default();
    for sub in &subs {
        for topic in sub_sources(sub) {
            let name = plan_name(&physical, &topic).to_owned();
            source_of.insert(name, (sub.id, Arc::<str>::from(topic.as_str())));
        }
    }
    let threads = usize::try_from(config.num_stream_threads())
        .unwrap_or(1)
        .max(1);
    let cache_bytes_per_thread =
        usize::try_from(config.cache_max_bytes_buffering()).unwrap_or(usize::MAX) / threads;
    let app_dir = config.state_dir().join(&app);
    let clients = ClientSettings::from_config(&config)?;
    let process_id = match config.processing_guarantee() {
        ProcessingGuarantee::ExactlyOnceV2 => Some(process_id(&app_dir)?),
        ProcessingGuarantee::AtLeastOnce => None,
    };
    let mut global_partitions = Vec::new();
    for topic in topology.global_topics() {
        let Some(n) = admin.partition_count(topic).await? else {
            return Err(StreamsError::MissingSourceTopic {
                topic: topic.to_owned(),
            });
        };
        global_partitions.extend((0..n).map(|p| TopicPartition::new(topic, p)));
    }
    let globals = Arc::new(GlobalTables::new(topology.global_tables()));
    Ok(Plan {
        topology,
        config,
        subs,
        source_of,
        routing: Arc::new(Routing {
            physical,
            changelogs,
        }),
        app_dir,
        cache_bytes_per_thread,
        clients,
        process_id,
        globals,
        global_partitions,
    })
}

impl Plan {
    /// Whether `topic` (a physical name) is one of the app's repartition
    /// topics.
    pub(crate) fn is_repartition_topic(&self, topic: &str) -> bool {
        self.routing.physical.values().any(|name| name == topic)
    }
}

fn plan_name<'a>(physical: &'a FxHashMap<String, String>, topic: &'a str) -> &'a str {
    physical.get(topic).map_or(topic, String::as_str)
}

/// Creates an internal topic, or checks the partition count of an existing
/// one.
async fn ensure_internal(admin: &dyn Admin, new: NewTopic, partitions: u32) -> Result<()> {
    let name = new.name.clone();
    if admin.create_topic(new).await? {
        tracing::info!(topic = %name, partitions, "created internal topic");
        return Ok(());
    }
    let Some(actual) = admin.partition_count(&name).await? else {
        return Err(StreamsError::Internal(format!(
            "internal topic '{name}' exists but has no partition count"
        )));
    };
    if actual != partitions {
        return Err(StreamsError::InternalTopicMismatch {
            topic: name,
            actual,
            expected: partitions,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_recognised() {
        assert!(is_generated_name(
            "KSTREAM-AGGREGATE-STATE-STORE-0000000002"
        ));
        assert!(is_generated_name("KSTREAM-AGGREGATE-0000000003"));
        assert!(is_generated_name(
            "KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition"
        ));
        assert!(is_generated_name(
            "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-0000000006-topic"
        ));
        assert!(!is_generated_name("orders-subscription-registration-topic"));
        assert!(!is_generated_name("counts"));
        assert!(!is_generated_name("KSTREAM-AGGREGATE-12"));
    }

    #[test]
    fn the_process_id_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let app_dir = dir.path().join("app");
        let id = process_id(&app_dir).unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(process_id(&app_dir).unwrap(), id);
        let file = app_dir.join(PROCESS_ID_FILE);
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(bytes[0], PROCESS_ID_VERSION);
        assert_eq!(&bytes[1..], id.as_bytes());
        // A damaged file is replaced by a new id.
        std::fs::write(&file, [9u8, b'x']).unwrap();
        let other = process_id(&app_dir).unwrap();
        assert_eq!(other.len(), 16);
        assert_eq!(process_id(&app_dir).unwrap(), other);
        // Another state directory, another id.
        assert_ne!(process_id(&dir.path().join("other")).unwrap(), other);
    }

    #[test]
    fn client_settings_come_from_prefixed_keys() {
        let config = StreamsConfig::new("app");
        let clients = ClientSettings::from_config(&config).unwrap();
        assert_eq!(clients.session_timeout_ms, 45_000);
        assert_eq!(clients.max_poll_records, 1_000);
        assert_eq!(clients.heartbeat_interval_ms, 3_000);
        assert_eq!(clients.transaction_timeout_ms, 10_000);

        let config = StreamsConfig::from_pairs([
            ("application.id", "app"),
            ("consumer.session.timeout.ms", "3000"),
            ("main.consumer.session.timeout.ms", "6000"),
            ("producer.transaction.timeout.ms", "5000"),
            ("consumer.max.poll.records", "200"),
        ])
        .unwrap();
        let clients = ClientSettings::from_config(&config).unwrap();
        assert_eq!(clients.max_poll_records, 200);
        assert_eq!(clients.session_timeout_ms, 6_000);
        assert_eq!(clients.heartbeat_interval_ms, 2_000);
        assert_eq!(clients.transaction_timeout_ms, 5_000);

        let config = StreamsConfig::from_pairs([
            ("application.id", "app"),
            ("producer.transaction.timeout.ms", "soon"),
        ])
        .unwrap();
        assert!(matches!(
            ClientSettings::from_config(&config),
            Err(StreamsError::InvalidConfig { .. })
        ));
    }
}
