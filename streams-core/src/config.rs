//! [`StreamsConfig`]: the application's configuration, with Kafka Streams'
//! key names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{Result, StreamsError};
use crate::timestamp::{BuiltinTimestampExtractor, SharedTimestampExtractor, TimestampExtractor};

/// `default.timestamp.extractor`: a built-in by name, or one given in code.
#[derive(Clone)]
enum ExtractorSetting {
    Builtin(BuiltinTimestampExtractor),
    Custom(SharedTimestampExtractor),
}

impl fmt::Debug for ExtractorSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(b) => write!(f, "{b}"),
            Self::Custom(c) => write!(f, "{}", c.name()),
        }
    }
}

impl PartialEq for ExtractorSetting {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Builtin(a), Self::Builtin(b)) => a == b,
            (Self::Custom(a), Self::Custom(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for ExtractorSetting {}

/// `processing.guarantee`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ProcessingGuarantee {
    /// `at_least_once` (the default): a failure may replay records.
    #[default]
    AtLeastOnce,
    /// `exactly_once_v2`: one transactional producer per stream thread.
    ExactlyOnceV2,
}

impl ProcessingGuarantee {
    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtLeastOnce => "at_least_once",
            Self::ExactlyOnceV2 => "exactly_once_v2",
        }
    }
}

impl fmt::Display for ProcessingGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProcessingGuarantee {
    type Err = StreamsError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "at_least_once" => Ok(Self::AtLeastOnce),
            "exactly_once_v2" => Ok(Self::ExactlyOnceV2),
            other => Err(StreamsError::invalid_config(
                StreamsConfig::PROCESSING_GUARANTEE,
                other,
                "expected at_least_once or exactly_once_v2",
            )),
        }
    }
}

/// `default.deserialization.exception.handler`: what to do with an input
/// record whose key or value cannot be deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeserializationHandler {
    /// `fail` (the default): stop processing with
    /// [`StreamsError::Deserialization`].
    #[default]
    Fail,
    /// `log-and-continue`: log a warning, count the record as dropped and
    /// go on.
    LogAndContinue,
    /// `dead-letter-topic`: send the raw record to the topic named by
    /// `errors.dead.letter.queue.topic.name`, with headers describing the
    /// error, and go on.
    DeadLetterTopic,
}

impl DeserializationHandler {
    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::LogAndContinue => "log-and-continue",
            Self::DeadLetterTopic => "dead-letter-topic",
        }
    }
}

impl fmt::Display for DeserializationHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeserializationHandler {
    type Err = StreamsError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fail"
            | "log-and-fail"
            | "org.apache.kafka.streams.errors.LogAndFailExceptionHandler" => Ok(Self::Fail),
            "log-and-continue"
            | "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler" => {
                Ok(Self::LogAndContinue)
            }
            "dead-letter-topic" => Ok(Self::DeadLetterTopic),
            other => Err(StreamsError::invalid_config(
                StreamsConfig::DEFAULT_DESERIALIZATION_EXCEPTION_HANDLER,
                other,
                "expected fail, log-and-continue or dead-letter-topic",
            )),
        }
    }
}

/// The configuration of a streams application, with Kafka Streams' keys.
///
/// Build it with [`StreamsConfig::new`] and the `with_*` methods, or parse
/// key/value strings with [`StreamsConfig::from_pairs`]. Unknown keys are
/// kept (see [`StreamsConfig::extra`]) for the clients the runtime creates.
///
/// ```
/// use streams_core::{ProcessingGuarantee, StreamsConfig};
///
/// let config = StreamsConfig::from_pairs([
///     ("application.id", "word-count"),
///     ("processing.guarantee", "exactly_once_v2"),
/// ])?;
/// assert_eq!(config.processing_guarantee(), ProcessingGuarantee::ExactlyOnceV2);
/// assert_eq!(config.commit_interval_ms(), 100);
/// # Ok::<(), streams_core::StreamsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsConfig {
    application_id: String,
    bootstrap_servers: Option<String>,
    num_stream_threads: u32,
    processing_guarantee: ProcessingGuarantee,
    commit_interval_ms: Option<u64>,
    cache_max_bytes_buffering: u64,
    state_dir: PathBuf,
    deserialization_handler: DeserializationHandler,
    dead_letter_topic: Option<String>,
    max_task_idle_ms: i64,
    buffered_records_per_partition: u64,
    redb_cache_max_bytes: u64,
    sled_cache_max_bytes: u64,
    task_idle_wall_clock_advance_ms: Option<u64>,
    timestamp_extractor: ExtractorSetting,
    application_server: Option<String>,
    http_auth_token: Option<Secret>,
    extra: BTreeMap<String, String>,
}

/// A setting that is never printed (`http.auth.token`).
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl StreamsConfig {
    /// `application.id`: names the consumer group, the internal topics'
    /// prefix and the state directory. Required.
    pub const APPLICATION_ID: &'static str = "application.id";
    /// `bootstrap.servers`: a Kafka cluster; absent for the embedded broker.
    pub const BOOTSTRAP_SERVERS: &'static str = "bootstrap.servers";
    /// `num.stream.threads` (default 1).
    pub const NUM_STREAM_THREADS: &'static str = "num.stream.threads";
    /// `processing.guarantee`: `at_least_once` (default) or
    /// `exactly_once_v2`.
    pub const PROCESSING_GUARANTEE: &'static str = "processing.guarantee";
    /// `commit.interval.ms` (default 30000, or 100 under exactly-once).
    pub const COMMIT_INTERVAL_MS: &'static str = "commit.interval.ms";
    /// `cache.max.bytes.buffering` (default 10 MiB); the newer name
    /// `statestore.cache.max.bytes` is accepted too.
    pub const CACHE_MAX_BYTES_BUFFERING: &'static str = "cache.max.bytes.buffering";
    /// `statestore.cache.max.bytes`, the newer name of
    /// `cache.max.bytes.buffering`.
    pub const STATESTORE_CACHE_MAX_BYTES: &'static str = "statestore.cache.max.bytes";
    /// `state.dir` (default `<temp dir>/rill-streams`).
    pub const STATE_DIR: &'static str = "state.dir";
    /// `default.deserialization.exception.handler`: `fail` (default),
    /// `log-and-continue` or `dead-letter-topic`.
    pub const DEFAULT_DESERIALIZATION_EXCEPTION_HANDLER: &'static str =
        "default.deserialization.exception.handler";
    /// `errors.dead.letter.queue.topic.name`: the dead-letter topic.
    pub const DEAD_LETTER_QUEUE_TOPIC_NAME: &'static str = "errors.dead.letter.queue.topic.name";
    /// `max.task.idle.ms` (default 0; -1 never waits for empty partitions).
    pub const MAX_TASK_IDLE_MS: &'static str = "max.task.idle.ms";
    /// `buffered.records.per.partition` (default 1000): a stream thread
    /// stops fetching an input partition (pauses it) while its task holds
    /// more records of it than this, not yet processed, and fetches again
    /// once the task has processed them; see `docs/operations.md`.
    pub const BUFFERED_RECORDS_PER_PARTITION: &'static str = "buffered.records.per.partition";
    /// `statestore.redb.cache.max.bytes` (default 32 MiB): the page cache
    /// and write buffer of each redb store (one per store per task).
    pub const REDB_CACHE_MAX_BYTES: &'static str = "statestore.redb.cache.max.bytes";
    /// `statestore.sled.cache.max.bytes` (default 16 MiB): the page cache
    /// of each sled store (one per store per task).
    pub const SLED_CACHE_MAX_BYTES: &'static str = "statestore.sled.cache.max.bytes";

    /// `default.timestamp.extractor`: `record-timestamp` (default),
    /// `fail-on-invalid`, `log-and-skip-on-invalid`,
    /// `use-previous-on-invalid` or `wall-clock` (Kafka's class names are
    /// accepted too); see [`crate::timestamp`].
    pub const DEFAULT_TIMESTAMP_EXTRACTOR: &'static str = "default.timestamp.extractor";
    /// `task.idle.wall.clock.advance.ms` (off by default): once every input
    /// partition of a task has been empty for this long, the task's stream
    /// time advances with the wall clock, so that windows close and
    /// `suppress` emits on a quiet topic. See `docs/windowing.md`.
    pub const TASK_IDLE_WALL_CLOCK_ADVANCE_MS: &'static str = "task.idle.wall.clock.advance.ms";
    /// `application.server`: `host:port` where this instance serves
    /// interactive queries (Kafka's name). Every instance of the app learns
    /// every other's, so that a query for a key held elsewhere can be sent
    /// to its owner; `streams-http` serves HTTP there. Unset by default.
    pub const APPLICATION_SERVER: &'static str = "application.server";
    /// `http.auth.token`: a bearer token that every request to the HTTP
    /// endpoint must carry (`Authorization: Bearer <token>`). Unset by
    /// default: the endpoint has no authentication.
    pub const HTTP_AUTH_TOKEN: &'static str = "http.auth.token";

    /// The default `commit.interval.ms` under at-least-once.
    pub const DEFAULT_COMMIT_INTERVAL_MS: u64 = 30_000;
    /// The default `commit.interval.ms` under exactly-once.
    pub const DEFAULT_EOS_COMMIT_INTERVAL_MS: u64 = 100;
    /// The default `cache.max.bytes.buffering`: 10 MiB.
    pub const DEFAULT_CACHE_MAX_BYTES: u64 = 10 * 1024 * 1024;
    /// The default `buffered.records.per.partition`: 1000.
    pub const DEFAULT_BUFFERED_RECORDS_PER_PARTITION: u64 = 1_000;

    /// The defaults, with `application_id`.
    ///
    /// The id is checked when the configuration is used
    /// ([`StreamsConfig::validate`]), not here.
    pub fn new(application_id: impl Into<String>) -> Self {
        Self {
            application_id: application_id.into(),
            bootstrap_servers: None,
            num_stream_threads: 1,
            processing_guarantee: ProcessingGuarantee::AtLeastOnce,
            commit_interval_ms: None,
            cache_max_bytes_buffering: Self::DEFAULT_CACHE_MAX_BYTES,
            state_dir: std::env::temp_dir().join("rill-streams"),
            deserialization_handler: DeserializationHandler::Fail,
            dead_letter_topic: None,
            max_task_idle_ms: 0,
            buffered_records_per_partition: Self::DEFAULT_BUFFERED_RECORDS_PER_PARTITION,
            redb_cache_max_bytes: state_store::DEFAULT_REDB_CACHE_BYTES as u64,
            sled_cache_max_bytes: state_store::DEFAULT_SLED_CACHE_BYTES,
            task_idle_wall_clock_advance_ms: None,
            timestamp_extractor: ExtractorSetting::Builtin(BuiltinTimestampExtractor::default()),
            application_server: None,
            http_auth_token: None,
            extra: BTreeMap::new(),
        }
    }

    /// Parses key/value pairs; `application.id` is required. Errors name the
    /// offending key.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::new("");
        let mut has_id = false;
        for (key, value) in pairs {
            has_id |= key.as_ref() == Self::APPLICATION_ID;
            config.set(key.as_ref(), value.as_ref())?;
        }
        if !has_id {
            return Err(StreamsError::MissingConfig {
                key: Self::APPLICATION_ID,
            });
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets one key from its string value. Values are checked one by one
    /// here; constraints across keys are checked by
    /// [`StreamsConfig::validate`].
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self> {
        let value = value.trim();
        match key {
            Self::APPLICATION_ID => self.application_id = value.to_owned(),
            Self::BOOTSTRAP_SERVERS => {
                self.bootstrap_servers = (!value.is_empty()).then(|| value.to_owned())
            }
            Self::NUM_STREAM_THREADS => {
                let n: u32 = parse_number(key, value, "an integer >= 1")?;
                if n == 0 {
                    return Err(StreamsError::invalid_config(
                        key,
                        value,
                        "expected an integer >= 1",
                    ));
                }
                self.num_stream_threads = n;
            }
            Self::PROCESSING_GUARANTEE => self.processing_guarantee = value.parse()?,
            Self::COMMIT_INTERVAL_MS => {
                self.commit_interval_ms = Some(parse_number(key, value, "an integer >= 0")?)
            }
            Self::CACHE_MAX_BYTES_BUFFERING | Self::STATESTORE_CACHE_MAX_BYTES => {
                self.cache_max_bytes_buffering = parse_number(key, value, "an integer >= 0")?
            }
            Self::STATE_DIR => {
                if value.is_empty() {
                    return Err(StreamsError::invalid_config(key, value, "expected a path"));
                }
                self.state_dir = PathBuf::from(value);
            }
            Self::DEFAULT_DESERIALIZATION_EXCEPTION_HANDLER => {
                self.deserialization_handler = value.parse()?
            }
            Self::DEAD_LETTER_QUEUE_TOPIC_NAME => {
                self.dead_letter_topic = (!value.is_empty()).then(|| value.to_owned())
            }
            Self::MAX_TASK_IDLE_MS => {
                let ms: i64 = parse_number(key, value, "an integer >= -1")?;
                if ms < -1 {
                    return Err(StreamsError::invalid_config(
                        key,
                        value,
                        "expected an integer >= -1",
                    ));
                }
                self.max_task_idle_ms = ms;
            }
            Self::BUFFERED_RECORDS_PER_PARTITION => {
                let n: u64 = parse_number(key, value, "an integer >= 1")?;
                if n == 0 {
                    return Err(StreamsError::invalid_config(
                        key,
                        value,
                        "expected an integer >= 1",
                    ));
                }
                self.buffered_records_per_partition = n;
            }
            Self::REDB_CACHE_MAX_BYTES => {
                self.redb_cache_max_bytes = parse_number(key, value, "an integer >= 0")?
            }
            Self::SLED_CACHE_MAX_BYTES => {
                self.sled_cache_max_bytes = parse_number(key, value, "an integer >= 0")?
            }
            Self::TASK_IDLE_WALL_CLOCK_ADVANCE_MS => {
                self.task_idle_wall_clock_advance_ms = if value.is_empty() || value == "-1" {
                    None
                } else {
                    Some(parse_number(key, value, "an integer >= 0, or -1 for off")?)
                };
            }
            Self::DEFAULT_TIMESTAMP_EXTRACTOR => {
                self.timestamp_extractor = ExtractorSetting::Builtin(value.parse()?)
            }
            Self::APPLICATION_SERVER => {
                self.application_server = if value.is_empty() {
                    None
                } else {
                    parse_host_port(value)
                        .map_err(|reason| StreamsError::invalid_config(key, value, reason))?;
                    Some(value.to_owned())
                };
            }
            Self::HTTP_AUTH_TOKEN => {
                if value.chars().any(|c| !c.is_ascii_graphic()) {
                    return Err(StreamsError::invalid_config(
                        key,
                        "<redacted>",
                        "expected printable ASCII characters without spaces",
                    ));
                }
                self.http_auth_token = (!value.is_empty()).then(|| Secret(value.to_owned()));
            }
            other => {
                const CLIENT_PREFIXES: [&str; 5] = [
                    "producer.",
                    "consumer.",
                    "main.consumer.",
                    "restore.consumer.",
                    "admin.",
                ];
                // Read where they are used: by the runtime and the Kafka
                // backend.
                const CLIENT_KEYS: [&str; 3] = [
                    "repartition.purge.interval.ms",
                    "replication.factor",
                    "default.api.timeout.ms",
                ];
                if !CLIENT_PREFIXES.iter().any(|p| other.starts_with(p))
                    && !CLIENT_KEYS.contains(&other)
                {
                    tracing::warn!(key = other, "unknown streams configuration key; kept as is");
                }
                self.extra.insert(other.to_owned(), value.to_owned());
            }
        }
        Ok(self)
    }

    /// Checks the constraints that span keys: a valid `application.id`, and
    /// a dead-letter topic when the handler needs one.
    pub fn validate(&self) -> Result<()> {
        let id = &self.application_id;
        if id.is_empty() {
            return Err(StreamsError::invalid_config(
                Self::APPLICATION_ID,
                id,
                "must not be empty",
            ));
        }
        if let Some(bad) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(StreamsError::invalid_config(
                Self::APPLICATION_ID,
                id,
                format!(
                    "character {bad:?} is not allowed; use ASCII letters, digits, '.', '_' and '-'"
                ),
            ));
        }
        if self.deserialization_handler == DeserializationHandler::DeadLetterTopic
            && self.dead_letter_topic.is_none()
        {
            return Err(StreamsError::invalid_config(
                Self::DEFAULT_DESERIALIZATION_EXCEPTION_HANDLER,
                self.deserialization_handler.as_str(),
                format!("requires {} to be set", Self::DEAD_LETTER_QUEUE_TOPIC_NAME),
            ));
        }
        if let Some(server) = &self.application_server {
            parse_host_port(server).map_err(|reason| {
                StreamsError::invalid_config(Self::APPLICATION_SERVER, server, reason)
            })?;
        }
        if let Some(token) = &self.http_auth_token {
            if token.0.is_empty() || token.0.chars().any(|c| !c.is_ascii_graphic()) {
                return Err(StreamsError::invalid_config(
                    Self::HTTP_AUTH_TOKEN,
                    "<redacted>",
                    "expected printable ASCII characters without spaces",
                ));
            }
        }
        Ok(())
    }

    /// Sets `application.id`.
    pub fn with_application_id(mut self, id: impl Into<String>) -> Self {
        self.application_id = id.into();
        self
    }

    /// Sets `bootstrap.servers`.
    pub fn with_bootstrap_servers(mut self, servers: impl Into<String>) -> Self {
        self.bootstrap_servers = Some(servers.into());
        self
    }

    /// Sets `num.stream.threads` (0 counts as 1).
    pub fn with_num_stream_threads(mut self, n: u32) -> Self {
        self.num_stream_threads = n.max(1);
        self
    }

    /// Sets `processing.guarantee`.
    pub fn with_processing_guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        self.processing_guarantee = guarantee;
        self
    }

    /// Sets `commit.interval.ms`.
    pub fn with_commit_interval_ms(mut self, ms: u64) -> Self {
        self.commit_interval_ms = Some(ms);
        self
    }

    /// Sets `cache.max.bytes.buffering`.
    pub fn with_cache_max_bytes_buffering(mut self, bytes: u64) -> Self {
        self.cache_max_bytes_buffering = bytes;
        self
    }

    /// Sets `state.dir`.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = dir.into();
        self
    }

    /// Sets `default.deserialization.exception.handler`; a dead-letter
    /// topic also needs [`StreamsConfig::with_dead_letter_topic`].
    pub fn with_deserialization_handler(mut self, handler: DeserializationHandler) -> Self {
        self.deserialization_handler = handler;
        self
    }

    /// Sets `errors.dead.letter.queue.topic.name`.
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// Sets `max.task.idle.ms`.
    pub fn with_max_task_idle_ms(mut self, ms: i64) -> Self {
        self.max_task_idle_ms = ms.max(-1);
        self
    }

    /// Sets `buffered.records.per.partition` (at least 1).
    pub fn with_buffered_records_per_partition(mut self, records: u64) -> Self {
        self.buffered_records_per_partition = records.max(1);
        self
    }

    /// Sets `task.idle.wall.clock.advance.ms`; `None` turns it off.
    pub fn with_task_idle_wall_clock_advance_ms(mut self, ms: Option<u64>) -> Self {
        self.task_idle_wall_clock_advance_ms = ms;
        self
    }

    /// Sets `application.server` (`host:port`); the value is checked by
    /// [`StreamsConfig::validate`].
    pub fn with_application_server(mut self, server: impl Into<String>) -> Self {
        self.application_server = Some(server.into());
        self
    }

    /// Sets `http.auth.token`.
    pub fn with_http_auth_token(mut self, token: impl Into<String>) -> Self {
        self.http_auth_token = Some(Secret(token.into()));
        self
    }

    /// `application.server`, if set: `host:port` as given.
    pub fn application_server(&self) -> Option<&str> {
        self.application_server.as_deref()
    }

    /// `http.auth.token`, if set.
    pub fn http_auth_token(&self) -> Option<&str> {
        self.http_auth_token.as_ref().map(|s| s.0.as_str())
    }

    /// Sets `default.timestamp.extractor` to a built-in.
    pub fn with_default_timestamp_extractor_builtin(
        mut self,
        extractor: BuiltinTimestampExtractor,
    ) -> Self {
        self.timestamp_extractor = ExtractorSetting::Builtin(extractor);
        self
    }

    /// Sets `default.timestamp.extractor` to `extractor` (a closure
    /// `Fn(&ConsumedRecord<'_>, Option<i64>) -> Result<i64>` or a type of
    /// one's own).
    pub fn with_default_timestamp_extractor(mut self, extractor: impl TimestampExtractor) -> Self {
        self.timestamp_extractor = ExtractorSetting::Custom(Arc::new(extractor));
        self
    }

    /// `default.timestamp.extractor`: the extractor of sources that do not
    /// name their own.
    pub fn default_timestamp_extractor(&self) -> SharedTimestampExtractor {
        match &self.timestamp_extractor {
            ExtractorSetting::Builtin(b) => b.extractor(),
            ExtractorSetting::Custom(c) => c.clone(),
        }
    }

    /// `task.idle.wall.clock.advance.ms`, if on.
    pub fn task_idle_wall_clock_advance_ms(&self) -> Option<u64> {
        self.task_idle_wall_clock_advance_ms
    }

    /// `application.id`.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// `bootstrap.servers`, if set.
    pub fn bootstrap_servers(&self) -> Option<&str> {
        self.bootstrap_servers.as_deref()
    }

    /// `num.stream.threads`.
    pub fn num_stream_threads(&self) -> u32 {
        self.num_stream_threads
    }

    /// `processing.guarantee`.
    pub fn processing_guarantee(&self) -> ProcessingGuarantee {
        self.processing_guarantee
    }

    /// `commit.interval.ms`: the value set, else 100 under exactly-once and
    /// 30000 otherwise.
    pub fn commit_interval_ms(&self) -> u64 {
        self.commit_interval_ms
            .unwrap_or(match self.processing_guarantee {
                ProcessingGuarantee::AtLeastOnce => Self::DEFAULT_COMMIT_INTERVAL_MS,
                ProcessingGuarantee::ExactlyOnceV2 => Self::DEFAULT_EOS_COMMIT_INTERVAL_MS,
            })
    }

    /// `cache.max.bytes.buffering`.
    pub fn cache_max_bytes_buffering(&self) -> u64 {
        self.cache_max_bytes_buffering
    }

    /// `state.dir`.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `default.deserialization.exception.handler`.
    pub fn deserialization_handler(&self) -> DeserializationHandler {
        self.deserialization_handler
    }

    /// `errors.dead.letter.queue.topic.name`, if set.
    pub fn dead_letter_topic(&self) -> Option<&str> {
        self.dead_letter_topic.as_deref()
    }

    /// `max.task.idle.ms`.
    pub fn max_task_idle_ms(&self) -> i64 {
        self.max_task_idle_ms
    }

    /// `buffered.records.per.partition`.
    pub fn buffered_records_per_partition(&self) -> u64 {
        self.buffered_records_per_partition
    }

    /// `statestore.redb.cache.max.bytes`.
    pub fn redb_cache_max_bytes(&self) -> u64 {
        self.redb_cache_max_bytes
    }

    /// `statestore.sled.cache.max.bytes`.
    pub fn sled_cache_max_bytes(&self) -> u64 {
        self.sled_cache_max_bytes
    }

    /// The storage engines' settings these give.
    pub(crate) fn engine_options(&self) -> state_store::EngineOptions {
        state_store::EngineOptions {
            redb_cache_bytes: usize::try_from(self.redb_cache_max_bytes).unwrap_or(usize::MAX),
            sled_cache_bytes: self.sled_cache_max_bytes,
        }
    }

    /// Keys this type does not interpret (client settings such as
    /// `producer.linger.ms`), as given. The runtime reads these of them:
    /// `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
    /// (or their `main.consumer.` forms) for the stream threads' group
    /// membership, and `producer.transaction.timeout.ms` (default 10000)
    /// for the transactional producers of `exactly_once_v2`.
    pub fn extra(&self) -> &BTreeMap<String, String> {
        &self.extra
    }
}

/// Splits `host:port` (an IPv6 host in brackets, `[::1]:8080`) into its
/// host and port, or says what is wrong with it.
pub(crate) fn parse_host_port(value: &str) -> std::result::Result<(String, u16), String> {
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err("expected host:port".to_owned());
    };
    let host = match host.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| "an IPv6 host needs its closing ']'".to_owned())?,
        None if host.contains(':') => {
            return Err("put an IPv6 host in brackets: [::1]:8080".to_owned())
        }
        None => host,
    };
    if host.is_empty() {
        return Err("expected host:port, the host is empty".to_owned());
    }
    if host
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')))
    {
        return Err(format!("{host:?} is not a host name or an IP address"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
    Ok((host.to_owned(), port))
}

fn parse_number<T: FromStr>(key: &str, value: &str, expected: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StreamsError::invalid_config(key, value, format!("expected {expected}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_kafka() {
        let c = StreamsConfig::from_pairs([("application.id", "app")]).unwrap();
        assert_eq!(c.application_id(), "app");
        assert_eq!(c.num_stream_threads(), 1);
        assert_eq!(c.processing_guarantee(), ProcessingGuarantee::AtLeastOnce);
        assert_eq!(c.commit_interval_ms(), 30_000);
        assert_eq!(c.cache_max_bytes_buffering(), 10 * 1024 * 1024);
        assert_eq!(c.deserialization_handler(), DeserializationHandler::Fail);
        assert_eq!(c.max_task_idle_ms(), 0);
        assert_eq!(c.buffered_records_per_partition(), 1_000);
        assert_eq!(c.task_idle_wall_clock_advance_ms(), None);
        assert_eq!(c.default_timestamp_extractor().name(), "record-timestamp");
        assert_eq!(c.bootstrap_servers(), None);
    }

    #[test]
    fn exactly_once_shortens_the_default_commit_interval_only() {
        let c = StreamsConfig::from_pairs([
            ("application.id", "app"),
            ("processing.guarantee", "exactly_once_v2"),
        ])
        .unwrap();
        assert_eq!(c.commit_interval_ms(), 100);
        let c = StreamsConfig::from_pairs([
            ("processing.guarantee", "exactly_once_v2"),
            ("commit.interval.ms", "250"),
            ("application.id", "app"),
        ])
        .unwrap();
        assert_eq!(c.commit_interval_ms(), 250);
    }

    #[test]
    fn every_key_parses() {
        let c = StreamsConfig::from_pairs([
            ("application.id", "word-count_1.x"),
            ("bootstrap.servers", "localhost:9092"),
            ("num.stream.threads", "4"),
            ("cache.max.bytes.buffering", "0"),
            ("state.dir", "/var/lib/streams"),
            (
                "default.deserialization.exception.handler",
                "dead-letter-topic",
            ),
            ("errors.dead.letter.queue.topic.name", "dlq"),
            ("max.task.idle.ms", "-1"),
            ("buffered.records.per.partition", "50"),
            ("statestore.redb.cache.max.bytes", "1048576"),
            ("statestore.sled.cache.max.bytes", "2097152"),
            ("default.timestamp.extractor", "use-previous-on-invalid"),
            ("task.idle.wall.clock.advance.ms", "2000"),
            ("producer.linger.ms", "5"),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_servers(), Some("localhost:9092"));
        assert_eq!(c.num_stream_threads(), 4);
        assert_eq!(c.cache_max_bytes_buffering(), 0);
        assert_eq!(c.state_dir(), Path::new("/var/lib/streams"));
        assert_eq!(
            c.deserialization_handler(),
            DeserializationHandler::DeadLetterTopic
        );
        assert_eq!(c.dead_letter_topic(), Some("dlq"));
        assert_eq!(c.max_task_idle_ms(), -1);
        assert_eq!(c.buffered_records_per_partition(), 50);
        assert_eq!(c.redb_cache_max_bytes(), 1 << 20);
        assert_eq!(c.sled_cache_max_bytes(), 2 << 20);
        assert_eq!(
            c.default_timestamp_extractor().name(),
            "use-previous-on-invalid"
        );
        assert_eq!(c.task_idle_wall_clock_advance_ms(), Some(2000));
        assert_eq!(
            c.extra().get("producer.linger.ms").map(String::as_str),
            Some("5")
        );
        let c = StreamsConfig::from_pairs([
            ("application.id", "a"),
            ("statestore.cache.max.bytes", "1024"),
            (
                "default.deserialization.exception.handler",
                "org.apache.kafka.streams.errors.LogAndContinueExceptionHandler",
            ),
        ])
        .unwrap();
        assert_eq!(c.cache_max_bytes_buffering(), 1024);
        assert_eq!(
            c.deserialization_handler(),
            DeserializationHandler::LogAndContinue
        );
    }

    #[test]
    fn application_server_and_token() {
        let c = StreamsConfig::from_pairs([
            ("application.id", "a"),
            ("application.server", "127.0.0.1:8080"),
            ("http.auth.token", "s3cret"),
        ])
        .unwrap();
        assert_eq!(c.application_server(), Some("127.0.0.1:8080"));
        assert_eq!(c.http_auth_token(), Some("s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = StreamsConfig::from_pairs([("application.id", "a")]).unwrap();
        assert_eq!(c.application_server(), None);
        assert_eq!(c.http_auth_token(), None);
        assert_eq!(parse_host_port("[::1]:9000"), Ok(("::1".to_owned(), 9000)));
        assert_eq!(
            parse_host_port("app-1.example:80"),
            Ok(("app-1.example".to_owned(), 80))
        );
        for bad in [
            "localhost",
            ":80",
            "host:http",
            "host:70000",
            "::1:80",
            "a b:1",
        ] {
            let err =
                StreamsConfig::from_pairs([("application.id", "a"), ("application.server", bad)])
                    .unwrap_err();
            assert_eq!(key_of(err), "application.server", "{bad}");
        }
        let err = StreamsConfig::from_pairs([("application.id", "a"), ("http.auth.token", "a b")])
            .unwrap_err();
        assert!(!err.to_string().contains("a b"), "{err}");
        let err = StreamsConfig::new("a")
            .with_application_server("nope")
            .validate()
            .unwrap_err();
        assert_eq!(key_of(err), "application.server");
    }

    fn key_of(err: StreamsError) -> String {
        match err {
            StreamsError::InvalidConfig { key, .. } => key,
            StreamsError::MissingConfig { key } => key.to_owned(),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases: [(&[(&str, &str)], &str); 10] = [
            (
                &[
                    ("application.id", "a"),
                    ("default.timestamp.extractor", "x"),
                ],
                "default.timestamp.extractor",
            ),
            (&[], "application.id"),
            (&[("application.id", "")], "application.id"),
            (&[("application.id", "has space")], "application.id"),
            (
                &[("application.id", "a"), ("commit.interval.ms", "-5")],
                "commit.interval.ms",
            ),
            (
                &[("application.id", "a"), ("num.stream.threads", "0")],
                "num.stream.threads",
            ),
            (
                &[
                    ("application.id", "a"),
                    ("processing.guarantee", "exactly_once"),
                ],
                "processing.guarantee",
            ),
            (
                &[("application.id", "a"), ("max.task.idle.ms", "-2")],
                "max.task.idle.ms",
            ),
            (
                &[
                    ("application.id", "a"),
                    ("buffered.records.per.partition", "0"),
                ],
                "buffered.records.per.partition",
            ),
            (
                &[
                    ("application.id", "a"),
                    (
                        "default.deserialization.exception.handler",
                        "dead-letter-topic",
                    ),
                ],
                "default.deserialization.exception.handler",
            ),
        ];
        for (pairs, key) in cases {
            let err = StreamsConfig::from_pairs(pairs.iter().copied()).unwrap_err();
            let message = err.to_string();
            assert_eq!(key_of(err), key, "{message}");
            assert!(message.contains(key), "{message}");
        }
        let err = StreamsConfig::from_pairs([
            ("application.id", "a"),
            ("cache.max.bytes.buffering", "lots"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"lots\" for configuration 'cache.max.bytes.buffering': expected an integer >= 0"
        );
    }
}
