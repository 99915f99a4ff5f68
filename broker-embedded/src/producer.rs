//! The producer: Kafka's default partitioner, single and batch sends, idempotence and
//! transactions.
//!
//! # Idempotence
//!
//! With `enable.idempotence` (the default) the broker gives the producer a producer id, and
//! the producer numbers the records it sends to each partition. Every batch carries the
//! producer id, epoch and the sequence of its first record; a partition writes a batch it
//! has already written (the same sequences, one of the producer's last 5 batches) only once
//! and acknowledges it with the original offsets, and refuses a batch that skips sequence
//! numbers with [`BrokerError::OutOfOrderSequence`].
//!
//! # Transactions
//!
//! A producer with a `transactional.id` writes in transactions, as Kafka's:
//!
//! ```
//! # use broker_embedded::{Broker, NewTopic, Producer, ProducerConfig, ProducerRecord};
//! # async fn demo() -> broker_embedded::Result<()> {
//! let broker = Broker::in_memory().await?;
//! broker.create_topic(NewTopic::new("out", 3)).await?;
//! let producer = Producer::with_config(
//!     &broker,
//!     ProducerConfig {
//!         transactional_id: Some("app-0".to_owned()),
//!         ..ProducerConfig::default()
//!     },
//! );
//! producer.init_transactions().await?; // fences an older producer with the same id
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("out", "a").key("k")).await?;
//! producer.commit_transaction().await?; // visible to read_committed consumers at once
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(demo()).unwrap();
//! ```
//!
//! Records sent in a transaction are in the log at once, but a `read_committed` consumer
//! ([`IsolationLevel::ReadCommitted`](crate::IsolationLevel::ReadCommitted)) sees them only
//! after the commit, and never after an abort. Offsets given to
//! [`Producer::send_offsets_to_transaction`] become the group's committed offsets at the
//! commit. A second producer calling `init_transactions` with the same id fences the first
//! (its calls fail with [`BrokerError::ProducerFenced`]) and aborts its open transaction; so
//! does the broker for a transaction open longer than `transaction.timeout.ms`, and for
//! every transaction left open when the broker reopens.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::broker::Broker;
use crate::compression::Compression;
use crate::error::{BrokerError, Result};
use crate::group::{
    offsets_partition_for, ConsumerGroupMetadata, OffsetAndMetadata, CONSUMER_OFFSETS_TOPIC,
};
use crate::log::AppendInfo;
use crate::partitioner::partition_for_key;
use crate::record::{Header, ProducerFields, RecordRef};
use crate::TopicPartition;

/// A record to send (Kafka's `ProducerRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Target topic (shared: a batch to one topic need not copy its name
    /// per record).
    pub topic: Arc<str>,
    /// Target partition; `None` lets the partitioner choose (murmur2 of the key, or sticky for
    /// a null key).
    pub partition: Option<u32>,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value (a tombstone on a compacted topic).
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Event timestamp in epoch ms; `None` takes the producer's clock.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets a null value (a tombstone).
    pub fn tombstone(mut self) -> Self {
        self.value = None;
        self
    }

    /// Pins the partition.
    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// The record borrowed for [`Producer::send_refs`], stamped with `now` if it has no
    /// timestamp.
    pub fn as_outgoing(&self, now: i64) -> OutgoingRef<'_> {
        OutgoingRef {
            topic: &self.topic,
            partition: self.partition,
            record: RecordRef {
                timestamp: self.timestamp.unwrap_or(now),
                key: self.key.as_deref(),
                value: self.value.as_deref(),
                headers: &self.headers,
            },
        }
    }
}

/// Where a record was written (Kafka's `RecordMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic (shared, not copied per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
    /// The stored timestamp (the broker's append time under `LogAppendTime`).
    pub timestamp: i64,
}

/// A record to send, borrowed from the caller's buffers (see [`Producer::send_refs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutgoingRef<'a> {
    /// Target topic.
    pub topic: &'a str,
    /// Target partition; `None` lets the partitioner choose, as for a [`ProducerRecord`].
    pub partition: Option<u32>,
    /// The record, with the timestamp to store.
    pub record: RecordRef<'a>,
}

/// Where one batch of a [`Producer::send_refs`] call was written: the records sent to one
/// partition, in the order given, hold the offsets `base_offset..=last_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: u32,
    /// The offset of the batch's first record.
    pub base_offset: u64,
    /// The offset of the batch's last record.
    pub last_offset: u64,
    /// The broker's append time, which every record of the batch then has as its stored
    /// timestamp, under `LogAppendTime`; `None` under `CreateTime`.
    pub log_append_time: Option<i64>,
}

/// Producer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// `batch.size`, default 16384: after this many bytes the sticky partition for null keys
    /// moves on (Kafka's uniform sticky partitioner).
    pub batch_size: usize,
    /// `enable.idempotence`, default true: the producer gets a producer id from the broker
    /// and numbers its batches per partition, so that a batch sent twice is written once.
    /// A producer with a `transactional.id` is always idempotent.
    pub enable_idempotence: bool,
    /// `transactional.id`, default none: enables transactions
    /// ([`Producer::init_transactions`] and the rest). One live producer per id: a new one
    /// fences the previous one.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`, default 60000: the broker aborts a transaction open longer
    /// than this, and fences its producer.
    pub transaction_timeout_ms: u64,
    /// `compression.type`, default `none`: the codec of the batches this producer writes
    /// (`none`, `gzip`, `snappy`, `lz4` or `zstd`; parse one with `str::parse`). A topic whose
    /// own `compression.type` is a codec stores its batches with that one instead.
    pub compression_type: Compression,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            batch_size: 16_384,
            enable_idempotence: true,
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            compression_type: Compression::None,
        }
    }
}

/// The producer's identity and transaction progress.
#[derive(Debug, Default)]
struct IdState {
    /// -1 without idempotence, or before `init_transactions`.
    producer_id: i64,
    epoch: i16,
    /// The next sequence per partition, by topic and then partition number.
    sequences: HashMap<Arc<str>, Vec<i32>>,
    in_transaction: bool,
    /// Partitions already added to the open transaction.
    txn_partitions: HashSet<TopicPartition>,
    /// Set once the producer is fenced: every later call fails.
    fenced: Option<String>,
}

fn next_sequence(seq: i32, count: usize) -> i32 {
    ((i64::from(seq) + count as i64) % (i64::from(i32::MAX) + 1)) as i32
}

/// How many of `records` fit in one batch under `max_bytes` (at least one: a record too
/// large on its own is refused by the log with a clear error). Counts 61 bytes of batch
/// header and about 20 bytes of framing per record.
fn batch_len(records: &[RecordRef<'_>], max_bytes: usize) -> usize {
    let mut size = 61;
    for (n, r) in records.iter().enumerate() {
        let s = 20 + record_size(r);
        if n > 0 && size + s > max_bytes {
            return n;
        }
        size += s;
    }
    records.len()
}

/// The bytes of a record's key, value and headers.
fn record_size(r: &RecordRef<'_>) -> usize {
    r.key.map_or(0, <[u8]>::len)
        + r.value.map_or(0, <[u8]>::len)
        + r.headers
            .iter()
            .map(|h| 10 + h.key.len() + h.value.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
}

#[derive(Debug, Default)]
struct Sticky {
    partition: u32,
    bytes: usize,
}

/// A producer on an embedded broker. Cheap to create; `Send + Sync`.
#[derive(Debug)]
pub struct Producer {
    broker: Broker,
    config: ProducerConfig,
    sticky: Mutex<HashMap<String, Sticky>>,
    /// Held across sequence assignment and the (synchronous) append, never across `.await`.
    id: Mutex<IdState>,
}

impl Producer {
    /// A producer with default settings.
    pub fn new(broker: &Broker) -> Self {
        Self::with_config(broker, ProducerConfig::default())
    }

    /// A producer with settings.
    pub fn with_config(broker: &Broker, config: ProducerConfig) -> Self {
        let producer_id = if config.enable_idempotence && config.transactional_id.is_none() {
            broker.inner.transactions.allocate_producer_id()
        } else {
            -1
        };
        Producer {
            broker: broker.clone(),
            config,
            sticky: Mutex::new(HashMap::new()),
            id: Mutex::new(IdState {
                producer_id,
                ..IdState::default()
            }),
        }
    }

    fn id_state(&self) -> std::sync::MutexGuard<'_, IdState> {
        // Every update is a plain field write; a panic cannot leave it half-done.
        self.id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The producer id and epoch the broker gave this producer: `(-1, 0)` without
    /// idempotence, or before [`Producer::init_transactions`].
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        let st = self.id_state();
        (st.producer_id, st.epoch)
    }

    fn txn_id(&self) -> &str {
        self.config.transactional_id.as_deref().unwrap_or("")
    }

    fn invalid_state(&self, reason: &str) -> BrokerError {
        BrokerError::InvalidTxnState {
            transactional_id: self.txn_id().to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// Checks that a transactional call may go ahead: initialized, not fenced, and (with
    /// `in_txn`) inside a transaction.
    fn check_txn(&self, st: &IdState, in_txn: bool) -> Result<()> {
        if self.config.transactional_id.is_none() {
            return Err(self.invalid_state("the producer has no transactional.id"));
        }
        if let Some(reason) = &st.fenced {
            return Err(BrokerError::ProducerFenced {
                transactional_id: self.txn_id().to_owned(),
                producer_id: st.producer_id,
                epoch: st.epoch,
                reason: reason.clone(),
            });
        }
        if st.producer_id < 0 {
            return Err(self.invalid_state("call init_transactions first"));
        }
        if in_txn && !st.in_transaction {
            return Err(self.invalid_state("no transaction is open; call begin_transaction first"));
        }
        Ok(())
    }

    /// Remembers a fenced error so that every later call fails the same way; turns a stale
    /// epoch seen by a partition into [`BrokerError::ProducerFenced`].
    fn note_error(&self, st: &mut IdState, e: BrokerError) -> BrokerError {
        let e = match e {
            BrokerError::InvalidProducerEpoch {
                topic,
                partition,
                current_epoch,
                ..
            } if self.config.transactional_id.is_some() => BrokerError::ProducerFenced {
                transactional_id: self.txn_id().to_owned(),
                producer_id: st.producer_id,
                epoch: st.epoch,
                reason: format!(
                    "partition {topic}-{partition} has seen epoch {current_epoch} of this \
                     producer id"
                ),
            },
            e => e,
        };
        if let BrokerError::ProducerFenced { reason, .. } = &e {
            st.fenced = Some(reason.clone());
        }
        e
    }

    /// Kafka's `initTransactions`: registers the `transactional.id` with the broker, which
    /// bumps its epoch (fencing any earlier producer with the same id) and aborts the
    /// transaction such a producer left open. Call once before the first transaction.
    pub async fn init_transactions(&self) -> Result<()> {
        let Some(id) = self.config.transactional_id.as_deref() else {
            return Err(self.invalid_state("the producer has no transactional.id"));
        };
        let timeout = i32::try_from(self.config.transaction_timeout_ms).unwrap_or(i32::MAX);
        let mut st = self.id_state();
        let (pid, epoch) =
            self.broker
                .inner
                .transactions
                .init_producer_id(&self.broker, id, timeout)?;
        st.producer_id = pid;
        st.epoch = epoch;
        st.sequences.clear();
        st.in_transaction = false;
        st.txn_partitions.clear();
        st.fenced = None;
        Ok(())
    }

    /// Kafka's `beginTransaction`: the sends that follow, and
    /// [`Producer::send_offsets_to_transaction`], belong to one transaction until
    /// [`Producer::commit_transaction`] or [`Producer::abort_transaction`].
    pub fn begin_transaction(&self) -> Result<()> {
        let mut st = self.id_state();
        self.check_txn(&st, false)?;
        if st.in_transaction {
            return Err(self.invalid_state("a transaction is already open"));
        }
        st.in_transaction = true;
        st.txn_partitions.clear();
        Ok(())
    }

    /// Adds a partition to the open transaction unless it is in it already.
    fn add_partition(&self, st: &mut IdState, tp: TopicPartition) -> Result<()> {
        if st.txn_partitions.contains(&tp) {
            return Ok(());
        }
        let added = self.broker.inner.transactions.add_partitions(
            &self.broker,
            self.txn_id(),
            st.producer_id,
            st.epoch,
            std::slice::from_ref(&tp),
        );
        if let Err(e) = added {
            return Err(self.note_error(st, e));
        }
        st.txn_partitions.insert(tp);
        Ok(())
    }

    /// Kafka's `sendOffsetsToTransaction`: commits consumer offsets as part of the open
    /// transaction. They are written to `__consumer_offsets` now, checked against the
    /// group's generation (a consumer that is no longer a member gets
    /// [`BrokerError::CommitFailed`]), and become the group's committed offsets only when
    /// the transaction commits; an abort drops them.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group_metadata: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let mut st = self.id_state();
        self.check_txn(&st, true)?;
        if offsets.is_empty() {
            return Ok(());
        }
        let partitions = self.broker.topic(CONSUMER_OFFSETS_TOPIC)?.partitions.len() as u32;
        let tp = TopicPartition::new(
            CONSUMER_OFFSETS_TOPIC,
            offsets_partition_for(&group_metadata.group_id, partitions),
        );
        self.add_partition(&mut st, tp)?;
        let mut list: Vec<(TopicPartition, OffsetAndMetadata)> = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), o.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let result = self.broker.inner.groups.txn_commit(
            &self.broker,
            group_metadata,
            st.producer_id,
            st.epoch,
            &list,
        );
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.note_error(&mut st, e)),
        }
    }

    /// Kafka's `commitTransaction`: makes every record sent and every offset committed in
    /// the transaction visible to `read_committed` consumers, at once. When this returns the
    /// commit is durable (per `log.flush.policy`). A fenced producer gets
    /// [`BrokerError::ProducerFenced`] and its transaction is not committed.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true)
    }

    /// Kafka's `abortTransaction`: discards the transaction's records and offsets;
    /// `read_committed` consumers never see them.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false)
    }

    fn end_transaction(&self, commit: bool) -> Result<()> {
        let mut st = self.id_state();
        self.check_txn(&st, true)?;
        let result = self.broker.inner.transactions.end_txn(
            &self.broker,
            self.txn_id(),
            st.producer_id,
            st.epoch,
            commit,
        );
        match result {
            Ok(()) => {
                st.in_transaction = false;
                st.txn_partitions.clear();
                Ok(())
            }
            Err(e) => Err(self.note_error(&mut st, e)),
        }
    }

    /// Appends one batch with this producer's id, epoch and next sequence (inside the open
    /// transaction for a transactional producer).
    fn append_chunk(
        &self,
        topic: &str,
        partition: u32,
        chunk: &[RecordRef<'_>],
    ) -> Result<AppendInfo> {
        let transactional = self.config.transactional_id.is_some();
        let mut st = self.id_state();
        if transactional {
            self.check_txn(&st, true)?;
            self.add_partition(&mut st, TopicPartition::new(topic, partition))?;
        } else if st.producer_id < 0 {
            drop(st);
            return self.broker.append_sync(
                topic,
                partition,
                chunk,
                ProducerFields::NONE,
                self.config.compression_type,
            );
        }
        let seq = st
            .sequences
            .get(topic)
            .and_then(|seqs| seqs.get(partition as usize))
            .copied()
            .unwrap_or(0);
        let fields = ProducerFields {
            producer_id: st.producer_id,
            producer_epoch: st.epoch,
            base_sequence: seq,
            transactional,
            control: false,
        };
        match self.broker.append_sync(
            topic,
            partition,
            chunk,
            fields,
            self.config.compression_type,
        ) {
            Ok(info) => {
                let seqs = match st.sequences.get_mut(topic) {
                    Some(seqs) => seqs,
                    None => st.sequences.entry(Arc::from(topic)).or_default(),
                };
                let p = partition as usize;
                if seqs.len() <= p {
                    seqs.resize(p + 1, 0);
                }
                seqs[p] = next_sequence(seq, chunk.len());
                Ok(info)
            }
            Err(e) => Err(self.note_error(&mut st, e)),
        }
    }

    /// The broker this producer writes to.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Chooses the partition of a record: its own, murmur2 of its key, or the sticky one.
    fn choose_partition(&self, record: &OutgoingRef<'_>, partitions: u32) -> Result<u32> {
        if let Some(p) = record.partition {
            if p >= partitions {
                return Err(BrokerError::UnknownPartition {
                    topic: record.topic.to_owned(),
                    partition: p,
                    partitions,
                });
            }
            return Ok(p);
        }
        if let Some(key) = record.record.key {
            return Ok(partition_for_key(key, partitions));
        }
        let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
        let state = sticky
            .entry(record.topic.to_owned())
            .or_insert_with(|| Sticky {
                partition: (self.broker.config().time.now_ms() as u64 % partitions as u64) as u32,
                bytes: 0,
            });
        if state.bytes >= self.config.batch_size {
            state.partition = (state.partition + 1) % partitions;
            state.bytes = 0;
        }
        state.partition %= partitions;
        state.bytes += record_size(&record.record) + 16;
        Ok(state.partition)
    }

    /// Sends one record and waits for it to be appended.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let mut out = self.send_batch(vec![record]).await?;
        out.pop().ok_or(BrokerError::Closed)
    }

    /// Sends records, grouped into one batch per partition (split where a batch would pass
    /// `max.message.bytes`), and returns their metadata in the order given.
    ///
    /// Records to one partition keep their relative order. On an error, batches already
    /// appended stay appended; the error names what failed. A transactional producer must
    /// be inside a transaction ([`Producer::begin_transaction`]); its batches join it, and
    /// each partition is added to the transaction before its first batch.
    pub async fn send_batch(&self, records: Vec<ProducerRecord>) -> Result<Vec<RecordMetadata>> {
        let now = self.broker.config().time.now_ms();
        let refs: Vec<OutgoingRef<'_>> = records.iter().map(|r| r.as_outgoing(now)).collect();
        let mut out: Vec<Option<RecordMetadata>> = vec![None; records.len()];
        self.append_grouped(&refs, |indexes, appended| {
            for (j, &i) in indexes.iter().enumerate() {
                out[i] = Some(RecordMetadata {
                    topic: records[i].topic.clone(),
                    partition: appended.partition,
                    offset: appended.base_offset + j as u64,
                    timestamp: appended.log_append_time.unwrap_or(refs[i].record.timestamp),
                });
            }
        })
        .await?;
        Ok(out.into_iter().flatten().collect())
    }

    /// [`Producer::send_batch`] for records borrowed from the caller: the same grouping,
    /// batches, partitioner, idempotence and transactions, with no copy or reference count
    /// per key and value. Returns one [`Appended`] per batch written, in the order written
    /// (the records of a partition in the order given); on an error, the batches before it
    /// stay appended.
    pub async fn send_refs<'a>(&self, records: &[OutgoingRef<'a>]) -> Result<Vec<Appended<'a>>> {
        let mut out = Vec::new();
        self.append_grouped(records, |_, appended| out.push(appended))
            .await?;
        Ok(out)
    }

    /// Groups `records` per partition, in first-seen order, and appends each group in
    /// batches under `max.message.bytes`; gives `appended` each batch's indexes into
    /// `records` and where it went.
    async fn append_grouped<'a>(
        &self,
        records: &[OutgoingRef<'a>],
        mut appended: impl FnMut(&[usize], Appended<'a>),
    ) -> Result<()> {
        // A batch usually targets one topic and few partitions, so a linear search beats
        // hashing the topic per record.
        let mut groups: Vec<(&'a str, u32, Vec<usize>)> = Vec::new();
        let mut last_topic: Option<(&str, u32)> = None;
        for (i, record) in records.iter().enumerate() {
            let partitions = match last_topic {
                Some((t, n)) if std::ptr::eq(t, record.topic) || t == record.topic => n,
                _ => {
                    let n = self.broker.partition_count(record.topic).await?;
                    last_topic = Some((record.topic, n));
                    n
                }
            };
            let partition = self.choose_partition(record, partitions)?;
            match groups
                .iter_mut()
                .rev()
                .find(|(t, p, _)| *p == partition && *t == record.topic)
            {
                Some((_, _, indexes)) => indexes.push(i),
                None => groups.push((record.topic, partition, vec![i])),
            }
        }
        let mut batch: Vec<RecordRef<'a>> = Vec::new();
        for (topic, partition, indexes) in groups {
            let max_bytes = {
                let t = self.broker.topic(topic)?;
                let max = t.partitions[partition as usize]
                    .lock()?
                    .config()
                    .max_message_bytes;
                max as usize
            };
            batch.clear();
            batch.extend(indexes.iter().map(|&i| records[i].record));
            let mut start = 0;
            while start < batch.len() {
                let end = start + batch_len(&batch[start..], max_bytes);
                let info = self.append_chunk(topic, partition, &batch[start..end])?;
                appended(
                    &indexes[start..end],
                    Appended {
                        topic,
                        partition,
                        base_offset: info.base_offset,
                        last_offset: info.last_offset,
                        log_append_time: info.log_append_time,
                    },
                );
                start = end;
            }
        }
        Ok(())
    }

    /// A commit point: fsyncs every partition of the given topics (per `log.flush.policy`).
    pub async fn flush(&self, topics: &[&str]) -> Result<()> {
        let mut parts = Vec::new();
        for topic in topics {
            let n = self.broker.partition_count(topic).await?;
            parts.extend((0..n).map(|p| (topic.to_string(), p)));
        }
        self.broker.commit_point(&parts).await
    }
}
