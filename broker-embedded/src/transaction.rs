//! The transaction coordinator: producer ids and epochs, transaction state in the internal
//! compacted topic `__transaction_state`, commit and abort markers, timeouts and recovery.
//!
//! A transaction goes `Empty` → `Ongoing` (first partition added) → `PrepareCommit` or
//! `PrepareAbort` (the decision, made durable) → markers written to every partition →
//! `CompleteCommit` or `CompleteAbort`. Each state change is a record of
//! `__transaction_state` keyed by the `transactional.id` (layout in `docs/format.md`).
//!
//! Commit order, for durability under the default `log.flush.policy`: the transaction's
//! partitions are fsynced (its data is durable), then the `PrepareCommit` record is written
//! and fsynced (the commit point: from here the transaction commits, even across a crash),
//! then the commit markers are written and fsynced, then `CompleteCommit` is written. A
//! transaction of a single partition needs no prepare record: its commit marker, fsynced
//! with its data, is the commit point. An abort fsyncs nothing: recovery aborts whatever of
//! it a crash lost.
//!
//! When the broker opens, the coordinator replays `__transaction_state`: an `Ongoing`
//! transaction (its producer died with it open) is aborted with a bumped epoch; a
//! `PrepareCommit` or `PrepareAbort` one gets its markers written again (a second marker is
//! harmless). Any partition still holding an open transaction after that (its `Ongoing`
//! record was lost) gets an abort marker, so that no last stable offset stays stuck.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tracing::{info, warn};

use crate::broker::{Broker, NewTopic};
use crate::error::{BrokerError, Result};
use crate::group::{offsets_partition_for, CONSUMER_OFFSETS_TOPIC};
use crate::record::{NewRecord, ProducerFields};
use crate::TopicPartition;

/// The internal topic that holds transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Partitions of `__transaction_state` when the broker creates it (Kafka's
/// `transaction.state.log.num.partitions` defaults to 50; an embedded broker uses 4).
pub const TRANSACTION_STATE_PARTITIONS: u32 = 4;

/// Version byte of the key and value layouts of `__transaction_state` records.
const TXN_RECORD_VERSION: u8 = 1;

/// A transaction's state, with Kafka's names and status bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    /// Kafka's name of the state, as ListTransactions and DescribeTransactions report it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            _ => return None,
        })
    }
}

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxnMetadata {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) timeout_ms: i32,
    pub(crate) state: TxnState,
    pub(crate) partitions: BTreeSet<TopicPartition>,
    pub(crate) last_update_ms: i64,
    pub(crate) start_ms: i64,
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), String> {
    let len = u16::try_from(s.len()).map_err(|_| format!("string of {} bytes", s.len()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// A reader over a record's bytes; every read checks the length.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "truncated: need {n} bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, String> {
        let len = self.u16()?;
        let bytes = self.take(usize::from(len))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".to_owned())
    }
}

/// Key: version u8 (1) + transactional id (u16 length + UTF-8).
fn encode_key(transactional_id: &str) -> Result<Bytes, String> {
    let mut out = Vec::with_capacity(3 + transactional_id.len());
    out.push(TXN_RECORD_VERSION);
    put_str(&mut out, transactional_id)?;
    Ok(Bytes::from(out))
}

fn decode_key(buf: &[u8]) -> Result<Option<String>, String> {
    let mut r = Reader { buf };
    if r.u8()? != TXN_RECORD_VERSION {
        return Ok(None);
    }
    let id = r.string()?;
    if !r.buf.is_empty() {
        return Err(format!("{} trailing bytes after the key", r.buf.len()));
    }
    Ok(Some(id))
}

/// Value: version u8 (1), producer id i64, producer epoch i16, transaction timeout ms i32,
/// state u8, partitions (u32 topic count, then per topic: topic as u16 length + UTF-8, u32
/// count, u32 partitions), last update ms i64, start ms i64 (-1 when no transaction is
/// open). Layout drawn in `docs/format.md`.
fn encode_value(m: &TxnMetadata) -> Result<Bytes, String> {
    let mut out = Vec::with_capacity(64);
    out.push(TXN_RECORD_VERSION);
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state.to_byte());
    let mut topics: Vec<(&str, Vec<u32>)> = Vec::new();
    for tp in &m.partitions {
        match topics.last_mut() {
            Some((t, ps)) if *t == tp.topic => ps.push(tp.partition),
            _ => topics.push((&tp.topic, vec![tp.partition])),
        }
    }
    out.extend_from_slice(&(topics.len() as u32).to_be_bytes());
    for (topic, ps) in topics {
        put_str(&mut out, topic)?;
        out.extend_from_slice(&(ps.len() as u32).to_be_bytes());
        for p in ps {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    out.extend_from_slice(&m.last_update_ms.to_be_bytes());
    out.extend_from_slice(&m.start_ms.to_be_bytes());
    Ok(Bytes::from(out))
}

fn decode_value(buf: &[u8]) -> Result<TxnMetadata, String> {
    let mut r = Reader { buf };
    let version = r.u8()?;
    if version != TXN_RECORD_VERSION {
        return Err(format!("unsupported value version {version}"));
    }
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state_byte = r.u8()?;
    let state = TxnState::from_byte(state_byte).ok_or(format!("unknown state {state_byte}"))?;
    let topics = r.u32()?;
    let mut partitions = BTreeSet::new();
    for _ in 0..topics {
        let topic = r.string()?;
        let n = r.u32()?;
        for _ in 0..n {
            let p = r.u32()?;
            partitions.insert(TopicPartition::new(topic.clone(), p));
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    if !r.buf.is_empty() {
        return Err(format!("{} trailing bytes after the value", r.buf.len()));
    }
    Ok(TxnMetadata {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

#[derive(Debug, Default)]
struct State {
    txns: HashMap<String, TxnMetadata>,
    next_producer_id: i64,
    /// Partitions of `__transaction_state` that could not be read on open, with the
    /// reason, and the topic's partition count: their transactional ids are refused.
    offline: (u32, BTreeMap<u32, String>),
}

/// The transaction coordinator of one broker. Every operation runs under one lock and
/// without `.await`: markers and state records are synchronous appends.
#[derive(Debug, Default)]
pub(crate) struct TransactionCoordinator {
    state: Mutex<State>,
}

fn fenced(id: &str, producer_id: i64, epoch: i16, reason: impl Into<String>) -> BrokerError {
    BrokerError::ProducerFenced {
        transactional_id: id.to_owned(),
        producer_id,
        epoch,
        reason: reason.into(),
    }
}

impl TransactionCoordinator {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is applied to the map only after its record is written, so a panic
        // leaves a state that matches the log.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh producer id for an idempotent producer without a transactional id.
    pub(crate) fn allocate_producer_id(&self) -> i64 {
        let mut state = self.lock();
        let id = state.next_producer_id;
        state.next_producer_id += 1;
        id
    }

    /// Kafka's `InitProducerId` for a transactional id: a new producer id with epoch 0, or
    /// the existing id with the epoch bumped, fencing the previous producer. Its open
    /// transaction, if any, is aborted first.
    pub(crate) fn init_producer_id(
        &self,
        broker: &Broker,
        transactional_id: &str,
        timeout_ms: i32,
    ) -> Result<(i64, i16)> {
        broker.check_open()?;
        let now = broker.config().time.now_ms();
        let mut state = self.lock();
        if !state.offline.1.is_empty() {
            let partition = offsets_partition_for(transactional_id, state.offline.0);
            if let Some(reason) = state.offline.1.get(&partition) {
                return Err(BrokerError::TransactionStateOffline {
                    transactional_id: transactional_id.to_owned(),
                    partition,
                    reason: reason.clone(),
                });
            }
        }
        Self::abort_expired_locked(&mut state, broker, now);
        let current = state.txns.get(transactional_id).cloned();
        let mut meta = match current {
            None => {
                let id = state.next_producer_id;
                state.next_producer_id += 1;
                TxnMetadata {
                    producer_id: id,
                    producer_epoch: 0,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    last_update_ms: now,
                    start_ms: -1,
                }
            }
            Some(mut m) => {
                match m.state {
                    TxnState::Ongoing | TxnState::PrepareAbort => {
                        m.producer_epoch = m.producer_epoch.saturating_add(1);
                        Self::complete(&mut state, broker, transactional_id, m.clone(), false)?;
                    }
                    TxnState::PrepareCommit => {
                        Self::complete(&mut state, broker, transactional_id, m.clone(), true)?;
                        m.producer_epoch = m.producer_epoch.saturating_add(1);
                    }
                    _ => m.producer_epoch = m.producer_epoch.saturating_add(1),
                }
                if m.producer_epoch >= i16::MAX - 1 {
                    // The epoch is exhausted: a new producer id, as Kafka does.
                    m.producer_id = state.next_producer_id;
                    state.next_producer_id += 1;
                    m.producer_epoch = 0;
                }
                m.timeout_ms = timeout_ms;
                m.state = TxnState::Empty;
                m.partitions.clear();
                m.last_update_ms = now;
                m.start_ms = -1;
                m
            }
        };
        meta.last_update_ms = now;
        let partition = Self::write_state(broker, transactional_id, &meta)?;
        state_commit_point(broker, partition)?;
        let out = (meta.producer_id, meta.producer_epoch);
        state.txns.insert(transactional_id.to_owned(), meta);
        info!(
            transactional_id,
            producer_id = out.0,
            epoch = out.1,
            "initialized transactional producer"
        );
        Ok(out)
    }

    fn check_producer<'a>(
        state: &'a State,
        id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&'a TxnMetadata> {
        let Some(m) = state.txns.get(id) else {
            return Err(BrokerError::InvalidTxnState {
                transactional_id: id.to_owned(),
                reason: "unknown transactional id; call init_transactions first".to_owned(),
            });
        };
        if m.producer_id != producer_id || m.producer_epoch != epoch {
            return Err(fenced(
                id,
                producer_id,
                epoch,
                format!(
                    "the transactional id now belongs to producer id {} epoch {} (a newer \
                     producer called init_transactions, or the transaction timed out)",
                    m.producer_id, m.producer_epoch
                ),
            ));
        }
        Ok(m)
    }

    /// Kafka's `AddPartitionsToTxn`: starts the transaction if needed and records the
    /// partitions it writes to, before any of its data is appended there.
    pub(crate) fn add_partitions(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        broker.check_open()?;
        let now = broker.config().time.now_ms();
        let mut state = self.lock();
        Self::abort_expired_locked(&mut state, broker, now);
        let mut m = Self::check_producer(&state, id, producer_id, epoch)?.clone();
        match m.state {
            TxnState::Ongoing => {
                if partitions.iter().all(|tp| m.partitions.contains(tp)) {
                    return Ok(());
                }
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                m.state = TxnState::Ongoing;
                m.partitions.clear();
                m.start_ms = now;
            }
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(BrokerError::InvalidTxnState {
                    transactional_id: id.to_owned(),
                    reason: "the transaction is completing".to_owned(),
                })
            }
        }
        m.partitions.extend(partitions.iter().cloned());
        m.last_update_ms = now;
        Self::write_state(broker, id, &m)?;
        state.txns.insert(id.to_owned(), m);
        Ok(())
    }

    /// Checks that a transactional batch of `producer_id` at `epoch` may go to `tp`: the
    /// producer owns the transactional id and has added the partition to its open
    /// transaction (Kafka's produce-time transaction verification).
    pub(crate) fn check_append(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
    ) -> Result<()> {
        let now = broker.config().time.now_ms();
        let mut state = self.lock();
        Self::abort_expired_locked(&mut state, broker, now);
        let m = Self::check_producer(&state, id, producer_id, epoch)?;
        if m.state != TxnState::Ongoing || !m.partitions.contains(tp) {
            return Err(BrokerError::InvalidTxnState {
                transactional_id: id.to_owned(),
                reason: format!(
                    "{}-{} was not added to the open transaction before this batch                      (AddPartitionsToTxn first)",
                    tp.topic, tp.partition
                ),
            });
        }
        Ok(())
    }

    /// Every transactional id's state, by id.
    pub(crate) fn snapshot(&self) -> Vec<(String, TxnMetadata)> {
        let mut out: Vec<(String, TxnMetadata)> = self
            .lock()
            .txns
            .iter()
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Kafka's `EndTxn`: commits or aborts the producer's transaction. Returns once the
    /// decision is durable and every marker is written (and fsynced per
    /// `log.flush.policy`).
    pub(crate) fn end_txn(
        &self,
        broker: &Broker,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<()> {
        broker.check_open()?;
        let now = broker.config().time.now_ms();
        let mut state = self.lock();
        Self::abort_expired_locked(&mut state, broker, now);
        let m = Self::check_producer(&state, id, producer_id, epoch)?.clone();
        match m.state {
            TxnState::Ongoing => {}
            // Nothing was sent: nothing to mark.
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => return Ok(()),
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return Err(BrokerError::InvalidTxnState {
                    transactional_id: id.to_owned(),
                    reason: "the transaction is already completing".to_owned(),
                })
            }
        }
        Self::complete(&mut state, broker, id, m, commit)
    }

    /// Completes a transaction: the prepare record, the markers, and the complete record.
    ///
    /// Only a commit needs commit points, in this order: the data of every partition, then
    /// the prepare record (the decision), then the markers. A transaction of one partition
    /// skips the prepare record: its marker, fsynced with its data, is the decision (an
    /// `Ongoing` state found on open then aborts nothing, the partition's transaction being
    /// closed already). An abort needs none: whatever of it a crash loses, recovery aborts
    /// again.
    fn complete(
        state: &mut State,
        broker: &Broker,
        id: &str,
        mut m: TxnMetadata,
        commit: bool,
    ) -> Result<()> {
        let now = broker.config().time.now_ms();
        let two_phase = !commit || m.partitions.len() > 1;
        if two_phase {
            if commit {
                // The data first: the decision must never name data a crash can lose.
                for tp in &m.partitions {
                    match partition_commit_point(broker, tp) {
                        Ok(())
                        | Err(
                            BrokerError::UnknownTopic { .. } | BrokerError::UnknownPartition { .. },
                        ) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            m.state = if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            };
            m.last_update_ms = now;
            let partition = Self::write_state(broker, id, &m)?;
            if commit {
                state_commit_point(broker, partition)?;
            }
            state.txns.insert(id.to_owned(), m.clone());
        }
        write_markers(
            broker,
            &m.partitions,
            m.producer_id,
            m.producer_epoch,
            commit,
            commit,
        )?;
        m.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        m.partitions.clear();
        m.last_update_ms = broker.config().time.now_ms();
        Self::write_state(broker, id, &m)?;
        state.txns.insert(id.to_owned(), m);
        Ok(())
    }

    /// Aborts every transaction open longer than its `transaction.timeout.ms`, bumping the
    /// epoch so that its producer is fenced. Failures are logged and retried later.
    pub(crate) fn abort_expired(&self, broker: &Broker) {
        if broker.check_open().is_err() {
            return;
        }
        let now = broker.config().time.now_ms();
        let mut state = self.lock();
        Self::abort_expired_locked(&mut state, broker, now);
    }

    fn abort_expired_locked(state: &mut State, broker: &Broker, now: i64) {
        let expired: Vec<(String, TxnMetadata)> = state
            .txns
            .iter()
            .filter(|(_, m)| {
                m.state == TxnState::Ongoing
                    && now.saturating_sub(m.start_ms) > i64::from(m.timeout_ms)
            })
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        for (id, mut m) in expired {
            warn!(
                transactional_id = %id,
                producer_id = m.producer_id,
                timeout_ms = m.timeout_ms,
                "aborting a transaction open longer than transaction.timeout.ms"
            );
            m.producer_epoch = m.producer_epoch.saturating_add(1);
            if let Err(e) = Self::complete(state, broker, &id, m, false) {
                warn!(transactional_id = %id, error = %e, "aborting a timed-out transaction failed");
            }
        }
    }

    /// Appends a state record to the transactional id's partition; returns the partition.
    fn write_state(broker: &Broker, id: &str, m: &TxnMetadata) -> Result<u32> {
        let bad = |reason: String| BrokerError::InvalidRecord {
            topic: TRANSACTION_STATE_TOPIC.to_owned(),
            reason,
        };
        let key = encode_key(id).map_err(bad)?;
        let value = encode_value(m).map_err(bad)?;
        let (topic, _) = broker.partition(TRANSACTION_STATE_TOPIC, 0)?;
        let partition = offsets_partition_for(id, topic.partitions.len() as u32);
        let record = NewRecord {
            timestamp: broker.config().time.now_ms(),
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        };
        topic.partitions[partition as usize]
            .lock()?
            .append(std::slice::from_ref(&record), ProducerFields::NONE)?;
        Ok(partition)
    }

    /// Creates `__transaction_state` if missing, replays it, completes or aborts what the
    /// last run left open, and sets the next producer id above every one in use.
    pub(crate) async fn start(&self, broker: &Broker) -> Result<()> {
        let read_only = broker.config().read_only;
        if read_only {
            if broker.topic(TRANSACTION_STATE_TOPIC).is_err() {
                return Ok(());
            }
        } else {
            broker
                .ensure_topic(
                    NewTopic::new(TRANSACTION_STATE_TOPIC, TRANSACTION_STATE_PARTITIONS)
                        .config("cleanup.policy", "compact")
                        .config("segment.bytes", "104857600"),
                )
                .await?;
        }
        let mut txns: HashMap<String, TxnMetadata> = HashMap::new();
        let partitions = broker.partition_count(TRANSACTION_STATE_TOPIC).await?;
        let mut offline = BTreeMap::new();
        for p in 0..partitions {
            let range = match broker.check_online(TRANSACTION_STATE_TOPIC, p) {
                Ok(()) => broker.offsets(TRANSACTION_STATE_TOPIC, p).await,
                Err(e) => Err(e),
            };
            let (start, end) = match range {
                Ok(range) => range,
                Err(e) => match e.offline_reason() {
                    Some(reason) => {
                        offline.insert(p, reason);
                        continue;
                    }
                    None => return Err(e),
                },
            };
            let mut next = start;
            while next < end {
                let fetched = broker
                    .fetch(TRANSACTION_STATE_TOPIC, p, next, 1024 * 1024, None)
                    .await;
                let batches = match fetched {
                    Ok(batches) => batches,
                    Err(e) => match e.offline_reason() {
                        Some(reason) => {
                            offline.insert(p, reason);
                            break;
                        }
                        None => return Err(e),
                    },
                };
                if batches.is_empty() {
                    break;
                }
                for batch in batches {
                    next = next.max(batch.info.last_offset + 1);
                    if batch.info.control {
                        continue;
                    }
                    for record in batch.records {
                        let corrupt = |reason: String| BrokerError::CorruptTransactionRecord {
                            partition: p,
                            offset: record.offset,
                            reason,
                        };
                        let Some(key) = record.key.as_deref() else {
                            return Err(corrupt("the record has no key".to_owned()));
                        };
                        let Some(id) = decode_key(key).map_err(corrupt)? else {
                            warn!(
                                partition = p,
                                offset = record.offset,
                                "skipping a transaction-state record with an unknown key version"
                            );
                            continue;
                        };
                        match record.value.as_deref() {
                            None => {
                                txns.remove(&id);
                            }
                            Some(v) => {
                                txns.insert(id, decode_value(v).map_err(corrupt)?);
                            }
                        }
                    }
                }
            }
        }
        for (p, reason) in &offline {
            let ids: Vec<&str> = txns
                .keys()
                .filter(|id| offsets_partition_for(id, partitions) == *p)
                .map(String::as_str)
                .collect();
            tracing::error!(
                partition = p,
                "{TRANSACTION_STATE_TOPIC}-{p} is offline: {reason}; the transactional ids it \
                 serves cannot initialize until it is repaired (ids found before the damage: \
                 {})",
                ids.join(", ")
            );
        }
        txns.retain(|id, _| !offline.contains_key(&offsets_partition_for(id, partitions)));
        let mut max_pid = txns.values().map(|m| m.producer_id).max().unwrap_or(-1);
        for topic in broker.all_topics() {
            for part in &topic.partitions {
                if let Some(pid) = part.lock().ok().and_then(|log| log.max_producer_id()) {
                    max_pid = max_pid.max(pid);
                }
            }
        }
        let mut state = self.lock();
        state.next_producer_id = state.next_producer_id.max(max_pid + 1);
        state.offline = (partitions, offline);
        let loaded = txns.len();
        let mut recovered = 0usize;
        for (id, m) in txns {
            state.txns.insert(id.clone(), m.clone());
            let outcome = match m.state {
                TxnState::Ongoing | TxnState::PrepareAbort => false,
                TxnState::PrepareCommit => true,
                _ => continue,
            };
            if read_only {
                // Completing it writes markers: left for the next writable open.
                continue;
            }
            let mut m = m;
            if m.state == TxnState::Ongoing {
                // Fence whatever producer still holds the old epoch.
                m.producer_epoch = m.producer_epoch.saturating_add(1);
            }
            info!(
                transactional_id = %id,
                producer_id = m.producer_id,
                commit = outcome,
                "completing a transaction left open by the last run"
            );
            Self::complete(&mut state, broker, &id, m, outcome)?;
            recovered += 1;
        }
        drop(state);
        // Partitions whose transaction the coordinator does not know as open.
        let mut dangling = 0usize;
        for topic in broker.all_topics().into_iter().filter(|_| !read_only) {
            for (p, part) in topic.partitions.iter().enumerate() {
                let Ok(log) = part.lock() else { continue };
                if log.damage().is_some() {
                    // An offline partition takes no marker; its open transaction stays
                    // open until the partition is repaired.
                    continue;
                }
                let open = log.open_transactions();
                drop(log);
                for (pid, epoch) in open {
                    warn!(
                        topic = %topic.name,
                        partition = p,
                        producer_id = pid,
                        "aborting a transaction with no coordinator state"
                    );
                    part.lock()?.append_marker(pid, epoch, false, 0)?;
                    if topic.name == CONSUMER_OFFSETS_TOPIC {
                        broker.inner.groups.complete_txn(pid, false);
                    }
                    dangling += 1;
                }
            }
        }
        if dangling > 0 {
            broker.inner.data_arrived.notify_waiters();
        }
        info!(
            transactions = loaded,
            recovered, dangling, "loaded transaction state"
        );
        Ok(())
    }
}

/// Writes a marker to each partition, then (with `sync`) makes them durable.
fn write_markers(
    broker: &Broker,
    partitions: &BTreeSet<TopicPartition>,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    sync: bool,
) -> Result<()> {
    for tp in partitions {
        let (topic, p) = match broker.partition(&tp.topic, tp.partition) {
            Ok(x) => x,
            Err(BrokerError::UnknownTopic { .. } | BrokerError::UnknownPartition { .. }) => {
                warn!(partition = %tp, "no marker for a partition that no longer exists");
                continue;
            }
            Err(e) => return Err(e),
        };
        let written = topic.partitions[p]
            .lock()
            .and_then(|mut log| log.append_marker(producer_id, epoch, commit, 0));
        match written {
            Ok(_) => {}
            Err(e @ BrokerError::PartitionOffline { .. }) => {
                // The partition takes nothing until it is repaired; the repair truncates it
                // at its damage and the next open aborts whatever is left open there.
                tracing::error!(partition = %tp, producer_id, commit, error = %e, "no transaction marker for an offline partition");
                continue;
            }
            Err(e) => return Err(e),
        }
        if tp.topic == CONSUMER_OFFSETS_TOPIC {
            broker.inner.groups.complete_txn(producer_id, commit);
        }
    }
    broker.inner.data_arrived.notify_waiters();
    if !sync {
        return Ok(());
    }
    for tp in partitions {
        match partition_commit_point(broker, tp) {
            Ok(())
            | Err(
                BrokerError::UnknownTopic { .. }
                | BrokerError::UnknownPartition { .. }
                | BrokerError::PartitionOffline { .. },
            ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn partition_commit_point(broker: &Broker, tp: &TopicPartition) -> Result<()> {
    let (topic, p) = broker.partition(&tp.topic, tp.partition)?;
    let result = topic.partitions[p]
        .lock()
        .and_then(|mut log| log.commit_point());
    result
}

fn state_commit_point(broker: &Broker, partition: u32) -> Result<()> {
    partition_commit_point(
        broker,
        &TopicPartition::new(TRANSACTION_STATE_TOPIC, partition),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_round_trip() {
        let m = TxnMetadata {
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                TopicPartition::new("a", 0),
                TopicPartition::new("a", 2),
                TopicPartition::new("b", 1),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 11,
            start_ms: 10,
        };
        let v = encode_value(&m).unwrap();
        assert_eq!(decode_value(&v).unwrap(), m);
        let k = encode_key("tx-1").unwrap();
        assert_eq!(decode_key(&k).unwrap(), Some("tx-1".to_owned()));
        assert_eq!(decode_key(&[9, 0, 0]).unwrap(), None);
        // The bytes drawn in docs/format.md.
        let example = TxnMetadata {
            producer_id: 3,
            producer_epoch: 1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [TopicPartition::new("t", 2)].into_iter().collect(),
            last_update_ms: 1_700_000_000_001,
            start_ms: 1_700_000_000_000,
        };
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&encode_key("tx").unwrap()), "0100027478");
        assert_eq!(
            hex(&encode_value(&example).unwrap()),
            concat!(
                "01",
                "0000000000000003",
                "0001",
                "0000ea60",
                "01",
                "00000001",
                "0001",
                "74",
                "00000001",
                "00000002",
                "0000018bcfe56801",
                "0000018bcfe56800"
            )
        );
        for cut in 0..v.len() {
            assert!(decode_value(&v[..cut]).is_err());
        }
    }
}
