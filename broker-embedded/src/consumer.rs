//! The consumer: assign partitions, seek, and poll with a timeout that wakes as soon as data
//! arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::broker::Broker;
use crate::config::TimestampType;
use crate::error::{BrokerError, Result};
use crate::record::Header;
use crate::TopicPartition;

/// `auto.offset.reset`: where to start when there is no position, or the position is out of
/// range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The log end offset (Kafka's default).
    #[default]
    Latest,
    /// Fail with [`BrokerError::NoOffsetForPartition`] or
    /// [`BrokerError::OffsetOutOfRange`].
    None,
}

impl AutoOffsetReset {
    /// Parses `earliest`, `latest` or `none`.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" => Ok(AutoOffsetReset::None),
            _ => Err(BrokerError::InvalidConfig {
                key: "auto.offset.reset".to_owned(),
                value: value.to_owned(),
                reason: "expected earliest, latest or none".to_owned(),
            }),
        }
    }
}

/// Consumer settings, with Kafka's names.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `auto.offset.reset`, default `latest`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `max.poll.records`, default 500.
    pub max_poll_records: usize,
    /// `max.partition.fetch.bytes`, default 1 MiB: how much one fetch reads from a partition.
    pub max_partition_fetch_bytes: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Latest,
            max_poll_records: 500,
            max_partition_fetch_bytes: 1024 * 1024,
        }
    }
}

/// A record as a consumer receives it (Kafka's `ConsumerRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic (shared, not copied per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
    /// Timestamp in epoch ms.
    pub timestamp: i64,
    /// Whose timestamp it is.
    pub timestamp_type: TimestampType,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<Header>,
}

#[derive(Debug)]
struct Assigned {
    tp: TopicPartition,
    topic_name: Arc<str>,
    /// The next offset to hand to the user; `None` until resolved by `auto.offset.reset`.
    position: Option<u64>,
    /// Fetched records not yet handed out, all at or after `position`.
    buffer: VecDeque<ConsumerRecord>,
    /// The next offset to fetch (past the buffer).
    fetch_offset: u64,
}

/// A consumer of assigned partitions of an embedded broker.
#[derive(Debug)]
pub struct Consumer {
    broker: Broker,
    config: ConsumerConfig,
    assigned: Vec<Assigned>,
    index: HashMap<TopicPartition, usize>,
    /// Round-robin start for fairness across partitions.
    next: usize,
}

impl Consumer {
    /// A consumer with settings.
    pub fn new(broker: &Broker, config: ConsumerConfig) -> Self {
        Consumer {
            broker: broker.clone(),
            config,
            assigned: Vec::new(),
            index: HashMap::new(),
            next: 0,
        }
    }

    /// Replaces the assignment. Unknown topics or partitions are an error and change nothing.
    /// Positions of partitions kept in the assignment are kept.
    pub async fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<()> {
        for tp in &partitions {
            let n = self.broker.partition_count(&tp.topic).await?;
            if tp.partition >= n {
                return Err(BrokerError::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    partitions: n,
                });
            }
        }
        let mut old: HashMap<TopicPartition, Assigned> = self
            .assigned
            .drain(..)
            .map(|a| (a.tp.clone(), a))
            .collect();
        self.index.clear();
        for tp in partitions {
            if self.index.contains_key(&tp) {
                continue;
            }
            let a = old.remove(&tp).unwrap_or_else(|| Assigned {
                topic_name: Arc::from(tp.topic.as_str()),
                tp: tp.clone(),
                position: None,
                buffer: VecDeque::new(),
                fetch_offset: 0,
            });
            self.index.insert(tp, self.assigned.len());
            self.assigned.push(a);
        }
        Ok(())
    }

    /// Assigns every partition of `topic`.
    pub async fn assign_topic(&mut self, topic: &str) -> Result<()> {
        let n = self.broker.partition_count(topic).await?;
        let mut tps: Vec<TopicPartition> = self.assignment();
        tps.extend((0..n).map(|p| TopicPartition::new(topic, p)));
        self.assign(tps).await
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assigned.iter().map(|a| a.tp.clone()).collect()
    }

    fn slot(&mut self, tp: &TopicPartition) -> Result<&mut Assigned> {
        match self.index.get(tp) {
            Some(i) => Ok(&mut self.assigned[*i]),
            None => Err(BrokerError::InvalidConfig {
                key: "partition".to_owned(),
                value: tp.to_string(),
                reason: "not assigned to this consumer".to_owned(),
            }),
        }
    }

    /// Sets the next offset to read from `tp`. An offset outside the log is handled by
    /// `auto.offset.reset` at the next poll.
    pub fn seek(&mut self, tp: &TopicPartition, offset: u64) -> Result<()> {
        let a = self.slot(tp)?;
        a.position = Some(offset);
        a.fetch_offset = offset;
        a.buffer.clear();
        Ok(())
    }

    /// Seeks to the log start offset.
    pub async fn seek_to_beginning(&mut self, tp: &TopicPartition) -> Result<()> {
        let (start, _) = self.broker.offsets(&tp.topic, tp.partition).await?;
        self.seek(tp, start)
    }

    /// Seeks to the log end offset: only records appended from now on are read.
    pub async fn seek_to_end(&mut self, tp: &TopicPartition) -> Result<()> {
        let (_, end) = self.broker.offsets(&tp.topic, tp.partition).await?;
        self.seek(tp, end)
    }

    /// Seeks to the earliest record whose timestamp is at least `timestamp`, or to the end if
    /// there is none.
    pub async fn seek_to_timestamp(&mut self, tp: &TopicPartition, timestamp: i64) -> Result<()> {
        match self
            .broker
            .offset_for_timestamp(&tp.topic, tp.partition, timestamp)
            .await?
        {
            Some((offset, _)) => self.seek(tp, offset),
            None => self.seek_to_end(tp).await,
        }
    }

    /// The next offset this consumer will return for `tp`, if known yet.
    pub fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.index.get(tp).and_then(|i| self.assigned[*i].position)
    }

    /// Polls up to `max.poll.records` records, waiting up to `timeout` for data.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let n = self.config.max_poll_records;
        self.poll_up_to(n, timeout).await
    }

    /// Polls up to `max_records` records, waiting up to `timeout` for the first one. The wait
    /// ends as soon as any assigned partition gets data; it does not spin.
    pub async fn poll_up_to(
        &mut self,
        max_records: usize,
        timeout: Duration,
    ) -> Result<Vec<ConsumerRecord>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let inner = self.broker.inner.clone();
        loop {
            // Register for a wake-up before looking, so an append in between is not missed.
            let notified = inner.data_arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let records = self.collect(max_records).await?;
            if !records.is_empty() || max_records == 0 {
                return Ok(records);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn resolve_position(&mut self, i: usize) -> Result<u64> {
        if let Some(p) = self.assigned[i].position {
            return Ok(p);
        }
        let tp = self.assigned[i].tp.clone();
        let (start, end) = self.broker.offsets(&tp.topic, tp.partition).await?;
        let p = match self.config.auto_offset_reset {
            AutoOffsetReset::Earliest => start,
            AutoOffsetReset::Latest => end,
            AutoOffsetReset::None => {
                return Err(BrokerError::NoOffsetForPartition {
                    topic: tp.topic,
                    partition: tp.partition,
                })
            }
        };
        let a = &mut self.assigned[i];
        a.position = Some(p);
        a.fetch_offset = p;
        Ok(p)
    }

    /// Fetches into the buffers if needed and hands out up to `max` records.
    async fn collect(&mut self, max: usize) -> Result<Vec<ConsumerRecord>> {
        let mut out = Vec::new();
        let n = self.assigned.len();
        if n == 0 {
            return Ok(out);
        }
        for step in 0..n {
            if out.len() >= max {
                break;
            }
            let i = (self.next + step) % n;
            self.resolve_position(i).await?;
            if self.assigned[i].buffer.is_empty() {
                self.fetch(i).await?;
            }
            let a = &mut self.assigned[i];
            while out.len() < max {
                let Some(r) = a.buffer.pop_front() else { break };
                a.position = Some(r.offset + 1);
                out.push(r);
            }
            if a.buffer.is_empty() {
                a.position = Some(a.fetch_offset.max(a.position.unwrap_or(0)));
            }
        }
        self.next = (self.next + 1) % n;
        Ok(out)
    }

    async fn fetch(&mut self, i: usize) -> Result<()> {
        let (tp, offset) = {
            let a = &self.assigned[i];
            (a.tp.clone(), a.fetch_offset)
        };
        let batches = match self
            .broker
            .fetch(
                &tp.topic,
                tp.partition,
                offset,
                self.config.max_partition_fetch_bytes,
                None,
            )
            .await
        {
            Ok(b) => b,
            Err(BrokerError::OffsetOutOfRange {
                log_start_offset,
                log_end_offset,
                ..
            }) if self.config.auto_offset_reset != AutoOffsetReset::None => {
                let reset = if self.config.auto_offset_reset == AutoOffsetReset::Earliest {
                    log_start_offset
                } else {
                    log_end_offset
                };
                tracing::info!(
                    partition = %tp, offset, reset,
                    "offset out of range, reset by auto.offset.reset"
                );
                let a = &mut self.assigned[i];
                a.position = Some(reset);
                a.fetch_offset = reset;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let a = &mut self.assigned[i];
        for batch in batches {
            let next = batch.info.last_offset + 1;
            if !batch.info.control {
                for r in batch.records {
                    if r.offset < a.fetch_offset {
                        continue;
                    }
                    a.buffer.push_back(ConsumerRecord {
                        topic: a.topic_name.clone(),
                        partition: tp.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        timestamp_type: batch.info.timestamp_type,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                    });
                }
            }
            a.fetch_offset = a.fetch_offset.max(next);
        }
        Ok(())
    }
}
