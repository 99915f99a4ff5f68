//! One partition's log: segment files of record batches, indexes, recovery, retention and
//! compaction.
//!
//! A partition directory holds segments `<20-digit base offset>.log`, each with a sparse
//! offset index `.index` and a time index `.timeindex`, and the cleaner's checkpoint
//! `cleaner-offset-checkpoint`. The last segment is the active one: appends go there, and on
//! open it is checked batch by batch and truncated at the first torn or corrupt batch.
//! Earlier segments are sealed: immutable, except that the cleaner may replace one with a
//! compacted copy and retention may delete the oldest. The byte layouts are in
//! `docs/format.md`.
//!
//! Each log also keeps its producer state (idempotent producers' last batches, open and
//! aborted transactions, the last stable offset), rebuilt on open from the batch headers;
//! see the `producers` module.

mod append_batch;
mod bounds;
mod cleaner;
mod damage;
pub(crate) mod files;
mod gaps;
mod index;
mod producers;
mod read;
mod segment;
mod start;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{debug, error, warn};

use self::files::FileCache;
use self::gaps::Gaps;
use self::producers::{ProducerCheck, ProducerStates};
use self::segment::{parse_file_name, sync_dir, Scanned, Segment};
use crate::batch::{self, BatchHeader, Compression};
use crate::config::{FlushPolicy, TimestampType, TopicConfig};
use crate::error::{BrokerError, Result};
use crate::record::{NewRecord, ProducerFields, RecordRef};
use crate::time::Time;

use self::damage::gap_allowed;
pub(crate) use self::damage::{apply_repair, Damage};
pub use self::producers::ActiveProducer;
pub(crate) use self::producers::{control_is_commit, control_key, control_value};

/// A read may read this many bytes beyond its budget to skip the batches between the index
/// entry it starts from and the requested offset.
const MAX_READ_SLACK: u64 = 64 * 1024;

/// What an append produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the first appended record.
    pub base_offset: u64,
    /// Offset of the last appended record.
    pub last_offset: u64,
    /// Timestamp the broker stored: the append time under `LogAppendTime`, else the batch's max.
    pub timestamp: i64,
    /// `Some(now)` under `LogAppendTime`.
    pub log_append_time: Option<i64>,
}

/// What a compaction pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Records read by the cleaner.
    pub records_read: u64,
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
    /// Bytes before and after.
    pub bytes_before: u64,
    /// Bytes after cleaning.
    pub bytes_after: u64,
}

/// What every log of a broker shares: the flush policy, the clock, the cache of open
/// segment files, and whether the data dir may be written.
#[derive(Debug, Clone)]
pub(crate) struct LogEnv {
    /// `log.flush.policy`.
    pub(crate) flush_policy: FlushPolicy,
    /// The clock.
    pub(crate) time: Arc<dyn Time>,
    /// The broker's segment file handles.
    pub(crate) files: Arc<FileCache>,
    /// Opened read-only: nothing in the data dir is created, truncated, removed or written.
    pub(crate) read_only: bool,
    /// An empty partition gets its first segment file (and the fsync of its dir) at open,
    /// not at its first append.
    pub(crate) eager_first_segment: bool,
}

/// One partition's log.
///
/// Not internally synchronized: appends, retention and cleaning take `&mut self`, reads take
/// `&self`; the owner puts the log behind a lock.
#[derive(Debug)]
pub(crate) struct Log {
    dir: PathBuf,
    topic: String,
    partition: u32,
    /// `topic-partition`, for log messages.
    label: String,
    config: TopicConfig,
    flush_policy: FlushPolicy,
    time: Arc<dyn Time>,
    files: Arc<FileCache>,
    read_only: bool,
    /// Appends not fsynced yet.
    unsynced: bool,
    /// Sealed segments by base offset, oldest first.
    sealed: BTreeMap<u64, Segment>,
    /// The segment appends go to; its base offset is above every sealed one's.
    active: Segment,
    /// Offsets below this were compacted by the last cleaner pass.
    cleaner_checkpoint: u64,
    /// Set after a failed fsync or write: the log refuses further writes.
    poisoned: bool,
    /// Set when a file of the log cannot be trusted: the partition is offline.
    damage: Option<Damage>,
    /// `(log start, log end)` as last recorded in `log-bounds`.
    recorded_bounds: Option<(u64, u64)>,
    /// The log start offset that DeleteRecords set (0 if it never did); see the `start`
    /// module. The log starts at the greater of this and the first segment's base offset.
    log_start: u64,
    /// Gaps that compaction left between segments; `None` for a log whose compaction
    /// predates the record (its gaps below the cleaner checkpoint are accepted).
    gaps: Option<Gaps>,
    /// A read found an index entry that points at the wrong batch: the indexes of the
    /// segments flagged in `index_misses` are rebuilt at the next `&mut` call.
    index_misses: std::sync::Mutex<Vec<u64>>,
    /// Set with `index_misses`, checked without its lock.
    index_missed: std::sync::atomic::AtomicBool,
    /// Reused for encoding appended batches.
    encode_buf: Vec<u8>,
    /// Idempotent producers, open transactions and aborted transactions of this partition.
    producers: ProducerStates,
    /// Makes the next fsync fail, to test poisoning.
    #[cfg(test)]
    fail_next_sync: bool,
    /// Sealed segments whose index files could not be used on open.
    #[cfg(test)]
    rebuilt_at_open: usize,
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering the active segment's tail.
    ///
    /// Leftovers of interrupted work are removed first: `.log.cleaned` files of an
    /// interrupted compaction (the original segment is intact), temporary `.tmp` files, and
    /// index files without a segment. Sealed segments use their index files if these match;
    /// otherwise they are scanned. The last segment is always scanned in full and truncated
    /// at its first torn or corrupt batch.
    pub(crate) fn open(
        dir: &Path,
        topic: &str,
        partition: u32,
        config: TopicConfig,
        env: &LogEnv,
    ) -> Result<Log> {
        let label = format!("{topic}-{partition}");
        let io_err = |e| BrokerError::io(dir, e);
        let read_only = env.read_only;
        if !read_only {
            fs::create_dir_all(dir).map_err(io_err)?;
        }

        let mut logs = Vec::new();
        let mut index_files = Vec::new();
        let mut removed_any = false;
        let entries: Vec<fs::DirEntry> = match fs::read_dir(dir) {
            Ok(entries) => entries.collect::<std::io::Result<_>>().map_err(io_err)?,
            // Read-only, a partition that never got its dir is empty.
            Err(e) if read_only && e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(e)),
        };
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            let leftover = if is_own_temp_file(name) {
                true
            } else if name.ends_with(segment::CLEANED_SUFFIX) {
                warn!(file = %path.display(), "{label}: removing {} left by an interrupted compaction; the segment it was to replace is intact", path.display());
                true
            } else {
                false
            };
            if leftover {
                if !read_only {
                    fs::remove_file(&path).map_err(|e| BrokerError::io(&path, e))?;
                    removed_any = true;
                }
                continue;
            }
            match parse_file_name(name) {
                Some((base, segment::LOG_SUFFIX)) => logs.push(base),
                Some((base, segment::INDEX_SUFFIX | segment::TIME_INDEX_SUFFIX)) => {
                    index_files.push((base, path))
                }
                _ => {}
            }
        }
        logs.sort_unstable();
        for (base, path) in index_files {
            if logs.binary_search(&base).is_err() && !read_only {
                warn!(file = %path.display(), "{label}: removing index file {} that has no segment", path.display());
                fs::remove_file(&path).map_err(|e| BrokerError::io(&path, e))?;
                removed_any = true;
            }
        }

        let interval = config.index_interval_bytes;
        let (gaps, gaps_error) = match gaps::read(dir) {
            Ok(gaps) => (gaps, None),
            Err(reason) => (Some(Gaps::default()), Some(reason)),
        };
        let raw_checkpoint = cleaner::read_checkpoint(dir, &label).unwrap_or(0);
        let recorded_bounds = match bounds::read(dir) {
            Ok(recorded) => recorded,
            Err(reason) => {
                warn!("{label}: ignoring the recorded log bounds: {reason}");
                None
            }
        };
        let gap_allowed = |from: u64, to: u64| gap_allowed(gaps.as_ref(), raw_checkpoint, from, to);
        let mut sealed = BTreeMap::new();
        let files = &env.files;
        let active = match logs.split_last() {
            // The first segment's file is created at the first append.
            // A new partition of a small topic gets its first segment file now, so that its
            // first appends pay no file creation and dir fsync; otherwise (many partitions,
            // a reopen, read-only) the file is created at the first append.
            None if env.eager_first_segment && !read_only => {
                removed_any = true;
                Segment::create(dir, 0, files).map_err(io_err)?
            }
            None => Segment::lazy(dir, 0, files),
            Some((&last, earlier)) => {
                for &base in earlier {
                    let segment =
                        Segment::open_sealed(dir, base, &label, interval, &gap_allowed, files)?;
                    sealed.insert(base, segment);
                }
                Segment::recover(
                    dir,
                    last,
                    &label,
                    interval,
                    files,
                    read_only,
                    recorded_bounds.map(|(_, end)| end),
                )?
            }
        };
        let mut log = Log {
            dir: dir.to_path_buf(),
            topic: topic.to_owned(),
            partition,
            label,
            config,
            flush_policy: env.flush_policy,
            time: env.time.clone(),
            files: env.files.clone(),
            read_only,
            unsynced: false,
            sealed,
            active,
            cleaner_checkpoint: 0,
            poisoned: false,
            damage: None,
            recorded_bounds: None,
            log_start: recorded_bounds.map_or(0, |(start, _)| start),
            gaps,
            index_misses: std::sync::Mutex::new(Vec::new()),
            index_missed: std::sync::atomic::AtomicBool::new(false),
            encode_buf: Vec::new(),
            producers: ProducerStates::default(),
            #[cfg(test)]
            fail_next_sync: false,
            #[cfg(test)]
            rebuilt_at_open: 0,
        };
        // Sealed segments whose indexes were rebuilt get their index files back now.
        for segment in log.sealed.values_mut().filter(|_| !read_only) {
            if segment.indexes_dirty() {
                #[cfg(test)]
                {
                    log.rebuilt_at_open += 1;
                }
                if let Err(e) = segment.write_indexes() {
                    warn!(file = %segment.path().display(), "{}: cannot write rebuilt index files: {e}", log.label);
                }
                removed_any = true;
            }
        }
        if removed_any {
            sync_dir(dir).map_err(io_err)?;
        }
        log.cleaner_checkpoint = raw_checkpoint
            .min(log.log_end_offset())
            .max(log.log_start_offset());
        log.recorded_bounds = recorded_bounds;
        log.damage = log.find_damage(gaps_error);
        log.rebuild_producer_state()?;
        if let Some(d) = &log.damage {
            error!(
                file = %d.file.display(),
                offset = d.offset,
                "{}: partition offline: {} (file {}, offset {}); offsets below {} stay readable",
                log.label,
                d.reason,
                d.file.display(),
                d.offset,
                d.offset
            );
        }
        debug!(
            "{}: opened with {} segments, offsets {}..{}",
            log.label,
            log.segment_count(),
            log.log_start_offset(),
            log.log_end_offset()
        );
        Ok(log)
    }

    /// The partition directory.
    #[allow(dead_code, reason = "part of the log's interface for its owner")]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `records` as one batch at the log end offset and returns where they went.
    ///
    /// Refused with `InvalidRecord`: an empty slice, a batch larger than
    /// `max.message.bytes`, and a null key in a topic whose `cleanup.policy` includes
    /// `compact`. The active segment rolls first if the batch would push it past
    /// `segment.bytes` or it is older than `segment.ms`. Under [`FlushPolicy::EveryAppend`]
    /// the batch is fsynced before this returns. After a failed write or fsync the log is
    /// poisoned and every append returns `LogPoisoned`.
    pub(crate) fn append(
        &mut self,
        records: &[NewRecord],
        producer: ProducerFields,
    ) -> Result<AppendInfo> {
        let refs: Vec<RecordRef<'_>> = records.iter().map(NewRecord::as_record_ref).collect();
        self.append_refs(&refs, producer)
    }

    /// [`Log::append`] for borrowed records.
    pub(crate) fn append_refs(
        &mut self,
        records: &[RecordRef<'_>],
        producer: ProducerFields,
    ) -> Result<AppendInfo> {
        self.append_refs_with(records, producer, Compression::None)
    }

    /// [`Log::append_refs`] for a producer that asks for `compression`. The batch is
    /// stored with the topic's `compression.type` where that is a codec, else with
    /// `compression`; a control batch (a transaction marker) is never compressed.
    pub(crate) fn append_refs_with(
        &mut self,
        records: &[RecordRef<'_>],
        producer: ProducerFields,
        compression: Compression,
    ) -> Result<AppendInfo> {
        self.check_writable()?;
        if records.is_empty() {
            return Err(self.invalid_record("a batch needs at least one record".into()));
        }
        if self.config.cleanup_policy.compact && records.iter().any(|r| r.key.is_none()) {
            return Err(self.invalid_record("compacted topic requires a key".into()));
        }
        if producer.producer_id >= 0 && !producer.control {
            if let Some(duplicate) = self.check_producer(producer, records.len() as u32)? {
                return Ok(duplicate);
            }
        }
        let now = self.time.now_ms();
        let base_offset = self.log_end_offset();
        let compression = if producer.control {
            Compression::None
        } else {
            self.config.compression_type.target(compression)
        };
        let mut buf = std::mem::take(&mut self.encode_buf);
        buf.clear();
        let result =
            self.append_encoded(&mut buf, records, base_offset, producer, now, compression);
        self.encode_buf = buf;
        if let Ok(info) = &result {
            if producer.control {
                if let Some(commit) = records
                    .first()
                    .and_then(|r| r.key)
                    .and_then(control_is_commit)
                {
                    self.producers.on_marker(
                        producer.producer_id,
                        producer.producer_epoch,
                        commit,
                        info.base_offset,
                    );
                }
            } else {
                self.producers.on_batch(
                    producer.producer_id,
                    producer.producer_epoch,
                    producer.base_sequence,
                    records.len() as u32,
                    producer.transactional,
                    info.base_offset,
                    info.last_offset,
                    info.timestamp,
                );
            }
        }
        result
    }

    /// `Ok` when the log takes appends: not poisoned, not offline, not read-only.
    fn check_writable(&self) -> Result<()> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        if let Some(d) = &self.damage {
            return Err(self.offline_error(d));
        }
        if self.read_only {
            return Err(BrokerError::ReadOnly {
                what: format!("append to {}", self.label),
            });
        }
        Ok(())
    }

    /// Checks a batch of `count` records of an idempotent producer against the producer's
    /// state: `Some(offsets)` for a duplicate of one of its last batches (acknowledged, not
    /// written again), `None` for a batch to append, or the error for a stale epoch or a
    /// sequence out of order.
    fn check_producer(
        &mut self,
        producer: ProducerFields,
        count: u32,
    ) -> Result<Option<AppendInfo>> {
        match self.producers.check(
            producer.producer_id,
            producer.producer_epoch,
            producer.base_sequence,
            count,
        ) {
            ProducerCheck::Append => Ok(None),
            ProducerCheck::Duplicate(b) => {
                debug!(
                    "{}: duplicate batch of producer {} (sequence {}..={}) acknowledged with its offsets {}..={}",
                    self.label, producer.producer_id, b.first_seq, b.last_seq, b.base_offset, b.last_offset
                );
                Ok(Some(AppendInfo {
                    base_offset: b.base_offset,
                    last_offset: b.last_offset,
                    timestamp: b.timestamp,
                    log_append_time: match self.config.message_timestamp_type {
                        TimestampType::LogAppendTime => Some(b.timestamp),
                        TimestampType::CreateTime => None,
                    },
                }))
            }
            ProducerCheck::StaleEpoch { current } => Err(BrokerError::InvalidProducerEpoch {
                topic: self.topic.clone(),
                partition: self.partition,
                producer_id: producer.producer_id,
                epoch: producer.producer_epoch,
                current_epoch: current,
            }),
            ProducerCheck::OutOfOrder { expected } => Err(BrokerError::OutOfOrderSequence {
                topic: self.topic.clone(),
                partition: self.partition,
                producer_id: producer.producer_id,
                expected,
                received: producer.base_sequence,
            }),
        }
    }

    /// Appends a transaction marker (a control batch of one control record: commit or abort)
    /// for `producer_id` and closes its open transaction in this partition. A marker for a
    /// producer without an open transaction here is written all the same (harmless, as in
    /// Kafka: recovery may write a marker twice); one with an older epoch than the
    /// partition's is refused.
    pub(crate) fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<AppendInfo> {
        if let Some(current) = self.producers.epoch(producer_id) {
            if producer_epoch < current {
                return Err(BrokerError::InvalidProducerEpoch {
                    topic: self.topic.clone(),
                    partition: self.partition,
                    producer_id,
                    epoch: producer_epoch,
                    current_epoch: current,
                });
            }
        }
        let record = NewRecord {
            timestamp: self.time.now_ms(),
            key: Some(control_key(commit)),
            value: Some(control_value(coordinator_epoch)),
            headers: Vec::new(),
        };
        // Control batches carry no sequence: they are never deduplicated.
        let fields = ProducerFields {
            producer_id,
            producer_epoch,
            base_sequence: -1,
            transactional: true,
            control: true,
        };
        // A compacted topic's null-key check does not apply: the marker has a key.
        self.append(std::slice::from_ref(&record), fields)
    }

    /// The last stable offset: the first offset of the earliest open transaction, else the
    /// log end offset. `read_committed` fetches stop here.
    pub(crate) fn last_stable_offset(&self) -> u64 {
        self.producers
            .first_unstable_offset()
            .unwrap_or_else(|| self.log_end_offset())
    }

    /// Producers with a transaction open in this partition, with their epochs.
    pub(crate) fn open_transactions(&self) -> Vec<(i64, i16)> {
        self.producers.open_transactions()
    }

    /// `(producer id, first offset)` of the aborted transactions overlapping `from..to`.
    pub(crate) fn aborted_transactions(&self, from: u64, to: u64) -> Vec<(i64, u64)> {
        self.producers.aborted_overlapping(from, to)
    }

    /// The producers with state in this partition.
    pub(crate) fn active_producers(&self) -> Vec<ActiveProducer> {
        self.producers.active()
    }

    /// The largest producer id of any batch in the log.
    pub(crate) fn max_producer_id(&self) -> Option<i64> {
        self.producers.max_producer_id()
    }

    fn segment_mut(&mut self, base: u64) -> Option<&mut Segment> {
        if self.active.base_offset() == base {
            Some(&mut self.active)
        } else {
            self.sealed.get_mut(&base)
        }
    }

    /// Rebuilds the index files of segments in which a read found an index entry pointing
    /// at the wrong batch.
    pub(crate) fn repair_index_misses(&mut self) {
        if !self.index_missed.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        self.index_missed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let bases =
            std::mem::take(&mut *self.index_misses.lock().unwrap_or_else(|p| p.into_inner()));
        let interval = self.config.index_interval_bytes;
        let label = self.label.clone();
        let (gaps, checkpoint) = (self.gaps.clone(), self.cleaner_checkpoint);
        let allowed = |from: u64, to: u64| gap_allowed(gaps.as_ref(), checkpoint, from, to);
        for base in bases {
            if let Some(segment) = self.sealed.get_mut(&base) {
                match segment.rebuild_indexes(&label, interval, &allowed) {
                    Ok(()) => {
                        warn!(file = %segment.path().display(), "{label}: rebuilt the indexes of {}", segment.path().display())
                    }
                    Err(e) => {
                        warn!(file = %segment.path().display(), "{label}: cannot rebuild the indexes of {}: {e}", segment.path().display())
                    }
                }
            }
        }
        if let Err(e) = sync_dir(&self.dir) {
            warn!(dir = %self.dir.display(), "{}: cannot sync the partition dir: {e}", self.label);
        }
    }

    /// Rebuilds the producer state by scanning every batch header of every segment, oldest
    /// first, up to the damage if there is any; control batches are decoded to tell commits
    /// from aborts. A batch header that does not parse takes the partition offline there.
    fn rebuild_producer_state(&mut self) -> Result<()> {
        let mut states = ProducerStates::default();
        let mut found: Option<(PathBuf, u64, u64, String)> = None;
        'segments: for segment in self.segments() {
            let end = match &self.damage {
                Some(d) if d.file == segment.path() => d.position,
                Some(d) if segment.base_offset() >= d.offset => break,
                _ => segment.size(),
            };
            let mut scanner = segment.scanner_until(0, end);
            let mut next_offset = segment.base_offset();
            loop {
                let scanned = scanner
                    .next(false)
                    .map_err(|e| BrokerError::io(segment.path(), e))?;
                match scanned {
                    Scanned::End => break,
                    Scanned::Invalid { position, error } => {
                        found = Some((
                            segment.path().to_path_buf(),
                            next_offset,
                            position,
                            format!("corrupt batch at byte {position}: {error}"),
                        ));
                        break 'segments;
                    }
                    Scanned::Batch {
                        position,
                        header,
                        bytes,
                    } => {
                        next_offset = header.next_offset();
                        if header.producer_id < 0 {
                            continue;
                        }
                        if header.is_control() {
                            let batch = match batch::decode_batch(&bytes) {
                                Ok((batch, _)) => batch,
                                Err(e) => {
                                    found = Some((
                                        segment.path().to_path_buf(),
                                        header.base_offset,
                                        position,
                                        format!("corrupt control batch at byte {position}: {e}"),
                                    ));
                                    break 'segments;
                                }
                            };
                            let commit = batch
                                .records
                                .first()
                                .and_then(|r| r.key.as_deref())
                                .and_then(control_is_commit);
                            match commit {
                                Some(commit) => states.on_marker(
                                    header.producer_id,
                                    header.producer_epoch,
                                    commit,
                                    header.base_offset,
                                ),
                                None => warn!(
                                    "{}: skipping a control batch of an unknown kind at offset {}",
                                    self.label, header.base_offset
                                ),
                            }
                        } else {
                            states.on_batch(
                                header.producer_id,
                                header.producer_epoch,
                                header.base_sequence,
                                header.record_count.max(0) as u32,
                                header.is_transactional(),
                                header.base_offset,
                                header.last_offset(),
                                header.max_timestamp,
                            );
                        }
                    }
                }
            }
        }
        self.producers = states;
        if let Some((file, offset, position, reason)) = found {
            self.set_damage(Damage {
                file,
                offset,
                position,
                reason,
            });
        }
        Ok(())
    }

    fn append_encoded(
        &mut self,
        buf: &mut Vec<u8>,
        records: &[RecordRef<'_>],
        base_offset: u64,
        producer: ProducerFields,
        now: i64,
        compression: Compression,
    ) -> Result<AppendInfo> {
        let log_append_time = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => Some(now),
            TimestampType::CreateTime => None,
        };
        let info = batch::encode_refs(
            buf,
            records,
            base_offset,
            producer,
            log_append_time,
            compression,
        )
        .map_err(|e| self.invalid_record(e.to_string()))?;
        let header = BatchHeader::parse(buf).map_err(|e| self.invalid_record(e.to_string()))?;
        self.write_batch(buf, &header, now)?;
        Ok(AppendInfo {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            timestamp: info.max_timestamp,
            log_append_time,
        })
    }

    /// Writes one encoded batch (offsets assigned from the log end) to the active segment,
    /// rolling it first when due: the step every append ends with.
    fn write_batch(&mut self, buf: &[u8], header: &BatchHeader, now: i64) -> Result<()> {
        let size = buf.len() as u64;
        if size > self.config.max_message_bytes {
            return Err(BrokerError::RecordTooLarge {
                topic: self.topic.clone(),
                size,
                max: self.config.max_message_bytes,
            });
        }
        if self.should_roll(size, header.last_offset(), now) {
            self.roll()?;
        }
        if let Err(e) = self
            .active
            .append(buf, header, self.config.index_interval_bytes)
        {
            // What reached the file is unknown: refuse further writes until a reopen
            // recovers the segment.
            self.poisoned = true;
            error!(file = %self.active.path().display(), "{}: write failed, refusing further writes: {e}", self.label);
            return Err(BrokerError::io(self.active.path(), e));
        }
        self.active.first_append_ms.get_or_insert(now);
        self.unsynced = true;
        if self.flush_policy == FlushPolicy::EveryAppend {
            self.sync_active()?;
        }
        Ok(())
    }

    fn should_roll(&self, batch_size: u64, last_offset: u64, now: i64) -> bool {
        let active = &self.active;
        if active.is_empty() {
            return false;
        }
        let too_big = active.size() + batch_size > self.config.segment_bytes
            // Positions in the index are 32-bit.
            || active.size() > u64::from(u32::MAX)
            // So are offsets relative to the base offset.
            || last_offset - active.base_offset() > u64::from(u32::MAX);
        let too_old = active
            .first_append_ms
            .is_some_and(|first| now.saturating_sub(first) > self.config.segment_ms);
        too_big || too_old
    }

    /// Seals the active segment (final time index entry, index files, fsync) and starts a new
    /// one at the log end offset.
    fn roll(&mut self) -> Result<()> {
        self.sync_active()?;
        self.active.seal();
        if let Err(e) = self.active.write_indexes() {
            // The segment itself is durable; its index files are hints that the next open
            // checks and rebuilds when they are missing or wrong.
            warn!(file = %self.active.path().display(), "{}: cannot write the index files of {}: {e}", self.label, self.active.path().display());
        }
        let next = Segment::create(&self.dir, self.log_end_offset(), &self.files)
            .map_err(|e| BrokerError::io(&self.dir, e))?;
        if let Err(e) = sync_dir(&self.dir) {
            return Err(self.poison(self.dir.clone(), e));
        }
        let old = std::mem::replace(&mut self.active, next);
        debug!(
            "{}: rolled segment {} ({} bytes), new segment at offset {}",
            self.label,
            old.path().display(),
            old.size(),
            self.active.base_offset()
        );
        self.sealed.insert(old.base_offset(), old);
        Ok(())
    }

    /// Fsyncs the active segment; a failure poisons the log.
    fn sync_active(&mut self) -> Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            let path = self.active.path().to_path_buf();
            return Err(self.poison(path, std::io::Error::other("injected fsync failure")));
        }
        match self.active.sync_data() {
            Ok(()) => {
                self.unsynced = false;
                Ok(())
            }
            Err(e) => Err(self.poison(self.active.path().to_path_buf(), e)),
        }
    }

    fn poison(&mut self, path: PathBuf, e: std::io::Error) -> BrokerError {
        self.poisoned = true;
        error!(file = %path.display(), "{}: fsync failed, refusing further writes: {e}", self.label);
        BrokerError::io(path, e)
    }

    fn poisoned_error(&self) -> BrokerError {
        BrokerError::LogPoisoned {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    fn invalid_record(&self, reason: String) -> BrokerError {
        BrokerError::InvalidRecord {
            topic: self.topic.clone(),
            reason,
        }
    }

    fn corrupt(&self, segment: &Segment, offset: u64, reason: String) -> BrokerError {
        BrokerError::CorruptBatch {
            topic: self.topic.clone(),
            partition: self.partition,
            offset,
            file: segment.path().to_path_buf(),
            reason,
        }
    }

    /// All segments, oldest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.sealed.values().chain(std::iter::once(&self.active))
    }

    /// The first offset still in the log: the first segment's base offset, or the start
    /// that DeleteRecords set inside it.
    pub(crate) fn log_start_offset(&self) -> u64 {
        self.first_segment_base().max(self.log_start)
    }

    /// The base offset of the first segment.
    fn first_segment_base(&self) -> u64 {
        self.sealed
            .keys()
            .next()
            .copied()
            .unwrap_or_else(|| self.active.base_offset())
    }

    /// The offset the next appended record gets.
    pub(crate) fn log_end_offset(&self) -> u64 {
        self.active.next_offset()
    }

    /// Bytes of all segments.
    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }

    /// Number of segments, the active one included.
    pub(crate) fn segment_count(&self) -> usize {
        self.sealed.len() + 1
    }

    /// The earliest offset whose record timestamp is at least `timestamp`, with that
    /// timestamp (Kafka's ListOffsets by timestamp); `None` if every record is older.
    /// Control batches are skipped.
    /// The offset and timestamp of the first record with the largest timestamp in the log
    /// (Kafka's `MAX_TIMESTAMP` lookup); `None` for an empty log.
    pub(crate) fn offset_of_max_timestamp(&self) -> Result<Option<(u64, i64)>> {
        let max = self.segments().filter_map(Segment::max_timestamp).max();
        match max {
            Some(max) => self.offset_for_timestamp(max),
            None => Ok(None),
        }
    }

    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        let start = self.log_start_offset();
        for segment in self.segments() {
            // Every record of a segment whose max timestamp is below the target is older.
            if segment.max_timestamp().is_none_or(|max| max < timestamp)
                || segment.next_offset() <= start
            {
                continue;
            }
            if self
                .damage
                .as_ref()
                .is_some_and(|d| segment.base_offset() >= d.offset)
            {
                break;
            }
            let end = match &self.damage {
                Some(d) if d.file == segment.path() => d.position,
                _ => segment.size(),
            };
            let hint = segment.position_for_timestamp(timestamp);
            let mut scanner = segment.scanner_until(hint, end);
            let mut first = hint > 0;
            loop {
                let scanned = scanner
                    .next(false)
                    .map_err(|e| BrokerError::io(segment.path(), e))?;
                if std::mem::take(&mut first) && matches!(scanned, Scanned::Invalid { .. }) {
                    // The time index is a hint: it pointed at no batch, so scan it all.
                    warn!(file = %segment.path().display(), "{}: the time index of {} points at no batch; scanning the segment", self.label, segment.path().display());
                    scanner = segment.scanner_until(0, end);
                    continue;
                }
                match scanned {
                    Scanned::End => break,
                    Scanned::Invalid { position, error } => {
                        return Err(self.corrupt(
                            segment,
                            segment.base_offset(),
                            format!("at byte {position}: {error}"),
                        ))
                    }
                    Scanned::Batch {
                        position,
                        header,
                        bytes,
                    } => {
                        if header.max_timestamp < timestamp || header.is_control() {
                            continue;
                        }
                        let (batch, _) = batch::decode_batch(&bytes).map_err(|e| {
                            self.corrupt(
                                segment,
                                header.base_offset,
                                format!("at byte {position}: {e}"),
                            )
                        })?;
                        if let Some(r) = batch
                            .records
                            .iter()
                            .find(|r| r.timestamp >= timestamp && r.offset >= start)
                        {
                            return Ok(Some((r.offset, r.timestamp)));
                        }
                    }
                }
            }
        }
        Ok(None)
    }

    /// Fsyncs the active segment. The active segment's indexes live in memory (it is always
    /// scanned on open), so they are written on roll and close rather than here.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        if !self.unsynced {
            // Nothing written since the last fsync (a roll fsyncs the segment it seals).
            return Ok(());
        }
        self.sync_active()
    }

    /// A commit point (a producer flush, a transaction or offset commit): flushes unless the
    /// flush policy is [`FlushPolicy::OnClose`].
    pub(crate) fn commit_point(&mut self) -> Result<()> {
        match self.flush_policy {
            FlushPolicy::OnClose => Ok(()),
            FlushPolicy::EveryAppend | FlushPolicy::CommitPoints => self.flush(),
        }
    }

    /// With a `cleanup.policy` that includes `delete`: deletes whole sealed segments, oldest
    /// first, while `retention.bytes` is exceeded without them (Kafka's rule: total size minus
    /// the segment's size is still at least the limit) or their largest timestamp is older
    /// than `retention.ms`. The active segment is never deleted. The log start offset moves
    /// to the new first segment's base offset. Returns how many segments went.
    pub(crate) fn enforce_retention(&mut self) -> Result<usize> {
        if !self.config.cleanup_policy.delete || self.damage.is_some() || self.read_only {
            // An offline log keeps every byte for the operator to inspect or repair.
            return Ok(0);
        }
        let now = self.time.now_ms();
        // Which segments go, oldest first, and why.
        let mut remaining = self.size_bytes();
        let mut doomed: Vec<(u64, bool)> = Vec::new();
        for segment in self.sealed.values() {
            let by_size = self
                .config
                .retention_bytes
                .is_some_and(|limit| remaining - segment.size() >= limit);
            let by_time = self.config.retention_ms.is_some_and(|ms| {
                segment
                    .max_timestamp()
                    .is_none_or(|max| max < now.saturating_sub(ms))
            });
            if !by_size && !by_time {
                break;
            }
            remaining -= segment.size();
            doomed.push((segment.base_offset(), by_time));
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        // The log start moves past them: recorded first, durably, so that no open takes
        // their absence for a deleted segment.
        let new_start = self
            .sealed
            .values()
            .nth(doomed.len())
            .map_or(self.active.base_offset(), Segment::base_offset)
            .max(self.log_start);
        let end = self
            .recorded_bounds
            .map_or(0, |(_, e)| e)
            .max(self.log_end_offset());
        bounds::write(&self.dir, new_start, end, true)
            .map_err(|e| BrokerError::io(self.dir.join(bounds::BOUNDS_FILE), e))?;
        self.recorded_bounds = Some((new_start, end));
        let mut deleted = 0;
        for (base, by_time) in doomed {
            let Some(segment) = self.sealed.remove(&base) else {
                continue;
            };
            segment
                .remove_files()
                .map_err(|e| BrokerError::io(segment.path(), e))?;
            deleted += 1;
            debug!(
                "{}: retention deleted segment {} ({} bytes, by {})",
                self.label,
                segment.path().display(),
                segment.size(),
                if by_time { "time" } else { "size" }
            );
        }
        if deleted > 0 {
            sync_dir(&self.dir).map_err(|e| BrokerError::io(&self.dir, e))?;
            let start = self.log_start_offset();
            self.producers.prune_aborted_below(start);
            if let Some(gaps) = &mut self.gaps {
                gaps.prune_below(start);
            }
        }
        Ok(deleted)
    }

    /// Log compaction, when `cleanup.policy` includes `compact`; see the `cleaner` module.
    /// Unless `force`, it runs only when the dirty ratio reaches
    /// `min.cleanable.dirty.ratio`.
    pub(crate) fn clean(&mut self, force: bool) -> Result<CleanStats> {
        self.clean_segments(force)
    }

    /// Replaces the topic config; it applies from the next append, roll, retention or
    /// cleaning on.
    pub(crate) fn set_config(&mut self, config: TopicConfig) {
        self.config = config;
    }

    /// The topic config.
    pub(crate) fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// Flushes the active segment and writes the index files that are behind memory.
    pub(crate) fn close(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.flush()?;
        let mut wrote = false;
        // The active segment is scanned on every open, so its index files would never be
        // read: only sealed segments' are written.
        for segment in self.sealed.values_mut() {
            if segment.indexes_dirty() {
                // Index files are hints that the next open checks and rebuilds: one that
                // cannot be written costs a scan then, not the close.
                if let Err(e) = segment.write_indexes() {
                    warn!(file = %segment.path().display(), "{}: cannot write the index files of {}: {e}", self.label, segment.path().display());
                }
                wrote = true;
            }
        }
        if wrote {
            sync_dir(&self.dir).map_err(|e| BrokerError::io(&self.dir, e))?;
        }
        self.record_bounds();
        Ok(())
    }
}

/// Whether `name` is a temporary file this module writes (an index file or the cleaner
/// checkpoint before its rename); other files in the directory are left alone.
fn is_own_temp_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".tmp") else {
        return false;
    };
    stem == cleaner::CHECKPOINT_FILE
        || stem == gaps::GAPS_FILE
        || stem == bounds::BOUNDS_FILE
        || matches!(
            parse_file_name(stem),
            Some((_, segment::INDEX_SUFFIX | segment::TIME_INDEX_SUFFIX))
        )
}
