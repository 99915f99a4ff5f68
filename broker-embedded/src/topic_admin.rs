//! Admin changes to existing topics beyond their configs: adding partitions (Kafka's
//! CreatePartitions) and deleting records below an offset (Kafka's DeleteRecords).

use std::fs;
use std::sync::Arc;

use tracing::{info, warn};

use crate::broker::{
    is_internal_topic, partition_dir, Broker, Topic, EAGER_FIRST_SEGMENT_PARTITIONS,
};
use crate::error::{BrokerError, Result};
use crate::topic_meta::{check_partitions, meta_file, render_meta, sync_dir, write_atomically};

impl Broker {
    /// Checks what [`Broker::create_partitions`] checks, changing nothing (Kafka's
    /// `validate_only`).
    pub async fn validate_create_partitions(&self, topic: &str, new_total: u32) -> Result<()> {
        self.check_writable(|| format!("add partitions to topic {topic}"))?;
        let current = self.topic(topic)?;
        self.check_new_total(&current, new_total)
    }

    fn check_new_total(&self, topic: &Topic, new_total: u32) -> Result<()> {
        let current = topic.partitions.len() as u32;
        let invalid = |reason: String| {
            Err(BrokerError::InvalidPartitions {
                topic: topic.name.clone(),
                reason,
            })
        };
        if is_internal_topic(&topic.name) {
            return invalid(format!(
                "the partition count of the internal topic {} cannot be changed",
                topic.name
            ));
        }
        if new_total == current {
            return invalid(format!("Topic already has {current} partitions."));
        }
        if new_total < current {
            return invalid(format!(
                "Topic currently has {current} partitions, which is higher than the requested \
                 {new_total}."
            ));
        }
        check_partitions(
            &topic.name,
            new_total,
            self.inner.config.max_partitions_per_topic,
        )
    }

    /// Grows `topic` to `new_total` partitions (Kafka's `createPartitions`): partitions can
    /// only be added, never removed. The new partitions' logs are created first, then the
    /// topic's metadata file is rewritten atomically with the new count; a crash in between
    /// leaves the old count and stray dirs that the next attempt removes. Keyed records of
    /// existing keys may map to other partitions from then on, as in Kafka.
    ///
    /// `InvalidPartitions` for a count at or below the present one or an internal topic;
    /// `InvalidConfig` (key `partitions`) above `max.partitions.per.topic`.
    pub async fn create_partitions(&self, topic: &str, new_total: u32) -> Result<()> {
        self.check_writable(|| format!("add partitions to topic {topic}"))?;
        let _admin = self.inner.admin.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.topic(topic)?;
        self.check_new_total(&current, new_total)?;
        let old_total = current.partitions.len() as u32;
        let dir = self.dir().to_owned();
        for p in old_total..new_total {
            let pdir = partition_dir(&dir, topic, p);
            if pdir.exists() {
                warn!(dir = %pdir.display(), "removing a stale partition dir (an interrupted create)");
                fs::remove_dir_all(&pdir).map_err(|e| BrokerError::io(&pdir, e))?;
            }
        }
        let config = current.config()?;
        let mut env = self.inner.log_env.clone();
        env.eager_first_segment = new_total - old_total <= EAGER_FIRST_SEGMENT_PARTITIONS;
        let added = Self::open_partitions(&dir, topic, old_total..new_total, &config, &env, false)
            .and_then(|added| {
                // The new dirs' names are durable before the metadata counts them.
                sync_dir(&dir)?;
                write_atomically(
                    &meta_file(&dir, topic),
                    render_meta(current.id, new_total, &config).as_bytes(),
                )?;
                Ok(added)
            });
        let added = match added {
            Ok(added) => added,
            Err(e) => {
                for p in old_total..new_total {
                    let pdir = partition_dir(&dir, topic, p);
                    if pdir.exists() {
                        if let Err(e) = fs::remove_dir_all(&pdir) {
                            warn!(dir = %pdir.display(), error = %e, "cannot remove what a failed partition create left");
                        }
                    }
                }
                return Err(e);
            }
        };
        let mut partitions = current.partitions.clone();
        partitions.extend(added);
        self.inner
            .topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                topic.to_owned(),
                Arc::new(Topic {
                    name: current.name.clone(),
                    id: current.id,
                    partitions,
                }),
            );
        info!(
            topic,
            from = old_total,
            to = new_total,
            "partitions added to topic {topic}: {old_total} -> {new_total}"
        );
        Ok(())
    }

    /// Deletes the records of a partition below `before_offset` (Kafka's `deleteRecords`):
    /// the log start offset moves there, durably, and the records below it are no longer
    /// read, listed by ListOffsets or fetched, also after a restart. `None` means the high
    /// watermark (the log end offset). Returns the log start offset then (Kafka's low
    /// watermark); an offset at or below it changes nothing.
    ///
    /// `OffsetOutOfRange` above the log end offset. Whole segments below the new start are
    /// deleted now; the segment holding it stays until retention removes it.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: u32,
        before_offset: Option<u64>,
    ) -> Result<u64> {
        let (t, p) = self.partition(topic, partition)?;
        self.check_writable(|| format!("delete records of {topic}-{partition}"))?;
        let mut log = t.partitions[p].lock()?;
        log.delete_records_before(before_offset)
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{NewRecord, ProducerFields};
    use crate::{Broker, BrokerConfig, BrokerError, NewTopic};

    fn records(n: usize) -> Vec<NewRecord> {
        (0..n)
            .map(|i| NewRecord {
                timestamp: 1_000 + i as i64,
                key: Some(format!("k{i}").into_bytes().into()),
                value: Some(format!("v{i}").into_bytes().into()),
                headers: Vec::new(),
            })
            .collect()
    }

    async fn fill(broker: &Broker, topic: &str, partition: u32, batches: usize) {
        for _ in 0..batches {
            broker
                .append(topic, partition, &records(5), ProducerFields::NONE)
                .await
                .unwrap();
        }
    }

    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }

    fn config() -> BrokerConfig {
        BrokerConfig {
            retention_check_interval_ms: None,
            ..BrokerConfig::default()
        }
    }

    #[tokio::test]
    async fn topic_ids_persist_across_restarts_and_a_recreated_topic_gets_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let broker = Broker::open(dir.path(), config()).await.unwrap();
            broker.create_topic(NewTopic::new("a", 1)).await.unwrap();
            broker.create_topic(NewTopic::new("b", 2)).await.unwrap();
            let (a, b) = (broker.topic_id("a").unwrap(), broker.topic_id("b").unwrap());
            assert_ne!(a, b);
            assert_eq!(broker.topic_name_by_id(a).as_deref(), Some("a"));
            assert_eq!(broker.topic_name_by_id(uuid::Uuid::from_u128(7)), None);
            // The internal topics have ids too.
            assert!(broker.topic_id("__consumer_offsets").is_ok());
            broker.close().await.unwrap();
            (a, b)
        };
        let broker = Broker::open(dir.path(), config()).await.unwrap();
        assert_eq!(broker.topic_id("a").unwrap(), a);
        assert_eq!(broker.topic_id("b").unwrap(), b);
        broker
            .alter_topic_config("a", &[("retention.ms", "5000")])
            .await
            .unwrap();
        assert_eq!(
            broker.topic_id("a").unwrap(),
            a,
            "a config change keeps the id"
        );
        broker.delete_topic("a").await.unwrap();
        assert!(matches!(
            broker.topic_id("a"),
            Err(BrokerError::UnknownTopic { .. })
        ));
        assert_eq!(broker.topic_name_by_id(a), None);
        broker.create_topic(NewTopic::new("a", 1)).await.unwrap();
        assert_ne!(broker.topic_id("a").unwrap(), a);
    }

    #[tokio::test]
    async fn a_topic_from_before_ids_gets_one_at_open_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let broker = Broker::open(dir.path(), config()).await.unwrap();
            broker.create_topic(NewTopic::new("old", 2)).await.unwrap();
            fill(&broker, "old", 1, 2).await;
            broker.close().await.unwrap();
        }
        // Written back as a version 1 file, as brokers before topic ids wrote it.
        let meta = dir.path().join("meta/topics/old/properties");
        std::fs::write(
            &meta,
            "format.version=1\npartitions=2\ncleanup.policy=delete\n",
        )
        .unwrap();
        let id = {
            let broker = Broker::open(dir.path(), config()).await.unwrap();
            let id = broker.topic_id("old").unwrap();
            assert_eq!(broker.offsets("old", 1).await.unwrap(), (0, 10));
            broker.close().await.unwrap();
            id
        };
        let text = std::fs::read_to_string(&meta).unwrap();
        assert!(
            text.starts_with(&format!("format.version=2\ntopic.id={id}\npartitions=2\n")),
            "{text}"
        );
        let broker = Broker::open(dir.path(), config()).await.unwrap();
        assert_eq!(broker.topic_id("old").unwrap(), id);
    }

    #[tokio::test]
    async fn create_partitions_grows_only_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let max = BrokerConfig {
            max_partitions_per_topic: 64,
            ..config()
        };
        {
            let broker = Broker::open(dir.path(), max.clone()).await.unwrap();
            broker
                .create_topic(NewTopic::new("t", 2).config("retention.ms", "1234"))
                .await
                .unwrap();
            fill(&broker, "t", 0, 1).await;
            let id = broker.topic_id("t").unwrap();
            for (total, what) in [(2, "already has 2"), (1, "higher than the requested 1")] {
                let err = broker.create_partitions("t", total).await.unwrap_err();
                assert!(
                    matches!(&err, BrokerError::InvalidPartitions { reason, .. } if reason.contains(what)),
                    "{err}"
                );
                assert!(broker.validate_create_partitions("t", total).await.is_err());
            }
            let err = broker.create_partitions("t", 65).await.unwrap_err();
            assert!(
                matches!(&err, BrokerError::InvalidConfig { key, .. } if key == "partitions"),
                "{err}"
            );
            assert!(matches!(
                broker.create_partitions("nope", 3).await,
                Err(BrokerError::UnknownTopic { .. })
            ));
            assert!(matches!(
                broker.create_partitions("__consumer_offsets", 90).await,
                Err(BrokerError::InvalidPartitions { .. })
            ));
            broker.validate_create_partitions("t", 5).await.unwrap();
            assert_eq!(
                broker.partition_count("t").await.unwrap(),
                2,
                "validate only"
            );
            broker.create_partitions("t", 5).await.unwrap();
            assert_eq!(broker.partition_count("t").await.unwrap(), 5);
            fill(&broker, "t", 4, 2).await;
            assert_eq!(broker.offsets("t", 4).await.unwrap(), (0, 10));
            assert_eq!(broker.offsets("t", 0).await.unwrap(), (0, 5));
            assert_eq!(broker.topic_id("t").unwrap(), id);
            // The new partitions have the topic's configs.
            let description = broker.describe_topic("t").await.unwrap();
            assert_eq!(description.config.retention_ms, Some(1234));
            broker.close().await.unwrap();
        }
        let broker = Broker::open(dir.path(), max).await.unwrap();
        assert_eq!(broker.partition_count("t").await.unwrap(), 5);
        assert_eq!(broker.offsets("t", 4).await.unwrap(), (0, 10));
        assert_eq!(
            broker
                .describe_topic("t")
                .await
                .unwrap()
                .config
                .retention_ms,
            Some(1234)
        );
    }

    #[tokio::test]
    async fn create_partitions_removes_stray_dirs_of_an_interrupted_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path(), config()).await.unwrap();
        broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
        // A dir for partition 1 left by a crash before the metadata named it, with data.
        let stray = dir.path().join("t-1");
        std::fs::create_dir_all(&stray).unwrap();
        std::fs::write(stray.join("00000000000000000000.log"), b"garbage").unwrap();
        broker.create_partitions("t", 2).await.unwrap();
        assert_eq!(broker.offsets("t", 1).await.unwrap(), (0, 0));
        fill(&broker, "t", 1, 1).await;
        assert_eq!(broker.offsets("t", 1).await.unwrap(), (0, 5));
    }

    #[tokio::test]
    async fn delete_records_moves_the_log_start_durably_and_hides_older_records() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = tempfile::tempdir().unwrap();
        {
            let broker = Broker::open(dir.path(), config()).await.unwrap();
            // Small segments: each 5-record batch of ~120 bytes rolls a new one soon.
            broker
                .create_topic(NewTopic::new("t", 2).config("segment.bytes", "300"))
                .await
                .unwrap();
            fill(&broker, "t", 0, 10).await;
            let segments_before =
                broker.describe_topic("t").await.unwrap().partitions[0].segment_count;
            assert!(segments_before > 3, "{segments_before}");
            // Above the high watermark: out of range, nothing changes.
            assert!(matches!(
                broker.delete_records("t", 0, Some(51)).await,
                Err(BrokerError::OffsetOutOfRange { .. })
            ));
            // Inside a batch: the start moves there.
            assert_eq!(broker.delete_records("t", 0, Some(23)).await.unwrap(), 23);
            assert_eq!(broker.offsets("t", 0).await.unwrap(), (23, 50));
            // Below the start: nothing changes.
            assert_eq!(broker.delete_records("t", 0, Some(7)).await.unwrap(), 23);
            let description = broker.describe_topic("t").await.unwrap();
            assert_eq!(description.partitions[0].log_start_offset, 23);
            assert!(description.partitions[0].segment_count < segments_before);
            // Reads below the start are out of range; a read at it starts there.
            assert!(matches!(
                broker.fetch("t", 0, 22, 1 << 20, None).await,
                Err(BrokerError::OffsetOutOfRange { .. })
            ));
            let batches = broker.fetch("t", 0, 23, 1 << 20, None).await.unwrap();
            assert_eq!(batches[0].records[0].offset, 23);
            // By timestamp: the first record at or after the start.
            assert_eq!(
                broker.offset_for_timestamp("t", 0, 0).await.unwrap(),
                Some((23, 1_003))
            );
            // The other partition is untouched; -1 (None) is the high watermark.
            fill(&broker, "t", 1, 2).await;
            assert_eq!(broker.delete_records("t", 1, None).await.unwrap(), 10);
            assert_eq!(broker.offsets("t", 1).await.unwrap(), (10, 10));
            assert!(matches!(
                broker.delete_records("t", 2, None).await,
                Err(BrokerError::UnknownPartition { .. })
            ));
            // A copy of the dir as it is now, as a crash would leave it: the start was
            // recorded when it moved, not at close.
            copy_dir(dir.path(), crashed.path());
            broker.close().await.unwrap();
        }
        for dir in [crashed.path(), dir.path()] {
            let broker = Broker::open(dir, config()).await.unwrap();
            assert_eq!(broker.offsets("t", 0).await.unwrap(), (23, 50));
            assert_eq!(broker.offsets("t", 1).await.unwrap(), (10, 10));
            let batches = broker.fetch("t", 0, 23, 1 << 20, None).await.unwrap();
            assert_eq!(batches[0].records[0].offset, 23);
            assert!(matches!(
                broker.fetch("t", 0, 20, 1 << 20, None).await,
                Err(BrokerError::OffsetOutOfRange { .. })
            ));
            broker.close().await.unwrap();
        }
        let broker = Broker::open(dir.path(), config()).await.unwrap();
        fill(&broker, "t", 1, 1).await;
        assert_eq!(broker.offsets("t", 1).await.unwrap(), (10, 15));
        // Retention after a DeleteRecords never moves the start back.
        assert_eq!(broker.delete_records("t", 0, Some(49)).await.unwrap(), 49);
        broker.run_retention().unwrap();
        broker.close().await.unwrap();
        drop(broker);
        let broker = Broker::open(dir.path(), config()).await.unwrap();
        assert_eq!(broker.offsets("t", 0).await.unwrap(), (49, 50));
        let description = broker.describe_topic("t").await.unwrap();
        assert_eq!(description.partitions[0].offline, None);
    }
}
