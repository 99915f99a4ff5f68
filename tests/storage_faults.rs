//! A damaged data dir costs the damaged partition, never the broker, and never silently: a
//! file is deleted, truncated, flipped, extended with garbage or replaced by a directory,
//! and each test checks that nothing acknowledged before the damage is lost, nothing wrong is
//! served, the error names the file, and every other partition keeps working.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use broker_embedded::{Broker, BrokerConfig, BrokerError, NewRecord, NewTopic, ProducerFields};
use bytes::Bytes;

const SEGMENT_BYTES: &str = "1024";

/// A data dir with topics `a` (2 partitions) and `b` (1), 1 KiB segments, and `n` records
/// in every partition (values `<topic>-<partition>-<i>`), closed cleanly.
async fn populated(dir: &Path, n: u64) {
    let broker = Broker::open(dir, BrokerConfig::default()).await.unwrap();
    for (topic, partitions) in [("a", 2), ("b", 1)] {
        broker
            .create_topic(NewTopic::new(topic, partitions).config("segment.bytes", SEGMENT_BYTES))
            .await
            .unwrap();
        for p in 0..partitions {
            for i in 0..n {
                broker
                    .append(topic, p, &[record(topic, p, i)], ProducerFields::NONE)
                    .await
                    .unwrap();
            }
        }
    }
    broker.close().await.unwrap();
}

fn record(topic: &str, partition: u32, i: u64) -> NewRecord {
    NewRecord {
        timestamp: 1_700_000_000_000 + i as i64,
        key: Some(Bytes::from(format!("k{i}"))),
        value: Some(Bytes::from(format!("{topic}-{partition}-{i}"))),
        headers: Vec::new(),
    }
}

/// The segment files of a partition, oldest first.
fn segments(dir: &Path, topic: &str, partition: u32) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = fs::read_dir(dir.join(format!("{topic}-{partition}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs
}

fn base_offset(segment: &Path) -> u64 {
    segment
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn remove_indexes(segment: &Path) {
    for ext in ["index", "timeindex"] {
        let _ = fs::remove_file(segment.with_extension(ext));
    }
}

fn flip_byte(file: &Path, at: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
}

/// Reads a partition from offset 0 until it ends or fails; returns the values read and the
/// error that stopped the read, if any.
async fn read_partition(
    broker: &Broker,
    topic: &str,
    partition: u32,
) -> (Vec<String>, Option<BrokerError>) {
    let mut values = Vec::new();
    let mut offset = 0;
    loop {
        match broker.fetch(topic, partition, offset, 4096, None).await {
            Ok(batches) if batches.is_empty() => return (values, None),
            Ok(batches) => {
                for batch in batches {
                    for r in batch.records {
                        assert_eq!(r.offset, offset, "offsets run on without a hole");
                        offset = r.offset + 1;
                        values.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
                    }
                }
            }
            Err(e) => return (values, Some(e)),
        }
    }
}

fn expected(topic: &str, partition: u32, n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{topic}-{partition}-{i}")).collect()
}

/// Every partition but `a-0` reads back whole and takes appends.
async fn the_rest_works(broker: &Broker, n: u64) {
    for (topic, p) in [("a", 1), ("b", 0)] {
        let (values, err) = read_partition(broker, topic, p).await;
        assert!(err.is_none(), "{topic}-{p}: {err:?}");
        assert_eq!(values, expected(topic, p, n), "{topic}-{p}");
        let info = broker
            .append(topic, p, &[record(topic, p, n)], ProducerFields::NONE)
            .await
            .unwrap();
        assert_eq!(info.base_offset, n);
    }
    broker.create_topic(NewTopic::new("c", 1)).await.unwrap();
}

/// `a-0` is offline from `offset` on, naming `file`: reads below it are exact, reads at it
/// and appends fail, and describe says why.
async fn offline_at(broker: &Broker, n: u64, file: &Path, offset: u64) {
    let (values, err) = read_partition(broker, "a", 0).await;
    assert_eq!(
        values,
        expected("a", 0, offset),
        "records before the damage"
    );
    match err {
        Some(BrokerError::PartitionOffline {
            topic,
            partition,
            file: f,
            offset: o,
            ..
        }) => {
            assert_eq!((topic.as_str(), partition, o), ("a", 0, offset));
            assert_eq!(f, file);
        }
        other => panic!("expected PartitionOffline, got {other:?}"),
    }
    let err = broker
        .append("a", 0, &[record("a", 0, n)], ProducerFields::NONE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::PartitionOffline { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    let description = broker.describe_topic("a").await.unwrap();
    let reason = description.partitions[0].offline.clone().expect("offline");
    assert!(reason.contains(&file.display().to_string()), "{reason}");
    assert!(description.partitions[1].offline.is_none());
}

async fn reopen(dir: &Path) -> Broker {
    Broker::open(dir, BrokerConfig::default()).await.unwrap()
}

#[tokio::test]
async fn a_corrupt_sealed_segment_takes_one_partition_offline() {
    let n = 120;
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), n).await;
    let segs = segments(dir.path(), "a", 0);
    assert!(segs.len() >= 4, "{segs:?}");
    let victim = &segs[1];
    let next = base_offset(&segs[2]);
    // A byte in the last batch's records: its CRC fails.
    let len = fs::metadata(victim).unwrap().len();
    flip_byte(victim, len - 3);
    remove_indexes(victim);
    let broker = reopen(dir.path()).await;
    the_rest_works(&broker, n).await;
    offline_at(&broker, n, victim, next - 1).await;
    broker.close().await.unwrap();
    drop(broker);
    // Still offline after a reopen: closing wrote no index that would hide it.
    let broker = reopen(dir.path()).await;
    offline_at(&broker, n, victim, next - 1).await;
}

#[tokio::test]
async fn truncation_bad_magic_and_trailing_garbage_in_a_sealed_segment() {
    let n = 120;
    for damage in ["truncate", "magic", "garbage"] {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path(), n).await;
        let segs = segments(dir.path(), "a", 0);
        let victim = segs[1].clone();
        let base = base_offset(&victim);
        let next = base_offset(&segs[2]);
        let len = fs::metadata(&victim).unwrap().len();
        // Index files stay: the open must not trust them over the segment.
        let offset = match damage {
            "truncate" => {
                OpenOptions::new()
                    .write(true)
                    .open(&victim)
                    .unwrap()
                    .set_len(len - 10)
                    .unwrap();
                next - 1
            }
            "magic" => {
                // The magic byte of the first batch.
                flip_byte(&victim, 16);
                base
            }
            _ => {
                let f = OpenOptions::new().append(true).open(&victim).unwrap();
                f.write_all_at(&[0xab; 40], len).unwrap();
                next
            }
        };
        let broker = reopen(dir.path()).await;
        the_rest_works(&broker, n).await;
        offline_at(&broker, n, &victim, offset).await;
    }
}

#[tokio::test]
async fn a_corrupt_batch_found_by_a_read_takes_the_partition_offline() {
    let n = 120;
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), n).await;
    let segs = segments(dir.path(), "a", 0);
    let victim = &segs[1];
    let next = base_offset(&segs[2]);
    let len = fs::metadata(victim).unwrap().len();
    // The indexes stay and match the file's length: the open does not read the records.
    flip_byte(victim, len - 3);
    let broker = reopen(dir.path()).await;
    let (values, err) = read_partition(&broker, "a", 0).await;
    // The fetch that met the bad batch failed whole; nothing wrong was served before it.
    assert!(values.len() < next as usize);
    assert_eq!(values, expected("a", 0, values.len() as u64));
    assert!(
        matches!(err, Some(BrokerError::CorruptBatch { .. })),
        "{err:?}"
    );
    // From now on the partition is offline, not just the read.
    offline_at(&broker, n, victim, next - 1).await;
    the_rest_works(&broker, n).await;
}

#[tokio::test]
async fn corruption_followed_by_valid_batches_in_the_active_segment_is_not_truncated() {
    let n = 120;
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), n).await;
    let segs = segments(dir.path(), "a", 0);
    let active = segs.last().unwrap().clone();
    let base = base_offset(&active);
    assert!(n - base >= 3, "the active segment holds several batches");
    let len = fs::metadata(&active).unwrap().len();
    // A byte of the first batch's records.
    flip_byte(&active, 70);
    let broker = reopen(dir.path()).await;
    assert_eq!(
        fs::metadata(&active).unwrap().len(),
        len,
        "acknowledged batches after the bad one are kept"
    );
    the_rest_works(&broker, n).await;
    offline_at(&broker, n, &active, base).await;
}

#[tokio::test]
async fn a_torn_last_batch_is_truncated_only_when_no_clean_close_vouched_for_it() {
    let n = 120;
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), n).await;
    let active = segments(dir.path(), "a", 0).last().unwrap().clone();
    let len = fs::metadata(&active).unwrap().len();
    let cut = || {
        OpenOptions::new()
            .write(true)
            .open(&active)
            .unwrap()
            .set_len(len - 5)
            .unwrap()
    };
    // The clean close recorded the log's end: a cut last batch is damage, kept and loud.
    cut();
    let broker = reopen(dir.path()).await;
    offline_at(&broker, n, &active, n - 1).await;
    assert_eq!(fs::metadata(&active).unwrap().len(), len - 5);
    broker.close().await.unwrap();
    drop(broker);
    // Without that record (the process died after the write, before any close), the same
    // cut is a torn write, truncated.
    fs::remove_file(dir.path().join("a-0/log-bounds")).unwrap();
    let broker = reopen(dir.path()).await;
    let (values, err) = read_partition(&broker, "a", 0).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(values, expected("a", 0, n - 1));
    assert!(broker.describe_topic("a").await.unwrap().partitions[0]
        .offline
        .is_none());
    broker
        .append("a", 0, &[record("a", 0, n - 1)], ProducerFields::NONE)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_deleted_or_emptied_middle_segment_is_a_hole_not_a_skip() {
    let n = 120;
    for how in ["delete", "empty"] {
        let dir = tempfile::tempdir().unwrap();
        populated(dir.path(), n).await;
        let segs = segments(dir.path(), "a", 0);
        let victim = &segs[1];
        let base = base_offset(victim);
        match how {
            "delete" => {
                fs::remove_file(victim).unwrap();
                remove_indexes(victim);
            }
            _ => {
                fs::write(victim, b"").unwrap();
            }
        }
        let broker = reopen(dir.path()).await;
        the_rest_works(&broker, n).await;
        // The hole starts where the damaged segment's offsets started.
        let (values, err) = read_partition(&broker, "a", 0).await;
        assert_eq!(values, expected("a", 0, base), "{how}");
        match err {
            Some(BrokerError::PartitionOffline { offset, reason, .. }) => {
                assert_eq!(offset, base, "{how}");
                assert!(reason.contains("missing"), "{how}: {reason}");
            }
            other => panic!("{how}: expected PartitionOffline, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_partition_whose_log_cannot_be_opened_is_offline_alone() {
    let n = 40;
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), n).await;
    // The active segment replaced by a directory.
    let active = segments(dir.path(), "a", 0).last().unwrap().clone();
    fs::remove_file(&active).unwrap();
    fs::create_dir(&active).unwrap();
    let broker = reopen(dir.path()).await;
    the_rest_works(&broker, n).await;
    let err = broker.fetch("a", 0, 0, 4096, None).await.unwrap_err();
    assert!(
        matches!(err, BrokerError::PartitionOffline { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("00000000"), "{err}");
    let description = broker.describe_topic("a").await.unwrap();
    assert!(description.partitions[0].offline.is_some());
}

#[tokio::test]
async fn compaction_gaps_are_recorded_and_holes_in_compacted_topics_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    broker
        .create_topic(
            NewTopic::new("t", 1)
                .config("cleanup.policy", "compact")
                .config("segment.bytes", "512"),
        )
        .await
        .unwrap();
    // Ten keys written over and over: compaction empties the tails of most segments.
    for i in 0..200u64 {
        let r = NewRecord {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{}", i % 10))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Vec::new(),
        };
        broker
            .append("t", 0, &[r], ProducerFields::NONE)
            .await
            .unwrap();
    }
    let stats = broker.compact_topic("t").await.unwrap();
    assert!(stats.records_removed > 0);
    broker.close().await.unwrap();
    drop(broker);
    assert!(dir.path().join("t-0/offset-gaps").exists());

    // The gaps compaction left are accepted.
    let broker = reopen(dir.path()).await;
    let description = broker.describe_topic("t").await.unwrap();
    assert!(description.partitions[0].offline.is_none());
    let mut latest = std::collections::BTreeMap::new();
    let mut offset = 0;
    loop {
        let batches = broker.fetch("t", 0, offset, 4096, None).await.unwrap();
        if batches.is_empty() {
            break;
        }
        for r in batches.into_iter().flat_map(|b| b.records) {
            offset = r.offset + 1;
            latest.insert(r.key.unwrap(), r.value.unwrap());
        }
    }
    for k in 0..10u64 {
        let value = &latest[&Bytes::from(format!("key-{k}"))];
        assert_eq!(value, &Bytes::from(format!("value-{}", 190 + k)));
    }
    broker.close().await.unwrap();
    drop(broker);

    // A deleted segment holding records is not a gap compaction left.
    let segs = segments(dir.path(), "t", 0);
    let with_records = segs[1..segs.len() - 1]
        .iter()
        .rev()
        .find(|s| fs::metadata(s).unwrap().len() > 0)
        .expect("a sealed segment with records after the first")
        .clone();
    fs::remove_file(&with_records).unwrap();
    remove_indexes(&with_records);
    let broker = reopen(dir.path()).await;
    let description = broker.describe_topic("t").await.unwrap();
    assert!(
        description.partitions[0].offline.is_some(),
        "{description:?}"
    );
}

#[tokio::test]
async fn a_damaged_offsets_partition_refuses_its_groups_instead_of_forgetting_them() {
    use broker_embedded::group::{
        offsets_partition_for, CONSUMER_OFFSETS_TOPIC, OFFSETS_TOPIC_PARTITIONS,
    };
    use broker_embedded::{
        AutoOffsetReset, Consumer, ConsumerConfig, NoOpConsumerRebalanceListener, OffsetResetSpec,
    };
    let n = 60;
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path(), n).await;
    // Two groups in different partitions of the offsets topic.
    let damaged_group = "billing";
    let partition = offsets_partition_for(damaged_group, OFFSETS_TOPIC_PARTITIONS);
    let other_group = (0..)
        .map(|i| format!("other-{i}"))
        .find(|g| offsets_partition_for(g, OFFSETS_TOPIC_PARTITIONS) != partition)
        .unwrap();
    let broker = reopen(dir.path()).await;
    for offset in [10, 20, 30] {
        for group in [damaged_group, other_group.as_str()] {
            broker
                .reset_offsets(group, "b", OffsetResetSpec::ToOffset(offset))
                .await
                .unwrap();
        }
    }
    broker.close().await.unwrap();
    drop(broker);
    // The first batch of the group's offsets partition, with later commits after it.
    let segs = segments(dir.path(), CONSUMER_OFFSETS_TOPIC, partition);
    flip_byte(&segs[0], 70);

    let broker = reopen(dir.path()).await;
    let err = broker.describe_group(damaged_group).await.unwrap_err();
    match &err {
        BrokerError::GroupOffsetsOffline {
            group,
            partition: p,
            ..
        } => {
            assert_eq!((group.as_str(), *p), (damaged_group, partition));
        }
        other => panic!("expected GroupOffsetsOffline, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&segs[0].display().to_string()),
        "{err}"
    );
    // A consumer of the group is refused rather than started at auto.offset.reset.
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            group_id: Some(damaged_group.to_owned()),
            auto_offset_reset: AutoOffsetReset::Latest,
            ..ConsumerConfig::default()
        },
    );
    let polled = async {
        consumer
            .subscribe(["b"], NoOpConsumerRebalanceListener)
            .await?;
        consumer.poll(std::time::Duration::from_millis(200)).await
    }
    .await;
    assert!(
        matches!(polled, Err(BrokerError::GroupOffsetsOffline { .. })),
        "{polled:?}"
    );
    // The other group and everything else work.
    let other = broker.describe_group(&other_group).await.unwrap();
    assert_eq!(other.partitions[0].committed_offset, Some(30));
    the_rest_works(&broker, n).await;
}

// ---------------------------------------------------------------------------------------
// Damage a random file of a random partition, over many cases.

mod random_damage {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const N: u64 = 60;
    const PARTITIONS: [(&str, u32); 3] = [("a", 0), ("a", 1), ("b", 0)];

    /// A populated data dir, made once and copied for each case.
    fn template() -> &'static Path {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        DIR.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            runtime().block_on(populated(dir.path(), N));
            dir
        })
        .path()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                fs::copy(entry.path(), &target).unwrap();
            }
        }
    }

    /// Byte positions where the batches of a segment file start.
    fn batch_starts(file: &Path) -> Vec<u64> {
        let bytes = fs::read(file).unwrap();
        let mut starts = Vec::new();
        let mut at = 0usize;
        while at + 12 <= bytes.len() {
            starts.push(at as u64);
            let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
            at += 12 + len as usize;
        }
        starts
    }

    #[derive(Debug, Clone)]
    enum Damage {
        Flip { at: f64, mask: u8 },
        Truncate { at: f64 },
        Zero { at: f64, len: u16 },
        Garbage { len: u16 },
        Delete,
        ReplaceByDir,
    }

    fn damage() -> impl Strategy<Value = Damage> {
        prop_oneof![
            4 => (0.0..1.0f64, 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
            2 => (0.0..1.0f64).prop_map(|at| Damage::Truncate { at }),
            1 => (0.0..1.0f64, 1u16..200).prop_map(|(at, len)| Damage::Zero { at, len }),
            1 => (1u16..200).prop_map(|len| Damage::Garbage { len }),
            1 => Just(Damage::Delete),
            1 => Just(Damage::ReplaceByDir),
        ]
    }

    /// Applies `damage` to `file`; returns the first byte it changed (the file's length for
    /// appended garbage, 0 for a delete or a replacement).
    fn apply(file: &Path, damage: &Damage) -> u64 {
        let len = fs::metadata(file).unwrap().len();
        let pos = |at: f64| ((len as f64 * at) as u64).min(len.saturating_sub(1));
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(file)
                .unwrap()
        };
        match *damage {
            Damage::Flip { at, mask } => {
                let at = pos(at);
                if len > 0 {
                    let f = open();
                    let mut b = [0u8];
                    f.read_exact_at(&mut b, at).unwrap();
                    f.write_all_at(&[b[0] ^ mask], at).unwrap();
                }
                at
            }
            Damage::Truncate { at } => {
                let at = pos(at);
                open().set_len(at).unwrap();
                at
            }
            Damage::Zero { at, len: n } => {
                let at = pos(at);
                let n = (n as u64).min(len - at.min(len));
                open().write_all_at(&vec![0u8; n as usize], at).unwrap();
                at
            }
            Damage::Garbage { len: n } => {
                open().write_all_at(&vec![0x5au8; n as usize], len).unwrap();
                len
            }
            Damage::Delete => {
                fs::remove_file(file).unwrap();
                0
            }
            Damage::ReplaceByDir => {
                fs::remove_file(file).unwrap();
                fs::create_dir(file).unwrap();
                0
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever one file of one partition suffers, the broker opens, every other
        /// partition is whole and writable, the damaged one serves only records that were
        /// written, loses none before the damage, and any error names a file of it.
        #[test]
        fn one_damaged_file_costs_at_most_its_partition(
            which in 0usize..3,
            segment in any::<prop::sample::Index>(),
            kind in 0usize..3,
            damage in damage(),
        ) {
            let (topic, partition) = PARTITIONS[which];
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template(), dir.path());
            let segs = segments(dir.path(), topic, partition);
            let seg_index = segment.index(segs.len());
            let log_file = segs[seg_index].clone();
            let is_active = seg_index == segs.len() - 1;
            let ext = ["log", "index", "timeindex"][kind];
            let target = log_file.with_extension(ext);
            prop_assume!(target.exists());
            let starts = batch_starts(&log_file);
            let base = base_offset(&log_file);
            let at = apply(&target, &damage);

            let rt = runtime();
            rt.block_on(async {
                let broker = Broker::open(dir.path(), BrokerConfig::default()).await.unwrap();
                for (t, p) in PARTITIONS {
                    if (t, p) == (topic, partition) {
                        continue;
                    }
                    let (values, err) = read_partition(&broker, t, p).await;
                    assert!(err.is_none(), "{t}-{p}: {err:?}");
                    assert_eq!(values, expected(t, p, N));
                    broker.append(t, p, &[record(t, p, N)], ProducerFields::NONE).await.unwrap();
                }
                let (values, err) = read_partition(&broker, topic, partition).await;
                // Only records that were written, in order, from the start.
                assert_eq!(&values[..], &expected(topic, partition, N)[..values.len()]);
                let pdir = dir.path().join(format!("{topic}-{partition}"));
                match &err {
                    None => {}
                    Some(BrokerError::PartitionOffline { file, .. })
                    | Some(BrokerError::CorruptBatch { file, .. }) => {
                        assert!(file.starts_with(&pdir), "{err:?} names {}", file.display());
                    }
                    Some(other) => panic!("unexpected error {other:?}"),
                }
                if ext != "log" {
                    // An index is a hint: nothing is lost, nothing goes offline.
                    assert!(err.is_none(), "{err:?}");
                    assert_eq!(values.len() as u64, N);
                } else if err.is_none() && (values.len() as u64) < N {
                    // A silent loss only of the tail of the active segment from the batch
                    // the damage hit (a torn write), never of anything before it.
                    assert!(is_active, "lost records silently: {damage:?} on {}", target.display());
                    assert!(!matches!(damage, Damage::Delete | Damage::ReplaceByDir), "{damage:?}");
                    let hit = starts.iter().rposition(|&s| s <= at).unwrap_or(0);
                    let first_lost = base + hit as u64;
                    assert!(values.len() as u64 >= first_lost.min(N),
                        "{} records read, the damage hit offset {first_lost}", values.len());
                    if !matches!(damage, Damage::Truncate { .. } | Damage::Zero { .. }) {
                        assert_eq!(hit, starts.len() - 1, "only the last batch is a torn tail");
                    }
                }
                // The damaged partition either takes appends at its end or refuses them.
                let appended = broker
                    .append(topic, partition, &[record(topic, partition, N)], ProducerFields::NONE)
                    .await;
                match appended {
                    Ok(info) => {
                        assert!(err.is_none(), "an offline partition took an append");
                        assert_eq!(info.base_offset, values.len() as u64);
                    }
                    Err(BrokerError::PartitionOffline { .. }) => assert!(err.is_some()),
                    Err(e) => panic!("append: {e:?}"),
                }
                broker.close().await.unwrap();
            });
        }
    }
}
