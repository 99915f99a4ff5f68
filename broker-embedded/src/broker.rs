//! The broker: a data dir of topics, their partitions' logs, admin operations, and the
//! background retention and compaction thread.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::compression::Compression;
use crate::config::{BrokerConfig, TopicConfig};
use crate::error::{BrokerError, Result};
use crate::group::GroupCoordinator;
use crate::log::files::FileCache;
use crate::log::{AppendInfo, CleanStats, Log, LogEnv};
use crate::partition::Partition;
use crate::record::{NewRecord, ProducerFields, RecordBatch, RecordRef};
use crate::topic_meta::{
    check_partitions, meta_file, new_topic_id, parse_meta, render_meta, sync_dir,
    validate_topic_name, write_atomically, META_DIR, META_FILE,
};
use crate::transaction::TransactionCoordinator;
use crate::IsolationLevel;

/// A topic to create: name, partition count and configs by Kafka's names
/// (Kafka's `NewTopic`).
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; `None` uses the broker's `num.partitions`.
    pub partitions: Option<u32>,
    /// Configs as `(key, value)`, applied over the broker's defaults.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and default configs.
    pub fn new(name: impl Into<String>, partitions: u32) -> Self {
        NewTopic {
            name: name.into(),
            partitions: Some(partitions),
            configs: Vec::new(),
        }
    }

    /// Adds one config, e.g. `("cleanup.policy", "compact")`.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// One partition as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Partition index.
    pub partition: u32,
    /// The first offset still in the log.
    pub log_start_offset: u64,
    /// The offset the next record will get.
    pub log_end_offset: u64,
    /// Bytes of segment files on disk.
    pub size_bytes: u64,
    /// Number of segment files.
    pub segment_count: usize,
    /// `Some(reason)` when the partition is offline: a file of its log cannot be trusted.
    /// The reason names the file and the first offset that cannot be read.
    pub offline: Option<String>,
}

/// What [`Broker::repair_partition`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairReport {
    /// The partition is online: nothing to repair.
    Online,
    /// The partition is offline and can be repaired by truncating it at its last good batch.
    Repairable {
        /// Why it is offline, naming the file and offset.
        reason: String,
        /// The first offset dropped: the log ends here after the repair.
        first_dropped: u64,
        /// One past the highest offset any dropped batch claims (`first_dropped` when no
        /// batch after the damage could be read).
        dropped_end: u64,
        /// Bytes of segment data dropped.
        dropped_bytes: u64,
        /// The files truncated or removed.
        files: Vec<PathBuf>,
        /// Whether the repair was carried out (`accept_data_loss`).
        repaired: bool,
    },
    /// The partition's log could not be opened at all; it needs an operator's hand.
    Unrepairable {
        /// Why.
        reason: String,
    },
}

/// A topic as `describe` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDescription {
    /// Topic name.
    pub name: String,
    /// Per-partition offsets and sizes.
    pub partitions: Vec<PartitionDescription>,
    /// The topic's configs.
    pub config: TopicConfig,
}

#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: String,
    /// The topic id, in the topic's metadata file.
    pub(crate) id: Uuid,
    /// The partitions; shared with the topic's next incarnation when partitions are added.
    pub(crate) partitions: Vec<Arc<Partition>>,
}

#[derive(Debug)]
struct Background {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<()>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    /// Holds the lock for as long as the broker lives.
    _lock: Option<File>,
    /// Keeps an in-memory broker's temporary dir alive.
    _temp: Option<tempfile::TempDir>,
    pub(crate) config: BrokerConfig,
    /// What every log shares.
    pub(crate) log_env: LogEnv,
    pub(crate) topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Held by the changes that rewrite an existing topic's metadata file (configs,
    /// partitions) or delete it, one at a time. Taken before any partition's lock, never
    /// while holding `topics`.
    pub(crate) admin: Mutex<()>,
    /// Woken on every append, so waiting consumers fetch again.
    pub(crate) data_arrived: Notify,
    background: Mutex<Option<Background>>,
    closed: std::sync::atomic::AtomicBool,
    /// The consumer group coordinator, shared by every consumer of this broker.
    pub(crate) groups: GroupCoordinator,
    /// The transaction coordinator, shared by every producer of this broker.
    pub(crate) transactions: TransactionCoordinator,
}

/// An embedded broker. Cheap to clone: clones share one broker.
///
/// `Send + Sync`; many producers and consumers can use one broker at once.
#[derive(Debug, Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

/// Kafka's internal topics, hidden from [`Broker::list_topics`].
pub(crate) fn is_internal_topic(name: &str) -> bool {
    matches!(name, "__consumer_offsets" | "__transaction_state")
}

pub(crate) fn partition_dir(dir: &Path, topic: &str, partition: u32) -> PathBuf {
    dir.join(format!("{topic}-{partition}"))
}

/// Takes the data dir's exclusive lock: an OS lock (`flock`) on the directory itself, held
/// by the returned handle for as long as the broker lives. No file name is involved, so
/// deleting a file in the dir cannot let a second broker in; the OS drops the lock when the
/// holder exits, however it exits.
fn lock_dir(dir: &Path) -> Result<File> {
    let handle = File::open(dir).map_err(|e| BrokerError::io(dir, e))?;
    match handle.try_lock() {
        Ok(()) => Ok(handle),
        Err(std::fs::TryLockError::WouldBlock) => Err(BrokerError::DirLocked {
            dir: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(BrokerError::io(dir, e)),
    }
}

/// A create of up to this many partitions makes each partition's first segment file at once
/// (a file and a dir fsync each, so that the first appends pay neither); a bigger one makes
/// dirs only, and each first segment file comes with its partition's first record.
pub(crate) const EAGER_FIRST_SEGMENT_PARTITIONS: u32 = 256;

impl Topic {
    /// The topic's configs, from the first partition whose log is open.
    pub(crate) fn config(&self) -> Result<TopicConfig> {
        Ok(match self.partitions.first() {
            Some(p) => match self.partitions.iter().find_map(|p| p.lock().ok()) {
                Some(log) => log.config().clone(),
                None => p.lock()?.config().clone(),
            },
            None => TopicConfig::default(),
        })
    }
}

impl Broker {
    /// Opens or creates a broker in `dir`, taking an exclusive lock on it, and recovers every
    /// partition's log (a torn tail is truncated with a warning).
    ///
    /// A second opener of the same dir, in this process or another, gets
    /// [`BrokerError::DirLocked`].
    pub async fn open(dir: impl AsRef<Path>, config: BrokerConfig) -> Result<Broker> {
        let broker = Self::open_inner(dir.as_ref().to_owned(), None, config)?;
        broker.start_groups().await?;
        broker.inner.transactions.start(&broker).await?;
        Ok(broker)
    }

    /// A broker in a fresh temporary dir that is removed when the broker is dropped: for
    /// tests and examples. It behaves exactly like a persistent one.
    pub async fn in_memory() -> Result<Broker> {
        Self::in_memory_with(BrokerConfig::default()).await
    }

    /// [`Broker::in_memory`] with a config (a mock clock, say).
    pub async fn in_memory_with(config: BrokerConfig) -> Result<Broker> {
        let temp = tempfile::Builder::new()
            .prefix("broker-")
            .tempdir()
            .map_err(|e| BrokerError::io(std::env::temp_dir(), e))?;
        let dir = temp.path().to_owned();
        let broker = Self::open_inner(dir, Some(temp), config)?;
        broker.start_groups().await?;
        broker.inner.transactions.start(&broker).await?;
        Ok(broker)
    }

    fn open_inner(
        dir: PathBuf,
        temp: Option<tempfile::TempDir>,
        config: BrokerConfig,
    ) -> Result<Broker> {
        if config.read_only {
            if !dir.join(META_DIR).is_dir() {
                return Err(BrokerError::NoBroker { dir });
            }
        } else {
            fs::create_dir_all(dir.join(META_DIR)).map_err(|e| BrokerError::io(&dir, e))?;
        }
        let lock = lock_dir(&dir)?;
        let log_env = LogEnv {
            flush_policy: config.flush_policy,
            time: config.time.clone(),
            files: FileCache::new(config.max_open_files),
            read_only: config.read_only,
            eager_first_segment: false,
        };

        let mut topics = BTreeMap::new();
        let meta_dir = dir.join(META_DIR);
        let entries = fs::read_dir(&meta_dir).map_err(|e| BrokerError::io(&meta_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BrokerError::io(&meta_dir, e))?;
            let entry_path = entry.path();
            let Some(file_name) = entry_path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let (name, path) = if entry_path.is_dir() {
                let path = entry_path.join(META_FILE);
                if !path.exists() {
                    // A create that did not get as far as its metadata: the topic was never
                    // created, and a later create of the name removes its partition dirs.
                    warn!(dir = %entry_path.display(), "ignoring a topic metadata dir without {META_FILE} (an interrupted create)");
                    continue;
                }
                (file_name.to_owned(), path)
            } else if let Some(name) = file_name.strip_suffix(".properties") {
                (name.to_owned(), entry_path.clone())
            } else {
                continue;
            };
            let text = fs::read_to_string(&path).map_err(|e| BrokerError::io(&path, e))?;
            let meta = parse_meta(&path, &text, config.max_partitions_per_topic)?;
            let id = match meta.id {
                Some(id) => id,
                None => {
                    // A topic created before topics had ids gets one now, kept from here on.
                    let id = new_topic_id();
                    if config.read_only {
                        warn!(topic = %name, "topic {name} has no id and the broker is read-only: it gets {id} for this open only");
                    } else {
                        write_atomically(
                            &path,
                            render_meta(id, meta.partitions, &meta.config).as_bytes(),
                        )?;
                        info!(topic = %name, %id, "gave topic {name} the id {id}");
                    }
                    id
                }
            };
            let partitions = Self::open_partitions(
                &dir,
                &name,
                0..meta.partitions,
                &meta.config,
                &log_env,
                true,
            )?;
            topics.insert(
                name.clone(),
                Arc::new(Topic {
                    name,
                    id,
                    partitions,
                }),
            );
        }
        info!(dir = %dir.display(), topics = topics.len(), "broker opened");

        let inner = Arc::new(Inner {
            dir,
            _lock: Some(lock),
            _temp: temp,
            config,
            log_env,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            data_arrived: Notify::new(),
            background: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
            groups: GroupCoordinator::new(),
            transactions: TransactionCoordinator::default(),
        });
        let broker = Broker { inner };
        broker.start_background();
        Ok(broker)
    }

    /// Opens (`opening`: at broker open, where a partition that fails is taken offline) or
    /// creates (where any failure fails the create) the partitions `range` of a topic.
    pub(crate) fn open_partitions(
        dir: &Path,
        name: &str,
        range: std::ops::Range<u32>,
        topic_config: &TopicConfig,
        env: &LogEnv,
        opening: bool,
    ) -> Result<Vec<Arc<Partition>>> {
        let mut parts = Vec::with_capacity(range.len());
        for p in range {
            let pdir = partition_dir(dir, name, p);
            match Log::open(&pdir, name, p, topic_config.clone(), env) {
                Ok(log) => parts.push(Arc::new(Partition::online(name, p, log))),
                Err(e) if opening => {
                    // One partition that cannot be opened is taken offline alone; the rest
                    // of the broker goes on.
                    let file = match &e {
                        BrokerError::Io { path, .. } => path.clone(),
                        _ => pdir.clone(),
                    };
                    tracing::error!(partition = %format!("{name}-{p}"), file = %file.display(), error = %e, "partition offline: its log cannot be opened");
                    parts.push(Arc::new(Partition::offline(
                        name,
                        p,
                        file,
                        format!("the log cannot be opened: {e}"),
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(parts)
    }

    fn start_background(&self) {
        if self.inner.config.read_only {
            return;
        }
        let interval = match self.inner.config.retention_check_interval_ms {
            Some(ms) => ms.min(self.inner.config.cleaner_backoff_ms).max(10),
            None => return,
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let handle = std::thread::Builder::new()
            .name("log-cleaner".to_owned())
            .spawn(move || loop {
                match stopped.recv_timeout(Duration::from_millis(interval)) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let broker = Broker { inner };
                if let Err(e) = broker.run_retention() {
                    warn!(error = %e, "retention pass failed");
                }
                if let Err(e) = broker.run_cleaner() {
                    warn!(error = %e, "cleaner pass failed");
                }
            });
        match handle {
            Ok(handle) => {
                *self
                    .inner
                    .background
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(Background { stop, handle });
            }
            Err(e) => warn!(error = %e, "could not start the log cleaner thread"),
        }
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The broker's config.
    pub fn config(&self) -> &BrokerConfig {
        &self.inner.config
    }

    /// `ReadOnly` when the broker was opened read-only.
    pub(crate) fn check_writable(&self, what: impl FnOnce() -> String) -> Result<()> {
        if self.inner.config.read_only {
            return Err(BrokerError::ReadOnly { what: what() });
        }
        Ok(())
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(BrokerError::Closed);
        }
        Ok(())
    }

    pub(crate) fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.check_open()?;
        self.inner
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| BrokerError::UnknownTopic {
                topic: name.to_owned(),
            })
    }

    pub(crate) fn partition(&self, topic: &str, partition: u32) -> Result<(Arc<Topic>, usize)> {
        let t = self.topic(topic)?;
        if partition as usize >= t.partitions.len() {
            return Err(BrokerError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
                partitions: t.partitions.len() as u32,
            });
        }
        Ok((t, partition as usize))
    }

    /// Checks what [`Broker::create_topic`] checks, creating nothing: the name, the
    /// partition count, the configs, and that no topic of the name exists. Returns the
    /// partition count and configs the topic would get (Kafka's `validate_only`).
    pub async fn validate_new_topic(&self, new: &NewTopic) -> Result<(u32, TopicConfig)> {
        let checked = self.check_new_topic(new)?;
        let topics = self.inner.topics.read().unwrap_or_else(|p| p.into_inner());
        if topics.contains_key(&new.name) {
            return Err(BrokerError::TopicExists {
                topic: new.name.clone(),
            });
        }
        Ok(checked)
    }

    fn check_new_topic(&self, new: &NewTopic) -> Result<(u32, TopicConfig)> {
        self.check_open()?;
        self.check_writable(|| format!("create topic {}", new.name))?;
        validate_topic_name(&new.name)?;
        let partitions = new.partitions.unwrap_or(self.inner.config.num_partitions);
        check_partitions(
            &new.name,
            partitions,
            self.inner.config.max_partitions_per_topic,
        )?;
        let mut config = self.inner.config.default_topic_config.clone();
        for (key, value) in &new.configs {
            config.set(key, value)?;
        }
        Ok((partitions, config))
    }

    /// Creates a topic with a new random id. A bad name, a duplicate, a zero partition
    /// count or a bad config is a typed error and creates nothing.
    pub async fn create_topic(&self, new: NewTopic) -> Result<()> {
        let (partitions, config) = self.check_new_topic(&new)?;
        let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
        if topics.contains_key(&new.name) {
            return Err(BrokerError::TopicExists { topic: new.name });
        }
        // Leftovers of a deleted topic of the same name must not come back to life.
        for p in 0..partitions {
            let pdir = partition_dir(&self.inner.dir, &new.name, p);
            if pdir.exists() {
                warn!(dir = %pdir.display(), "removing a stale partition dir of a deleted topic");
                fs::remove_dir_all(&pdir).map_err(|e| BrokerError::io(&pdir, e))?;
            }
        }
        let env = LogEnv {
            eager_first_segment: partitions <= EAGER_FIRST_SEGMENT_PARTITIONS,
            ..self.inner.log_env.clone()
        };
        let id = new_topic_id();
        let topic = Self::open_partitions(
            &self.inner.dir,
            &new.name,
            0..partitions,
            &config,
            &env,
            false,
        );
        let meta = meta_file(&self.inner.dir, &new.name);
        let created = topic.and_then(|topic| {
            // The new partition dirs' names are durable before the metadata names them.
            sync_dir(&self.inner.dir)?;
            if let Some(parent) = meta.parent() {
                fs::create_dir_all(parent).map_err(|e| BrokerError::io(parent, e))?;
            }
            write_atomically(&meta, render_meta(id, partitions, &config).as_bytes())?;
            sync_dir(&self.inner.dir.join(META_DIR))?;
            Ok(topic)
        });
        let partition_list = match created {
            Ok(partitions) => partitions,
            Err(e) => {
                // A failed create leaves no stray files.
                self.remove_topic_files(&new.name, partitions);
                return Err(e);
            }
        };
        info!(topic = %new.name, %id, partitions, "topic created");
        topics.insert(
            new.name.clone(),
            Arc::new(Topic {
                name: new.name,
                id,
                partitions: partition_list,
            }),
        );
        Ok(())
    }

    /// Removes what a failed create of `name` left: partition dirs and metadata.
    fn remove_topic_files(&self, name: &str, partitions: u32) {
        let mut paths: Vec<PathBuf> = (0..partitions)
            .map(|p| partition_dir(&self.inner.dir, name, p))
            .collect();
        paths.push(self.inner.dir.join(META_DIR).join(name));
        for path in paths {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                continue;
            };
            if let Err(e) = removed {
                warn!(dir = %path.display(), error = %e, "cannot remove what a failed create left");
            }
        }
    }

    /// Creates a topic unless it exists (with any partition count). Returns whether it was
    /// created.
    pub async fn ensure_topic(&self, new: NewTopic) -> Result<bool> {
        match self.create_topic(new).await {
            Ok(()) => Ok(true),
            Err(BrokerError::TopicExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes a topic and its data.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        self.check_open()?;
        self.check_writable(|| format!("delete topic {name}"))?;
        let _admin = self.inner.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = {
            let mut topics = self.inner.topics.write().unwrap_or_else(|p| p.into_inner());
            let topic = topics
                .remove(name)
                .ok_or_else(|| BrokerError::UnknownTopic {
                    topic: name.to_owned(),
                })?;
            // The metadata goes first: a crash after this leaves only orphan dirs, which a
            // later create of the same name removes.
            let meta = meta_file(&self.inner.dir, name);
            fs::remove_file(&meta).map_err(|e| BrokerError::io(&meta, e))?;
            if let Some(parent) = meta.parent().filter(|p| p.ends_with(name)) {
                fs::remove_dir(parent).map_err(|e| BrokerError::io(parent, e))?;
            }
            sync_dir(&self.inner.dir.join(META_DIR))?;
            topic
        };
        for (p, _) in topic.partitions.iter().enumerate() {
            let pdir = partition_dir(&self.inner.dir, name, p as u32);
            if let Err(e) = fs::remove_dir_all(&pdir) {
                warn!(dir = %pdir.display(), error = %e, "could not remove a deleted topic's dir");
            }
        }
        info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Names of all topics, sorted. Internal topics (`__consumer_offsets`,
    /// `__transaction_state`) are left out, as Kafka's `listTopics` does by default; they can
    /// still be described and read by name.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        self.check_open()?;
        Ok(self
            .inner
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|name| !is_internal_topic(name))
            .cloned()
            .collect())
    }

    /// Per-partition offsets and sizes, and the topic's configs.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        let topic = self.topic(name)?;
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        let mut config = None;
        for (p, part) in topic.partitions.iter().enumerate() {
            match part.lock() {
                Ok(log) => {
                    let offline = log
                        .damage()
                        .map(|d| format!("{}; offsets below it are readable", part_reason(d)));
                    partitions.push(PartitionDescription {
                        partition: p as u32,
                        log_start_offset: log.log_start_offset(),
                        log_end_offset: log.log_end_offset(),
                        size_bytes: log.size_bytes(),
                        segment_count: log.segment_count(),
                        offline,
                    });
                    if config.is_none() {
                        config = Some(log.config().clone());
                    }
                }
                Err(_) => partitions.push(PartitionDescription {
                    partition: p as u32,
                    log_start_offset: 0,
                    log_end_offset: 0,
                    size_bytes: 0,
                    segment_count: 0,
                    offline: part.open_failure(),
                }),
            }
        }
        Ok(TopicDescription {
            name: topic.name.clone(),
            partitions,
            config: config.unwrap_or_default(),
        })
    }

    /// The number of partitions of a topic.
    pub async fn partition_count(&self, topic: &str) -> Result<u32> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    /// The topic's id (Kafka's topic id): a random UUID given when the topic is created (or,
    /// for a topic created before topics had ids, when the broker first opened it), kept in
    /// its metadata file across restarts. A topic deleted and created again gets a new id.
    pub fn topic_id(&self, name: &str) -> Result<Uuid> {
        Ok(self.topic(name)?.id)
    }

    /// The name of the topic with this id; `None` when no topic has it.
    pub fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        self.inner
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|t| t.id == id)
            .map(|t| t.name.clone())
    }

    /// Changes configs of an existing topic (Kafka's `alterConfigs`); unchanged keys keep
    /// their values.
    pub async fn alter_topic_config(&self, name: &str, changes: &[(&str, &str)]) -> Result<()> {
        self.check_writable(|| format!("alter the configs of topic {name}"))?;
        // Held while the metadata file is rewritten, so that no partitions are added
        // meanwhile (the file names the partition count too).
        let _admin = self.inner.admin.lock().unwrap_or_else(|p| p.into_inner());
        let topic = self.topic(name)?;
        let mut config = topic.config()?;
        for (key, value) in changes {
            config.set(key, value)?;
        }
        write_atomically(
            &meta_file(&self.inner.dir, name),
            render_meta(topic.id, topic.partitions.len() as u32, &config).as_bytes(),
        )?;
        for part in &topic.partitions {
            if let Ok(mut log) = part.lock() {
                log.set_config(config.clone());
            }
        }
        Ok(())
    }

    /// Appends records to one partition as one batch, and wakes waiting consumers.
    ///
    /// With a producer id (`producer.producer_id >= 0`) the partition checks the batch
    /// against the producer's state, as Kafka does: a batch with the same epoch and sequence
    /// range as one of the producer's last 5 batches is a duplicate, acknowledged with the
    /// original offsets and not written again; a sequence that does not follow the last one
    /// is [`BrokerError::OutOfOrderSequence`]; an epoch older than the partition's is
    /// [`BrokerError::InvalidProducerEpoch`]. A transactional batch here bypasses the
    /// transaction coordinator: use a transactional [`Producer`](crate::Producer).
    pub async fn append(
        &self,
        topic: &str,
        partition: u32,
        records: &[NewRecord],
        producer: ProducerFields,
    ) -> Result<AppendInfo> {
        let refs: Vec<RecordRef<'_>> = records.iter().map(NewRecord::as_record_ref).collect();
        self.append_sync(topic, partition, &refs, producer, Compression::None)
    }

    /// [`Broker::append`] without `.await`, for callers holding a std lock, with the codec
    /// the producer asks for (the topic's `compression.type` may override it).
    pub(crate) fn append_sync(
        &self,
        topic: &str,
        partition: u32,
        records: &[RecordRef<'_>],
        producer: ProducerFields,
        compression: Compression,
    ) -> Result<AppendInfo> {
        let (t, p) = self.partition(topic, partition)?;
        let info = t.partitions[p]
            .lock()?
            .append_refs_with(records, producer, compression)?;
        self.inner.data_arrived.notify_waiters();
        Ok(info)
    }

    /// Reads whole batches of one partition starting at the batch that holds `offset`, about
    /// `max_bytes` of them (at least one batch), stopping before `max_offset`.
    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        max_offset: Option<u64>,
    ) -> Result<Vec<RecordBatch>> {
        let (t, p) = self.partition(topic, partition)?;
        let mut log = t.partitions[p].lock()?;
        let result = log.read(offset, max_bytes, max_offset.unwrap_or(u64::MAX));
        after_read(&mut log, &result);
        result
    }

    /// [`Broker::fetch`] with an isolation level: under
    /// [`IsolationLevel::ReadCommitted`] the read stops at the last stable offset, and the
    /// batches of aborted transactions come back with no records (their offsets still let
    /// the reader move past them). Control batches are returned as they are, for the reader
    /// to skip.
    pub async fn fetch_with_isolation(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Result<Vec<RecordBatch>> {
        self.read_partition(topic, partition, offset, max_bytes, isolation)
    }

    /// [`Broker::fetch_with_isolation`] without the future, for a consumer's
    /// read-ahead thread.
    pub(crate) fn read_partition(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
        isolation: IsolationLevel,
    ) -> Result<Vec<RecordBatch>> {
        let (t, p) = self.partition(topic, partition)?;
        let stored = {
            let mut log = t.partitions[p].lock()?;
            let stored = match isolation {
                IsolationLevel::ReadUncommitted => log.read_stored(offset, max_bytes, u64::MAX),
                IsolationLevel::ReadCommitted => {
                    log.read_committed_stored(offset, max_bytes, u64::MAX)
                }
            };
            after_read(&mut log, &stored);
            stored
        }?;
        // Decoded without the lock: appends to the partition go on meanwhile.
        let decoded = stored.decode();
        if let Err(BrokerError::CorruptBatch { .. }) = &decoded {
            after_read(&mut *t.partitions[p].lock()?, &decoded);
        }
        decoded
    }

    /// The offset up to which a consumer can read `topic`-`partition` now,
    /// without waiting: the last stable offset with `read_committed`, the
    /// log end offset without. (The in-process view a consumer uses to know
    /// whether records wait past its position.)
    pub fn readable_end_offset(
        &self,
        topic: &str,
        partition: u32,
        read_committed: bool,
    ) -> Result<u64> {
        let (t, p) = self.partition(topic, partition)?;
        let log = t.partitions[p].lock()?;
        Ok(if read_committed {
            log.last_stable_offset()
        } else {
            log.log_end_offset()
        })
    }

    /// The last stable offset of a partition: the first offset of its earliest open
    /// transaction, or its log end offset if none is open. A `read_committed` consumer reads
    /// only below it.
    pub async fn last_stable_offset(&self, topic: &str, partition: u32) -> Result<u64> {
        let (t, p) = self.partition(topic, partition)?;
        let log = t.partitions[p].lock()?;
        Ok(log.last_stable_offset())
    }

    /// `PartitionOffline` when the partition's log is damaged anywhere, even past every
    /// offset a read would reach: for loaders that must see all of a partition.
    pub(crate) fn check_online(&self, topic: &str, partition: u32) -> Result<()> {
        let (t, p) = self.partition(topic, partition)?;
        let log = t.partitions[p].lock()?;
        match log.damage() {
            Some(d) => Err(BrokerError::PartitionOffline {
                topic: topic.to_owned(),
                partition,
                file: d.file.clone(),
                offset: d.offset,
                reason: d.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Reports what repairing an offline partition would drop and, with
    /// `accept_data_loss`, repairs it: the damaged segment is truncated at its last good
    /// batch (removed when the damage is at its first byte), every later segment is
    /// removed, and the partition comes back online with its log end at the damage's offset.
    /// Offsets from there on are lost, as in an unclean leader election of Kafka. A repaired
    /// `__consumer_offsets` or `__transaction_state` partition is loaded at the next open.
    pub async fn repair_partition(
        &self,
        topic: &str,
        partition: u32,
        accept_data_loss: bool,
    ) -> Result<RepairReport> {
        let (t, p) = self.partition(topic, partition)?;
        let part = &t.partitions[p];
        let mut log = match part.lock() {
            Ok(log) => log,
            Err(_) => {
                return Ok(RepairReport::Unrepairable {
                    reason: part.open_failure().unwrap_or_default(),
                })
            }
        };
        let Some(plan) = log.repair_plan()? else {
            return Ok(RepairReport::Online);
        };
        let reason = part_reason(&plan.damage);
        let files = plan
            .truncate
            .iter()
            .map(|(f, _)| f.clone())
            .chain(plan.remove.iter().cloned())
            .collect();
        if accept_data_loss {
            self.check_writable(|| format!("repair {topic}-{partition}"))?;
            crate::log::apply_repair(&plan)?;
            let config = log.config().clone();
            let reopened = Log::open(
                &partition_dir(&self.inner.dir, topic, partition),
                topic,
                partition,
                config,
                &self.inner.log_env,
            )?;
            *log = reopened;
            warn!(
                partition = %format!("{topic}-{partition}"),
                first_dropped = plan.damage.offset,
                dropped_end = plan.dropped_end,
                "repaired an offline partition, dropping offsets {}..{}",
                plan.damage.offset,
                plan.dropped_end
            );
        }
        Ok(RepairReport::Repairable {
            reason,
            first_dropped: plan.damage.offset,
            dropped_end: plan.dropped_end,
            dropped_bytes: plan.dropped_bytes,
            files,
            repaired: accept_data_loss,
        })
    }

    /// `(log start offset, log end offset)` of a partition.
    pub async fn offsets(&self, topic: &str, partition: u32) -> Result<(u64, u64)> {
        let (t, p) = self.partition(topic, partition)?;
        let log = t.partitions[p].lock()?;
        Ok((log.log_start_offset(), log.log_end_offset()))
    }

    /// The earliest offset whose timestamp is at least `timestamp`, with that timestamp
    /// (Kafka's `offsetsForTimes`); `None` if every record is older.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        timestamp: i64,
    ) -> Result<Option<(u64, i64)>> {
        let (t, p) = self.partition(topic, partition)?;
        let mut log = t.partitions[p].lock()?;
        let result = log.offset_for_timestamp(timestamp);
        after_read(&mut log, &result);
        result
    }

    /// A commit point for the given partitions: fsyncs them unless `log.flush.policy` is
    /// `close`.
    pub async fn commit_point(&self, partitions: &[(String, u32)]) -> Result<()> {
        for (topic, partition) in partitions {
            let (t, p) = self.partition(topic, *partition)?;
            t.partitions[p].lock()?.commit_point()?;
        }
        Ok(())
    }

    pub(crate) fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Fsyncs every partition.
    pub async fn flush(&self) -> Result<()> {
        self.check_open()?;
        for topic in self.all_topics() {
            for part in &topic.partitions {
                if let Ok(mut log) = part.lock() {
                    log.flush()?;
                }
            }
        }
        Ok(())
    }

    /// Applies `retention.ms` and `retention.bytes` to every topic with the `delete` policy
    /// now; returns the number of segments deleted. The background thread does this every
    /// `log.retention.check.interval.ms`.
    pub fn run_retention(&self) -> Result<usize> {
        self.check_open()?;
        let mut deleted = 0;
        for topic in self.all_topics() {
            for part in &topic.partitions {
                if let Ok(mut log) = part.lock() {
                    deleted += log.enforce_retention()?;
                }
            }
        }
        if deleted > 0 {
            debug!(deleted, "retention deleted segments");
        }
        Ok(deleted)
    }

    /// One background cleaner pass: compacts each partition of a compacted topic whose dirty
    /// ratio reached `min.cleanable.dirty.ratio`.
    pub fn run_cleaner(&self) -> Result<CleanStats> {
        self.check_open()?;
        let mut total = CleanStats::default();
        for topic in self.all_topics() {
            for part in &topic.partitions {
                let Ok(mut log) = part.lock() else { continue };
                if log.config().cleanup_policy.compact {
                    add_stats(&mut total, log.clean(false)?);
                }
            }
        }
        Ok(total)
    }

    /// Compacts every partition of `topic` now, whatever its dirty ratio (the active segment
    /// and records younger than `min.compaction.lag.ms` are still left alone).
    pub async fn compact_topic(&self, topic: &str) -> Result<CleanStats> {
        let t = self.topic(topic)?;
        self.check_writable(|| format!("compact topic {topic}"))?;
        let mut total = CleanStats::default();
        for part in &t.partitions {
            let mut log = part.lock()?;
            if !log.config().cleanup_policy.compact {
                return Err(BrokerError::InvalidConfig {
                    key: "cleanup.policy".to_owned(),
                    value: log.config().cleanup_policy.to_string(),
                    reason: format!("topic {topic} is not compacted"),
                });
            }
            add_stats(&mut total, log.clean(true)?);
        }
        Ok(total)
    }

    /// Stops the background thread and flushes and closes every log. Later calls on any clone
    /// of this broker return [`BrokerError::Closed`].
    pub async fn close(&self) -> Result<()> {
        self.inner.shutdown()
    }
}

fn part_reason(d: &crate::log::Damage) -> String {
    format!(
        "{} (file {}, offset {})",
        d.reason,
        d.file.display(),
        d.offset
    )
}

/// After a read under the partition's lock: a corrupt batch the read found takes the
/// partition offline, and index entries the read found wrong are rebuilt.
pub(crate) fn after_read<T>(log: &mut Log, result: &Result<T>) {
    if let Err(BrokerError::CorruptBatch {
        offset,
        file,
        reason,
        ..
    }) = result
    {
        log.take_offline(file, *offset, &format!("corrupt batch: {reason}"));
    }
    log.repair_index_misses();
}

fn add_stats(total: &mut CleanStats, s: CleanStats) {
    total.segments_cleaned += s.segments_cleaned;
    total.records_read += s.records_read;
    total.records_removed += s.records_removed;
    total.bytes_before += s.bytes_before;
    total.bytes_after += s.bytes_after;
}

impl Inner {
    fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(());
        }
        self.groups.shutdown();
        let background = self
            .background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(bg) = background {
            // The thread may be the one dropping the last handle: never join ourselves.
            let _ = bg.stop.send(());
            if bg.handle.thread().id() != std::thread::current().id() {
                let _ = bg.handle.join();
            }
        }
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let mut first_error = None;
        for topic in topics.values() {
            for part in &topic.partitions {
                let Ok(mut log) = part.lock() else { continue };
                if let Err(e) = log.close() {
                    warn!(error = %e, "closing a log failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        self.data_arrived.notify_waiters();
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            warn!(error = %e, "broker shutdown on drop failed");
        }
    }
}
