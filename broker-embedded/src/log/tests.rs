//! Tests of the partition log: model-checked appends and reads across restarts, torn and
//! corrupt writes, compaction, retention, timestamps and corruption found by reads.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::segment::{file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use super::*;
use crate::config::{CleanupPolicy, TopicCompression};
use crate::record::{Header, Record, RecordBatch};
use crate::time::MockTime;

const T0: i64 = 1_700_000_000_000;

fn small_config(segment_bytes: u64) -> TopicConfig {
    TopicConfig {
        segment_bytes,
        index_interval_bytes: 128,
        ..TopicConfig::default()
    }
}

fn env(flush_policy: FlushPolicy, time: Arc<MockTime>) -> LogEnv {
    LogEnv {
        flush_policy,
        time,
        files: files::FileCache::new(64),
        read_only: false,
        eager_first_segment: true,
    }
}

fn open_with(dir: &Path, config: TopicConfig, time: &Arc<MockTime>) -> Log {
    Log::open(
        dir,
        "t",
        0,
        config,
        &env(FlushPolicy::CommitPoints, time.clone()),
    )
    .unwrap()
}

fn rec(timestamp: i64, key: Option<&str>, value: Option<&str>) -> NewRecord {
    NewRecord {
        timestamp,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    }
}

/// Every batch from the log start on, read in small pieces.
fn read_all_batches(log: &Log) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let batches = log.read(offset, 700, u64::MAX).unwrap();
        let Some(last) = batches.last() else { break };
        offset = last.records.last().unwrap().offset + 1;
        for batch in batches {
            assert!(!batch.records.is_empty());
            out.push(batch);
        }
    }
    out
}

/// Every record from the log start up to where the log is offline (the read there fails
/// with `PartitionOffline`).
fn read_below_damage(log: &Log) -> Vec<Record> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        match log.read(offset, 700, u64::MAX) {
            Ok(batches) if batches.is_empty() => break,
            Ok(batches) => {
                for batch in batches {
                    offset = batch.records.last().unwrap().offset + 1;
                    out.extend(batch.records);
                }
            }
            Err(BrokerError::PartitionOffline { .. }) => break,
            Err(e) => panic!("read at {offset}: {e}"),
        }
    }
    out
}

/// Every record from the log start on.
fn read_all(log: &Log) -> Vec<Record> {
    read_all_batches(log)
        .into_iter()
        .flat_map(|b| b.records)
        .collect()
}

/// The record a `NewRecord` became at `offset` (CreateTime).
fn stored(offset: u64, r: &NewRecord) -> Record {
    Record {
        offset,
        timestamp: r.timestamp,
        key: r.key.clone(),
        value: r.value.clone(),
        headers: r.headers.clone(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn is_offline<T>(result: Result<T>) -> bool {
    matches!(result, Err(BrokerError::PartitionOffline { .. }))
}

fn is_corrupt(result: Result<Vec<RecordBatch>>) -> bool {
    matches!(result, Err(BrokerError::CorruptBatch { .. }))
}

// ---------------------------------------------------------------------------------------
// 1. Appends and reads against a model, across a reopen.

fn arb_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn arb_record() -> impl Strategy<Value = NewRecord> {
    (
        0i64..1_000_000,
        arb_bytes(24),
        arb_bytes(160),
        prop::collection::vec(
            ("[a-z]{0,6}", arb_bytes(8)).prop_map(|(key, value)| Header { key, value }),
            0..3,
        ),
    )
        .prop_map(|(timestamp, key, value, headers)| NewRecord {
            timestamp,
            key,
            value,
            headers,
        })
}

fn arb_codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

/// Appends `records` as one batch compressed with `codec`.
fn append_with(
    log: &mut Log,
    records: &[NewRecord],
    producer: ProducerFields,
    codec: Compression,
) -> AppendInfo {
    let refs: Vec<RecordRef<'_>> = records.iter().map(NewRecord::as_record_ref).collect();
    log.append_refs_with(&refs, producer, codec).unwrap()
}

fn check_reads(log: &Log, model: &[Record], reads: &[(prop::sample::Index, usize)]) {
    assert_eq!(log.log_end_offset(), model.len() as u64);
    assert_eq!(read_all(log), model);
    for (index, max_bytes) in reads {
        let offset = index.index(model.len() + 1) as u64;
        let batches = log.read(offset, *max_bytes, u64::MAX).unwrap();
        let got: Vec<&Record> = batches.iter().flat_map(|b| &b.records).collect();
        if offset == model.len() as u64 {
            assert!(got.is_empty());
            continue;
        }
        assert!(
            !got.is_empty(),
            "a read below the log end returns at least one record"
        );
        for (i, r) in got.iter().enumerate() {
            assert_eq!(**r, model[offset as usize + i]);
        }
        for b in &batches {
            assert!(b.info.base_offset <= b.records[0].offset);
            assert_eq!(b.info.last_offset, b.records.last().unwrap().offset);
        }
    }
    // A read never returns a batch at or above max_offset.
    if model.len() > 2 {
        let max_offset = model.len() as u64 / 2;
        for b in log.read(0, usize::MAX, max_offset).unwrap() {
            assert!(b.info.base_offset < max_offset);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn appends_read_back_exactly_before_and_after_reopen(
        batches in prop::collection::vec(
            (arb_codec(), prop::collection::vec(arb_record(), 1..6)),
            1..30,
        ),
        reads in prop::collection::vec((any::<prop::sample::Index>(), 1usize..3000), 1..12),
        segment_bytes in 300u64..3000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let time = MockTime::new(T0);
        let config = small_config(segment_bytes);
        let mut log = open_with(dir.path(), config.clone(), &time);
        let mut model = Vec::new();
        for (codec, batch) in &batches {
            let refs: Vec<RecordRef<'_>> = batch.iter().map(NewRecord::as_record_ref).collect();
            let info = log.append_refs_with(&refs, ProducerFields::NONE, *codec).unwrap();
            prop_assert_eq!(info.base_offset, model.len() as u64);
            prop_assert_eq!(info.last_offset, (model.len() + batch.len() - 1) as u64);
            for r in batch {
                model.push(stored(model.len() as u64, r));
            }
        }
        let total: u64 = log.size_bytes();
        if total > 2 * segment_bytes {
            prop_assert!(log.segment_count() > 1);
        }
        check_reads(&log, &model, &reads);
        log.close().unwrap();
        drop(log);

        let log = open_with(dir.path(), config, &time);
        prop_assert_eq!(log.size_bytes(), total);
        check_reads(&log, &model, &reads);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Torn and corrupt writes in the active segment.

/// Writes three segments' worth of batches and then a small last batch; returns the model
/// and the last batch's base offset and byte range in the active segment file.
fn write_for_recovery(dir: &Path) -> (Vec<Record>, u64, PathBuf, u64, u64) {
    write_for_recovery_with(dir, Compression::None)
}

/// [`write_for_recovery`] with its batches compressed with `codec`.
fn write_for_recovery_with(
    dir: &Path,
    codec: Compression,
) -> (Vec<Record>, u64, PathBuf, u64, u64) {
    let time = MockTime::new(T0);
    let mut log = open_with(dir, small_config(600), &time);
    let mut model = Vec::new();
    // At least 12 batches, and then until the active segment has a batch and room for the
    // last one (compressed batches are smaller).
    for i in 0.. {
        if i >= 12
            && log.segment_count() >= 3
            && !log.active.is_empty()
            && log.active.size() + 120 <= 600
        {
            break;
        }
        let batch: Vec<NewRecord> = (0..3)
            .map(|j| {
                rec(
                    T0 + i,
                    Some(&format!("key-{i}-{j}")),
                    Some(&"v".repeat(20 + j as usize)),
                )
            })
            .collect();
        let info = append_with(&mut log, &batch, ProducerFields::NONE, codec);
        for (k, r) in batch.iter().enumerate() {
            model.push(stored(info.base_offset + k as u64, r));
        }
    }
    assert!(log.segment_count() >= 3);
    // The active segment holds earlier batches too, so the torn batch is not its first.
    assert!(!log.active.is_empty());
    let position = log.active.size();
    let last = vec![rec(T0 + 99, Some("k"), Some("last"))];
    let path = log.active.path().to_path_buf();
    let info = append_with(&mut log, &last, ProducerFields::NONE, codec);
    model.push(stored(info.base_offset, &last[0]));
    let end = log.active.size();
    assert_eq!(
        log.active.path(),
        path,
        "the last batch is in the same segment"
    );
    log.close().unwrap();
    // The process died before its close got to record the log's end: the last batch may be
    // a torn write.
    fs::remove_file(dir.join(bounds::BOUNDS_FILE)).unwrap();
    (model, info.base_offset, path, position, end)
}

#[test]
fn a_damaged_last_batch_after_a_clean_close_is_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (model, last_base, path, position, end) = write_for_recovery(dir.path());
    // The clean close recorded the log's end this time.
    bounds::write(dir.path(), 0, last_base + 1, true).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(end - 3)
        .unwrap();
    let time = MockTime::new(T0);
    let log = open_with(dir.path(), small_config(600), &time);
    assert_eq!(fs::metadata(&path).unwrap().len(), end - 3, "not truncated");
    let damage = log.damage().cloned().expect("offline");
    assert_eq!((damage.offset, damage.position), (last_base, position));
    assert!(damage.reason.contains("clean close"), "{}", damage.reason);
    assert_eq!(read_below_damage(&log), &model[..last_base as usize]);
}

fn check_recovered(dir: &Path, model: &[Record], last_base: u64, position: u64) {
    let time = MockTime::new(T0);
    let mut log = open_with(dir, small_config(600), &time);
    assert_eq!(log.log_end_offset(), last_base);
    assert_eq!(fs::metadata(log.active.path()).unwrap().len(), position);
    assert_eq!(read_all(&log), &model[..last_base as usize]);
    let new = vec![rec(T0 + 500, Some("after"), Some("recovery"))];
    let info = log.append(&new, ProducerFields::NONE).unwrap();
    assert_eq!(info.base_offset, last_base);
    let batches = log.read(last_base, 1000, u64::MAX).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].records, vec![stored(last_base, &new[0])]);
}

#[test]
fn a_torn_last_batch_is_truncated_at_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (model, last_base, path, position, end) = write_for_recovery(dir.path());
    let name = path.file_name().unwrap();
    assert!(end - position < 120, "keep the last batch small");
    for cut in position..end {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        OpenOptions::new()
            .write(true)
            .open(copy.path().join(name))
            .unwrap()
            .set_len(cut)
            .unwrap();
        check_recovered(copy.path(), &model, last_base, position);
    }
    // Untouched, the last batch is there.
    let time = MockTime::new(T0);
    let log = open_with(dir.path(), small_config(600), &time);
    assert_eq!(read_all(&log), model);
}

#[test]
fn a_torn_or_corrupt_compressed_last_batch_is_truncated() {
    for codec in &Compression::ALL[1..] {
        let dir = tempfile::tempdir().unwrap();
        let (model, last_base, path, position, end) = write_for_recovery_with(dir.path(), *codec);
        let name = path.file_name().unwrap();
        let stored = fs::read(&path).unwrap();
        assert_eq!(
            BatchHeader::parse(&stored[position as usize..])
                .unwrap()
                .compression(),
            *codec
        );
        for at in position..end {
            // Cut at `at`, or its byte flipped.
            for cut in [true, false] {
                let copy = tempfile::tempdir().unwrap();
                copy_dir(dir.path(), copy.path());
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(copy.path().join(name))
                    .unwrap();
                if cut {
                    file.set_len(at).unwrap();
                } else {
                    file.write_all_at(&[stored[at as usize] ^ 0xff], at)
                        .unwrap();
                }
                drop(file);
                check_recovered(copy.path(), &model, last_base, position);
            }
        }
        let time = MockTime::new(T0);
        let log = open_with(dir.path(), small_config(600), &time);
        assert_eq!(read_all(&log), model, "{codec}");
    }
}

#[test]
fn a_corrupt_last_batch_is_truncated_for_every_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (model, last_base, path, position, end) = write_for_recovery(dir.path());
    let name = path.file_name().unwrap();
    for at in position..end {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(copy.path().join(name))
            .unwrap();
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0xff], at).unwrap();
        drop(file);
        check_recovered(copy.path(), &model, last_base, position);
    }
}

#[test]
fn leftovers_stray_indexes_and_an_empty_trailing_segment_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(300), &time);
    let mut model = Vec::new();
    for i in 0..10 {
        let r = rec(T0 + i, Some("k"), Some(&"x".repeat(60)));
        let info = log
            .append(std::slice::from_ref(&r), ProducerFields::NONE)
            .unwrap();
        model.push(stored(info.base_offset, &r));
    }
    log.close().unwrap();
    let end = log.log_end_offset();
    drop(log);

    // A crash right after a roll leaves an empty last segment; a crash during compaction a
    // `.log.cleaned` file; an interrupted index write a `.tmp` file; a deleted segment may
    // leave its indexes behind.
    let p = dir.path();
    fs::write(p.join(file_name(end, LOG_SUFFIX)), b"").unwrap();
    fs::write(p.join(file_name(0, ".log.cleaned")), b"partial").unwrap();
    fs::write(p.join(file_name(0, ".index.tmp")), b"partial").unwrap();
    fs::write(p.join(file_name(end + 1000, INDEX_SUFFIX)), b"stray").unwrap();
    fs::write(p.join(file_name(end + 1000, TIME_INDEX_SUFFIX)), b"stray").unwrap();
    fs::write(p.join("someone-elses-file.tmp"), b"kept").unwrap();

    let mut log = open_with(p, small_config(300), &time);
    assert_eq!(log.log_end_offset(), end);
    assert!(log.active.is_empty());
    assert_eq!(read_all(&log), model);
    assert!(!p.join(file_name(0, ".log.cleaned")).exists());
    assert!(!p.join(file_name(0, ".index.tmp")).exists());
    assert!(!p.join(file_name(end + 1000, INDEX_SUFFIX)).exists());
    assert!(!p.join(file_name(end + 1000, TIME_INDEX_SUFFIX)).exists());
    assert!(p.join("someone-elses-file.tmp").exists());
    let info = log
        .append(&[rec(T0, None, Some("next"))], ProducerFields::NONE)
        .unwrap();
    assert_eq!(info.base_offset, end);

    // A segment file whose whole content is garbage, written after the last clean close
    // (a crash before the close recorded the log's end), is emptied.
    log.close().unwrap();
    drop(log);
    fs::remove_file(p.join(bounds::BOUNDS_FILE)).unwrap();
    fs::write(p.join(file_name(end, LOG_SUFFIX)), vec![0xab; 100]).unwrap();
    let log = open_with(p, small_config(300), &time);
    assert_eq!(log.log_end_offset(), end);
    assert_eq!(read_all(&log), model);
}

#[test]
fn overlapping_segments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(300), &time);
    for i in 0..10 {
        log.append(
            &[rec(T0 + i, None, Some(&"x".repeat(80)))],
            ProducerFields::NONE,
        )
        .unwrap();
    }
    log.close().unwrap();
    drop(log);
    // A segment starting inside the previous one's offsets.
    fs::write(dir.path().join(file_name(1, LOG_SUFFIX)), b"").unwrap();
    let mut log = open_with(dir.path(), small_config(300), &time);
    let damage = log.damage().cloned().expect("offline");
    assert_eq!(damage.file, dir.path().join(file_name(1, LOG_SUFFIX)));
    assert!(
        damage.reason.contains("ends at offset"),
        "{}",
        damage.reason
    );
    assert!(matches!(
        log.append(&[rec(T0, None, Some("x"))], ProducerFields::NONE),
        Err(BrokerError::PartitionOffline { .. })
    ));
    // Offset 0 (before the overlap) is still readable.
    assert_eq!(log.read(0, 1, u64::MAX).unwrap()[0].records[0].offset, 0);
}

// ---------------------------------------------------------------------------------------
// 3. Compaction.

fn compact_config() -> TopicConfig {
    TopicConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        segment_bytes: 400,
        index_interval_bytes: 100,
        min_compaction_lag_ms: 0,
        delete_retention_ms: 10_000,
        ..TopicConfig::default()
    }
}

/// Latest value per key (`None` for a tombstone) over `records`.
fn latest_values(records: &[Record]) -> BTreeMap<Bytes, Option<Bytes>> {
    let mut latest = BTreeMap::new();
    for r in records {
        latest.insert(r.key.clone().unwrap(), r.value.clone());
    }
    latest
}

/// What compaction of the range below `end` must leave of `model`.
fn expected_after_clean(model: &[Record], end: u64, tombstones_expired: bool) -> Vec<Record> {
    let mut last_in_range: BTreeMap<&Bytes, u64> = BTreeMap::new();
    for r in model.iter().filter(|r| r.offset < end) {
        last_in_range.insert(r.key.as_ref().unwrap(), r.offset);
    }
    model
        .iter()
        .filter(|r| {
            r.offset >= end
                || (last_in_range[r.key.as_ref().unwrap()] == r.offset
                    && !(r.value.is_none() && tombstones_expired))
        })
        .cloned()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn compaction_keeps_the_latest_value_per_key_and_offsets(
        batches in prop::collection::vec(
            (
                arb_codec(),
                prop::collection::vec((0u8..10, prop::option::weighted(0.8, 0usize..60)), 1..5),
            ),
            8..40,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let time = MockTime::new(T0);
        let config = compact_config();
        let mut log = open_with(dir.path(), config.clone(), &time);
        let mut model: Vec<Record> = Vec::new();
        // The codec each offset was written with.
        let mut codecs: Vec<Compression> = Vec::new();
        for (codec, batch) in &batches {
            let records: Vec<NewRecord> = batch
                .iter()
                .map(|&(key, value)| NewRecord {
                    timestamp: time.now_ms(),
                    key: Some(Bytes::from(format!("key-{key}"))),
                    value: value.map(|n| Bytes::from("v".repeat(n) + &model.len().to_string())),
                    headers: vec![Header::new("h", Bytes::from(vec![key]))],
                })
                .collect();
            let info = append_with(&mut log, &records, ProducerFields::NONE, *codec);
            for (i, r) in records.iter().enumerate() {
                model.push(stored(info.base_offset + i as u64, r));
                codecs.push(*codec);
            }
            time.advance(1);
        }
        let end = log.active.base_offset();
        let active_bytes = fs::read(log.active.path()).unwrap();
        let segments_before = log.segment_count();

        // Before delete.retention.ms: tombstones stay.
        let stats = log.clean(true).unwrap();
        let expected = expected_after_clean(&model, end, false);
        // A rewritten batch keeps the codec its records were written with.
        for batch in read_all_batches(&log) {
            for r in &batch.records {
                prop_assert_eq!(batch.info.compression, codecs[r.offset as usize]);
            }
        }
        let compacted = read_all(&log);
        prop_assert_eq!(&compacted, &expected);
        prop_assert_eq!(latest_values(&compacted), latest_values(&model));
        prop_assert_eq!(stats.records_removed as usize, model.len() - expected.len());
        prop_assert_eq!(fs::read(log.active.path()).unwrap(), active_bytes.clone());
        prop_assert_eq!(log.log_end_offset(), model.len() as u64);
        prop_assert_eq!(log.log_start_offset(), 0);
        prop_assert!(log.segment_count() <= segments_before);
        prop_assert_eq!(log.cleaner_checkpoint(), end);
        if segments_before > 1 {
            prop_assert!(stats.bytes_after <= stats.bytes_before);
        }
        // Cleaning again finds nothing to do, and unforced it does not even run.
        prop_assert_eq!(log.clean(true).unwrap().records_removed, 0);
        prop_assert_eq!(log.clean(false).unwrap(), CleanStats::default());

        // After delete.retention.ms: tombstones in the cleaned range go.
        time.advance(config.delete_retention_ms + 1000);
        log.clean(true).unwrap();
        let expected = expected_after_clean(&model, end, true);
        prop_assert_eq!(read_all(&log), expected.clone());
        prop_assert_eq!(fs::read(log.active.path()).unwrap(), active_bytes);
        log.close().unwrap();
        drop(log);

        // The same after a reopen.
        let log = open_with(dir.path(), config, &time);
        prop_assert_eq!(read_all(&log), expected);
        prop_assert_eq!(log.log_end_offset(), model.len() as u64);
        prop_assert_eq!(log.log_start_offset(), 0);
        prop_assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
    }
}

#[test]
fn min_compaction_lag_keeps_young_segments_uncleaned() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        min_compaction_lag_ms: 60_000,
        segment_bytes: 1, // every batch gets its own segment
        ..compact_config()
    };
    let mut log = open_with(dir.path(), config, &time);
    // Old: offsets 0, 1. Young: offsets 2, 3 (1 s ago). Active: offset 4 (now).
    log.append(
        &[rec(T0 - 120_000, Some("k"), Some("old-1"))],
        ProducerFields::NONE,
    )
    .unwrap();
    log.append(
        &[rec(T0 - 120_000, Some("k"), Some("old-2"))],
        ProducerFields::NONE,
    )
    .unwrap();
    log.append(
        &[rec(T0 - 1000, Some("k"), Some("young-1"))],
        ProducerFields::NONE,
    )
    .unwrap();
    log.append(
        &[rec(T0 - 1000, Some("k"), Some("young-2"))],
        ProducerFields::NONE,
    )
    .unwrap();
    log.append(&[rec(T0, Some("k"), Some("active"))], ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.segment_count(), 5);
    let young: Vec<Vec<u8>> = [2, 3]
        .iter()
        .map(|&b| fs::read(dir.path().join(file_name(b, LOG_SUFFIX))).unwrap())
        .collect();

    let stats = log.clean(true).unwrap();
    assert_eq!(stats.records_removed, 1);
    let values: Vec<(u64, Bytes)> = read_all(&log)
        .into_iter()
        .map(|r| (r.offset, r.value.unwrap()))
        .collect();
    let expect = |v: &[(u64, &'static str)]| -> Vec<(u64, Bytes)> {
        v.iter()
            .map(|&(o, s)| (o, Bytes::from_static(s.as_bytes())))
            .collect()
    };
    // Offset 0 is superseded within the cleanable range; the young segments are untouched.
    assert_eq!(
        values,
        expect(&[(1, "old-2"), (2, "young-1"), (3, "young-2"), (4, "active")])
    );
    assert_eq!(log.log_start_offset(), 0, "the emptied first segment stays");
    for (i, &b) in [2u64, 3].iter().enumerate() {
        assert_eq!(
            fs::read(dir.path().join(file_name(b, LOG_SUFFIX))).unwrap(),
            young[i]
        );
    }
    assert_eq!(log.cleaner_checkpoint(), 2);

    // Once the young segments age past the lag, they are cleaned too.
    time.advance(60_000);
    log.clean(true).unwrap();
    let values: Vec<(u64, Bytes)> = read_all(&log)
        .into_iter()
        .map(|r| (r.offset, r.value.unwrap()))
        .collect();
    assert_eq!(values, expect(&[(3, "young-2"), (4, "active")]));
    // Emptied segments in the middle are deleted.
    assert_eq!(log.segment_count(), 3);
    assert!(matches!(
        log.read(0, 100, u64::MAX).map(|b| b[0].records[0].offset),
        Ok(3)
    ));
}

#[test]
fn dirty_ratio_decides_unforced_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        min_cleanable_dirty_ratio: 0.5,
        segment_bytes: 1,
        ..compact_config()
    };
    let mut log = open_with(dir.path(), config, &time);
    for i in 0..4 {
        log.append(
            &[rec(T0, Some("k"), Some(&format!("v{i}")))],
            ProducerFields::NONE,
        )
        .unwrap();
    }
    // Everything sealed is dirty: it runs.
    assert_eq!(log.clean(false).unwrap().records_removed, 2);
    // One new sealed segment next to the cleaned one (both small): dirty ratio 1/2 or more.
    log.append(&[rec(T0, Some("k"), Some("v4"))], ProducerFields::NONE)
        .unwrap();
    let stats = log.clean(false).unwrap();
    assert_eq!(stats.records_removed, 1);
    // Nothing new: nothing to do.
    assert_eq!(log.clean(false).unwrap(), CleanStats::default());
    // Checkpoint survives a reopen.
    let checkpoint = log.cleaner_checkpoint();
    log.close().unwrap();
    drop(log);
    let log = open_with(dir.path(), compact_config(), &time);
    assert_eq!(log.cleaner_checkpoint(), checkpoint);
}

#[test]
fn control_batches_and_producer_fields_survive_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        segment_bytes: 1,
        ..compact_config()
    };
    let mut log = open_with(dir.path(), config, &time);
    let producer = ProducerFields {
        producer_id: 7,
        producer_epoch: 2,
        base_sequence: 10,
        transactional: true,
        control: false,
    };
    let batch = [
        rec(T0, Some("a"), Some("1")),
        rec(T0, Some("b"), Some("1")),
        rec(T0, Some("c"), Some("1")),
    ];
    log.append(&batch, producer).unwrap();
    let marker = ProducerFields {
        control: true,
        base_sequence: -1,
        ..producer
    };
    // A commit marker (control key version 0, type 1): the transaction's records stay.
    log.append(&[rec(T0, Some("\0\0\0\u{1}"), Some("marker"))], marker)
        .unwrap();
    log.append(&[rec(T0, Some("a"), Some("2"))], ProducerFields::NONE)
        .unwrap();
    log.append(&[rec(T0, Some("z"), Some("active"))], ProducerFields::NONE)
        .unwrap();
    log.clean(true).unwrap();
    let batches = read_all_batches(&log);
    // The first batch lost offset 0 ("a" is superseded): it now spans 1..=2 with the
    // sequence of offset 1.
    let first = &batches[0];
    assert_eq!((first.info.base_offset, first.info.last_offset), (1, 2));
    assert_eq!(first.info.base_sequence, 11);
    assert_eq!(first.info.producer_id, 7);
    assert_eq!(first.info.producer_epoch, 2);
    assert!(first.info.transactional && !first.info.control);
    let marker_batch = &batches[1];
    assert!(marker_batch.info.control);
    assert_eq!(marker_batch.records[0].offset, 3);
}

#[test]
fn compaction_of_compressed_batches_rewrites_with_the_same_codec_and_keeps_whole_ones() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        segment_bytes: 1, // every batch gets its own segment
        ..compact_config()
    };
    let mut log = open_with(dir.path(), config.clone(), &time);
    let producer = ProducerFields {
        producer_id: 3,
        producer_epoch: 0,
        base_sequence: 0,
        transactional: false,
        control: false,
    };
    // Per codec, a batch of a, b, c whose "a" a later batch supersedes, and a batch of keys
    // of its own that stays whole.
    let mut seq = 0;
    let mut whole = Vec::new();
    for codec in Compression::ALL {
        let n = codec.id();
        let losing = [
            rec(T0, Some("a"), Some(&format!("old-{n}"))),
            rec(T0, Some(&format!("b{n}")), Some("1")),
            rec(T0, Some(&format!("c{n}")), Some("1")),
        ];
        append_with(
            &mut log,
            &losing,
            ProducerFields {
                base_sequence: seq,
                ..producer
            },
            codec,
        );
        seq += 3;
        let keeping = [
            rec(T0, Some(&format!("d{n}")), Some("1")),
            rec(T0, Some(&format!("e{n}")), Some("1")),
        ];
        let info = append_with(
            &mut log,
            &keeping,
            ProducerFields {
                base_sequence: seq,
                ..producer
            },
            codec,
        );
        seq += 2;
        whole.push((info.base_offset, codec));
    }
    append_with(
        &mut log,
        &[rec(T0, Some("a"), Some("new"))],
        ProducerFields::NONE,
        Compression::Gzip,
    );
    append_with(
        &mut log,
        &[rec(T0, Some("z"), Some("active"))],
        ProducerFields::NONE,
        Compression::None,
    );
    let kept_files: Vec<Vec<u8>> = whole
        .iter()
        .map(|&(base, _)| fs::read(dir.path().join(file_name(base, LOG_SUFFIX))).unwrap())
        .collect();

    let stats = log.clean(true).unwrap();
    assert_eq!(stats.records_removed, 5);
    let batches = read_all_batches(&log);
    for codec in Compression::ALL {
        let n = u64::from(codec.id() as u16);
        // The batch that lost "a" now spans b, c, with the same codec and sequences.
        let rewritten = batches
            .iter()
            .find(|b| b.info.base_offset == n * 5 + 1)
            .unwrap();
        assert_eq!(rewritten.info.compression, codec);
        assert_eq!(
            (rewritten.info.last_offset, rewritten.info.base_sequence),
            (n * 5 + 2, n as i32 * 5 + 1)
        );
        assert_eq!(rewritten.records.len(), 2);
        let file = fs::read(dir.path().join(file_name(n * 5, LOG_SUFFIX))).unwrap();
        assert_eq!(BatchHeader::parse(&file).unwrap().compression(), codec);
    }
    // Batches that lost nothing are the same bytes.
    for (i, &(base, codec)) in whole.iter().enumerate() {
        let now = fs::read(dir.path().join(file_name(base, LOG_SUFFIX))).unwrap();
        assert_eq!(now, kept_files[i], "{codec}");
    }
    let latest: Vec<(Bytes, Bytes)> = read_all(&log)
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(b"a"))
        .map(|r| (r.key.unwrap(), r.value.unwrap()))
        .collect();
    assert_eq!(latest, vec![(Bytes::from("a"), Bytes::from("new"))]);

    // The same after a reopen (the rewritten batches are validated on the way).
    let before = read_all(&log);
    log.close().unwrap();
    drop(log);
    let log = open_with(dir.path(), config, &time);
    assert_eq!(read_all(&log), before);
}

#[test]
fn the_topics_compression_type_overrides_the_producers_codec() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(1 << 20), &time);
    let one = |v: &str| [rec(T0, Some("k"), Some(v))];
    // `producer` (the default): the producer's codec.
    for codec in Compression::ALL {
        append_with(&mut log, &one(codec.name()), ProducerFields::NONE, codec);
    }
    // A codec: that codec, whatever the producer asks for.
    for (topic, sent) in [
        (Compression::Zstd, Compression::None),
        (Compression::Zstd, Compression::Gzip),
        (Compression::None, Compression::Lz4),
        (Compression::Snappy, Compression::Snappy),
    ] {
        log.set_config(TopicConfig {
            compression_type: TopicCompression::Codec(topic),
            ..small_config(1 << 20)
        });
        append_with(&mut log, &one("x"), ProducerFields::NONE, sent);
    }
    // A transaction marker is never compressed.
    log.set_config(TopicConfig {
        compression_type: TopicCompression::Codec(Compression::Gzip),
        ..small_config(1 << 20)
    });
    let txn = ProducerFields {
        producer_id: 1,
        producer_epoch: 0,
        base_sequence: 0,
        transactional: true,
        control: false,
    };
    append_with(&mut log, &one("in txn"), txn, Compression::None);
    log.append_marker(1, 0, true, 0).unwrap();
    let codecs: Vec<(Compression, bool)> = read_all_batches(&log)
        .iter()
        .map(|b| (b.info.compression, b.info.control))
        .collect();
    use Compression::*;
    assert_eq!(
        codecs,
        vec![
            (None, false),
            (Gzip, false),
            (Snappy, false),
            (Lz4, false),
            (Zstd, false),
            (Zstd, false),
            (Zstd, false),
            (None, false),
            (Snappy, false),
            (Gzip, false),
            (None, true),
        ]
    );
    assert_eq!(log.last_stable_offset(), log.log_end_offset());
    // Timestamps are found inside compressed batches.
    assert_eq!(log.offset_for_timestamp(T0).unwrap(), Some((0, T0)));
}

#[test]
fn compaction_removes_aborted_records_and_keeps_the_committed_value() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        segment_bytes: 1,
        ..compact_config()
    };
    let mut log = open_with(dir.path(), config, &time);
    let txn = |epoch| ProducerFields {
        producer_id: 9,
        producer_epoch: epoch,
        base_sequence: -1,
        transactional: true,
        control: false,
    };
    // Committed "k" = 1, then an aborted "k" = 2, then an open "k" = 3 of another producer.
    log.append(&[rec(T0, Some("k"), Some("1"))], txn(0))
        .unwrap();
    log.append_marker(9, 0, true, 0).unwrap();
    log.append(&[rec(T0, Some("k"), Some("2"))], txn(0))
        .unwrap();
    log.append_marker(9, 0, false, 0).unwrap();
    let open = ProducerFields {
        producer_id: 10,
        ..txn(0)
    };
    log.append(&[rec(T0, Some("k"), Some("3"))], open).unwrap();
    log.append(&[rec(T0, Some("z"), Some("active"))], ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.last_stable_offset(), 4);
    log.clean(true).unwrap();
    let values: Vec<(u64, Option<Bytes>)> = read_all_batches(&log)
        .into_iter()
        .filter(|b| !b.info.control)
        .flat_map(|b| b.records)
        .map(|r| (r.offset, r.value))
        .collect();
    // The aborted record is gone; the committed one stays; nothing at or after the LSO was
    // compacted.
    assert_eq!(
        values,
        vec![
            (0, Some(Bytes::from("1"))),
            (4, Some(Bytes::from("3"))),
            (5, Some(Bytes::from("active"))),
        ]
    );
    // The producer state rebuilt on open agrees.
    drop(log);
    let log = open_with(dir.path(), compact_config(), &time);
    assert_eq!(log.last_stable_offset(), 4);
    assert_eq!(log.producers.aborted().len(), 0);
}

// ---------------------------------------------------------------------------------------
// 4. Retention.

#[test]
fn retention_by_time_deletes_old_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        retention_ms: Some(10_000),
        ..small_config(300)
    };
    let mut log = open_with(dir.path(), config.clone(), &time);
    let mut model = Vec::new();
    for _ in 0..20 {
        let r = rec(time.now_ms(), None, Some(&"x".repeat(80)));
        let info = log
            .append(std::slice::from_ref(&r), ProducerFields::NONE)
            .unwrap();
        model.push(stored(info.base_offset, &r));
        time.advance(1000);
    }
    let segments = log.segment_count();
    assert!(segments >= 5);
    // Now = T0 + 20 s: segments whose records are all older than T0 + 10 s go.
    let expired = count_expired(&log, time.now_ms() - 10_000);
    assert!(expired > 0);
    assert_eq!(log.enforce_retention().unwrap(), expired);
    assert_eq!(log.segment_count(), segments - expired);
    let start = log.log_start_offset();
    assert!(start > 0);
    // Every remaining sealed segment has a record young enough; the oldest deleted did not.
    assert!(model[start as usize - 1].timestamp < time.now_ms() - 10_000);
    assert!(log
        .sealed
        .values()
        .all(|s| s.max_timestamp().unwrap() >= time.now_ms() - 10_000));
    assert!(matches!(
        log.read(start - 1, 1000, u64::MAX),
        Err(BrokerError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log), &model[start as usize..]);
    log.close().unwrap();
    drop(log);

    let mut log = open_with(dir.path(), config, &time);
    assert_eq!(log.log_start_offset(), start);
    assert!(matches!(
        log.read(0, 1000, u64::MAX),
        Err(BrokerError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log), &model[start as usize..]);

    // Far in the future every sealed segment goes, never the active one.
    time.advance(1_000_000);
    log.enforce_retention().unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), log.active.base_offset());
    assert_eq!(log.log_end_offset(), model.len() as u64);
}

fn count_expired(log: &Log, horizon: i64) -> usize {
    log.sealed
        .values()
        .take_while(|s| s.max_timestamp().unwrap() < horizon)
        .count()
}

#[test]
fn retention_by_bytes_follows_kafkas_rule_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut config = TopicConfig {
        retention_ms: None,
        ..small_config(500)
    };
    let mut log = open_with(dir.path(), config.clone(), &time);
    let mut model = Vec::new();
    for _ in 0..40 {
        let r = rec(T0, Some("k"), Some(&"y".repeat(90)));
        let info = log
            .append(std::slice::from_ref(&r), ProducerFields::NONE)
            .unwrap();
        model.push(stored(info.base_offset, &r));
    }
    // No limit: nothing goes.
    assert_eq!(log.enforce_retention().unwrap(), 0);
    let total = log.size_bytes();
    let limit = total / 2;
    config.retention_bytes = Some(limit);
    log.set_config(config.clone());
    let deleted = log.enforce_retention().unwrap();
    assert!(deleted > 0);
    let first = log.sealed.values().next().unwrap();
    // Deleting one more would take the log below the limit.
    assert!(log.size_bytes() >= limit);
    assert!(log.size_bytes() - first.size() < limit);
    let start = log.log_start_offset();
    assert_eq!(read_all(&log), &model[start as usize..]);
    assert!(matches!(
        log.read(start - 1, 10, u64::MAX),
        Err(BrokerError::OffsetOutOfRange { .. })
    ));
    log.close().unwrap();
    drop(log);
    let log = open_with(dir.path(), config, &time);
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(read_all(&log), &model[start as usize..]);

    // Compact-only topics are not subject to retention.
    let mut log = log;
    log.set_config(TopicConfig {
        cleanup_policy: CleanupPolicy::COMPACT,
        retention_bytes: Some(1),
        ..small_config(500)
    });
    assert_eq!(log.enforce_retention().unwrap(), 0);
}

// ---------------------------------------------------------------------------------------
// 5. Offsets by timestamp.

fn earliest_at_or_after(model: &[Record], ts: i64) -> Option<(u64, i64)> {
    model
        .iter()
        .find(|r| r.timestamp >= ts)
        .map(|r| (r.offset, r.timestamp))
}

#[test]
fn offset_for_timestamp_across_segments_and_after_rebuilding_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        index_interval_bytes: 64,
        ..small_config(700)
    };
    let mut log = open_with(dir.path(), config.clone(), &time);
    let mut model = Vec::new();
    // Timestamps that mostly grow but jump back now and then (CreateTime is the producer's).
    let mut rng_state = 12345u64;
    let mut next = || {
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng_state >> 33) as i64
    };
    for i in 0..200i64 {
        let n = 1 + (next() % 3) as usize;
        let batch: Vec<NewRecord> = (0..n)
            .map(|_| {
                let jitter = next() % 50 - 35;
                rec(T0 + i * 10 + jitter, Some("k"), Some("value"))
            })
            .collect();
        let info = log.append(&batch, ProducerFields::NONE).unwrap();
        for (k, r) in batch.iter().enumerate() {
            model.push(stored(info.base_offset + k as u64, r));
        }
    }
    assert!(log.segment_count() > 5);
    let min = model.iter().map(|r| r.timestamp).min().unwrap();
    let max = model.iter().map(|r| r.timestamp).max().unwrap();
    let check = |log: &Log| {
        for ts in (min - 2..=max + 2).step_by(3) {
            assert_eq!(
                log.offset_for_timestamp(ts).unwrap(),
                earliest_at_or_after(&model, ts),
                "timestamp {ts}"
            );
        }
        assert_eq!(log.offset_for_timestamp(max + 1).unwrap(), None);
        assert_eq!(
            log.offset_for_timestamp(i64::MIN).unwrap(),
            Some((0, model[0].timestamp))
        );
    };
    check(&log);
    log.close().unwrap();
    drop(log);

    let log = open_with(dir.path(), config.clone(), &time);
    assert_eq!(log.rebuilt_at_open, 0);
    assert!(log.sealed.values().all(|s| s.index_entries().1 > 0));
    check(&log);
    drop(log);

    // Without index files they are rebuilt by scanning, and written back.
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        for f in files_with_suffix(dir.path(), suffix) {
            fs::remove_file(f).unwrap();
        }
    }
    let log = open_with(dir.path(), config.clone(), &time);
    let sealed = log.segment_count() - 1;
    assert_eq!(log.rebuilt_at_open, sealed);
    check(&log);
    assert_eq!(read_all(&log), model);
    assert_eq!(files_with_suffix(dir.path(), INDEX_SUFFIX).len(), sealed);
    assert_eq!(
        files_with_suffix(dir.path(), TIME_INDEX_SUFFIX).len(),
        sealed
    );
    drop(log);

    // Damaged or stale index files are rebuilt too.
    let index_files = files_with_suffix(dir.path(), INDEX_SUFFIX);
    fs::write(&index_files[0], b"garbage").unwrap();
    let time_files = files_with_suffix(dir.path(), TIME_INDEX_SUFFIX);
    let mut bytes = fs::read(&time_files[1]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&time_files[1], bytes).unwrap();
    let log = open_with(dir.path(), config, &time);
    assert_eq!(log.rebuilt_at_open, 2);
    check(&log);
}

#[test]
fn log_append_time_replaces_record_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..small_config(1 << 20)
    };
    let mut log = open_with(dir.path(), config, &time);
    let info = log
        .append(
            &[rec(5, None, Some("a")), rec(6, None, Some("b"))],
            ProducerFields::NONE,
        )
        .unwrap();
    assert_eq!(info.log_append_time, Some(T0));
    assert_eq!(info.timestamp, T0);
    time.advance(100);
    log.append(&[rec(7, None, Some("c"))], ProducerFields::NONE)
        .unwrap();
    let records = read_all(&log);
    let ts: Vec<i64> = records.iter().map(|r| r.timestamp).collect();
    assert_eq!(ts, vec![T0, T0, T0 + 100]);
    assert_eq!(
        log.offset_for_timestamp(T0 + 1).unwrap(),
        Some((2, T0 + 100))
    );
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, T0)));
}

// ---------------------------------------------------------------------------------------
// 6. Corruption in a sealed segment found by a read.

#[test]
fn reads_of_a_batch_corrupted_in_a_sealed_segment_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(400), &time);
    for i in 0..12 {
        let batch = [
            rec(T0 + i, Some("key"), Some("value one")),
            rec(T0 + i, None, Some("value two")),
        ];
        log.append(&batch, ProducerFields::NONE).unwrap();
    }
    assert!(log.segment_count() >= 3);
    let (&base, segment) = log.sealed.iter().nth(1).unwrap();
    let path = segment.path().to_path_buf();
    let header_batch = log.read(base, 1, u64::MAX).unwrap();
    let first_batch_len = {
        let bytes = fs::read(&path).unwrap();
        BatchHeader::parse(&bytes).unwrap().size() as u64
    };
    assert_eq!(header_batch[0].info.base_offset, base);

    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // The base offset (bytes 0..8) is outside the CRC, as in Kafka; every other byte of the
    // batch is checked.
    for at in 8..first_batch_len {
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x5a], at).unwrap();
        let result = log.read(base, 10_000, u64::MAX);
        assert!(is_corrupt(result), "byte {at}");
        file.write_all_at(&byte, at).unwrap();
    }
    // A read from an earlier segment does not reach it.
    assert!(log.read(0, 10, u64::MAX).is_ok());
    // Intact again.
    assert_eq!(
        log.read(base, 10_000, u64::MAX).unwrap()[0]
            .info
            .base_offset,
        base
    );

    // The error names the topic, partition, offset and file.
    file.write_all_at(&[0xff], first_batch_len - 1).unwrap();
    match log.read(base, 10_000, u64::MAX) {
        Err(BrokerError::CorruptBatch {
            topic,
            partition,
            offset,
            file,
            ..
        }) => {
            assert_eq!((topic.as_str(), partition, offset), ("t", 0, base));
            assert_eq!(file, path);
        }
        other => panic!("expected CorruptBatch, got {other:?}"),
    }
    assert!(matches!(
        log.offset_for_timestamp(T0 + 3),
        Err(BrokerError::CorruptBatch { .. }) | Ok(_)
    ));
}

#[test]
fn a_corrupt_sealed_segment_without_indexes_is_kept_and_reported_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(400), &time);
    for i in 0..12 {
        log.append(
            &[rec(T0 + i, Some("k"), Some(&"z".repeat(50)))],
            ProducerFields::NONE,
        )
        .unwrap();
    }
    let (&base, segment) = log.sealed.iter().next().unwrap();
    let path = segment.path().to_path_buf();
    let next_base = *log.sealed.keys().nth(1).unwrap();
    log.close().unwrap();
    drop(log);
    let len = fs::metadata(&path).unwrap().len();
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xee], len - 3).unwrap();
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        fs::remove_file(dir.path().join(file_name(base, suffix))).unwrap();
    }
    let mut log = open_with(dir.path(), small_config(400), &time);
    // Not truncated: the bytes stay, the partition is offline from the bad batch on, and
    // what comes before it stays readable.
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
    let damage = log.damage().cloned().expect("offline");
    assert_eq!(damage.file, path);
    assert_eq!(damage.offset, next_base - 1);
    assert!(is_offline(log.read(next_base - 1, 10_000, u64::MAX)));
    assert!(is_offline(log.read(next_base, 10_000, u64::MAX)));
    let before = read_below_damage(&log);
    assert_eq!(before.last().map(|r| r.offset), Some(next_base - 2));
    assert!(matches!(
        log.append(&[rec(T0, Some("k"), Some("v"))], ProducerFields::NONE),
        Err(BrokerError::PartitionOffline { .. })
    ));
    // Closing writes no index that would hide the damage from the next open.
    log.close().unwrap();
    drop(log);
    assert!(!dir.path().join(file_name(base, INDEX_SUFFIX)).exists());
    let log = open_with(dir.path(), small_config(400), &time);
    assert_eq!(log.damage().map(|d| d.offset), Some(next_base - 1));
}

#[test]
fn an_index_entry_resealed_at_the_wrong_batch_is_only_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(4000), &time);
    let mut model = Vec::new();
    for i in 0..120 {
        let r = rec(
            T0 + i,
            Some("k"),
            Some(&format!("value-{i:03}-{}", "p".repeat(20))),
        );
        let info = log
            .append(std::slice::from_ref(&r), ProducerFields::NONE)
            .unwrap();
        model.push(stored(info.base_offset, &r));
    }
    assert!(log.segment_count() >= 2);
    log.close().unwrap();
    drop(log);
    let base = 0;
    let index_path = dir.path().join(file_name(base, INDEX_SUFFIX));
    let time_index_path = dir.path().join(file_name(base, TIME_INDEX_SUFFIX));
    let original = fs::read(&index_path).unwrap();
    let log_len = fs::metadata(dir.path().join(file_name(base, LOG_SUFFIX)))
        .unwrap()
        .len();
    let (summary, index, _) = index::load(&index_path, &time_index_path, base, log_len).unwrap();
    let entries = index.entries().to_vec();
    assert!(entries.len() >= 4, "{entries:?}");
    // Entry 1 moved to entry 2's batch (and entry 2 dropped), CRC and all re-sealed: the
    // file is valid, and wrong.
    let mut forged = index::OffsetIndex::default();
    for (i, &(offset, position)) in entries.iter().enumerate() {
        match i {
            1 => forged.push(offset, entries[2].1),
            2 => {}
            _ => forged.push(offset, position),
        }
    }
    fs::write(&index_path, index::encode_offset_index(&summary, &forged)).unwrap();
    let mut log = open_with(dir.path(), small_config(4000), &time);
    let (target, _) = entries[1];
    let batches = log.read(u64::from(target), 1, u64::MAX).unwrap();
    assert_eq!(batches[0].records[0], model[target as usize]);
    assert_eq!(read_all(&log), model);
    // The read had the index rebuilt as it should be.
    log.repair_index_misses();
    assert_eq!(fs::read(&index_path).unwrap(), original);
}

// ---------------------------------------------------------------------------------------
// Appends, rolls, reads, flushing.

#[test]
fn appends_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(1 << 20), &time);
    let err = log.append(&[], ProducerFields::NONE).unwrap_err();
    assert!(
        matches!(err, BrokerError::InvalidRecord { ref topic, .. } if topic == "t"),
        "{err}"
    );

    log.set_config(TopicConfig {
        max_message_bytes: 200,
        ..small_config(1 << 20)
    });
    let err = log
        .append(
            &[rec(T0, None, Some(&"x".repeat(300)))],
            ProducerFields::NONE,
        )
        .unwrap_err();
    assert!(err.to_string().contains("max.message.bytes"), "{err}");
    assert!(err.to_string().contains("topic t"), "{err}");
    assert_eq!(log.log_end_offset(), 0);

    log.set_config(compact_config());
    let err = log
        .append(
            &[rec(T0, Some("k"), Some("v")), rec(T0, None, Some("v"))],
            ProducerFields::NONE,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("compacted topic requires a key"),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), 0);
    // Null values (tombstones) are fine.
    log.append(&[rec(T0, Some("k"), None)], ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn segments_roll_by_size_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let config = TopicConfig {
        segment_ms: 60_000,
        ..small_config(1 << 20)
    };
    let mut log = open_with(dir.path(), config, &time);
    log.append(&[rec(T0, None, Some("a"))], ProducerFields::NONE)
        .unwrap();
    time.advance(60_000);
    log.append(&[rec(T0, None, Some("b"))], ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.segment_count(), 1, "not older than segment.ms yet");
    time.advance(1);
    log.append(&[rec(T0, None, Some("c"))], ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.active.base_offset(), 2);
    // The sealed segment got its index files.
    assert!(dir.path().join(file_name(0, INDEX_SUFFIX)).exists());
    assert!(dir.path().join(file_name(0, TIME_INDEX_SUFFIX)).exists());

    // By size: a batch that would pass segment.bytes goes to a new segment, unless the
    // active segment is empty.
    log.set_config(small_config(150));
    let big = rec(T0, None, Some(&"x".repeat(200)));
    log.append(std::slice::from_ref(&big), ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.segment_count(), 3);
    log.append(std::slice::from_ref(&big), ProducerFields::NONE)
        .unwrap();
    assert_eq!(log.segment_count(), 4);
    assert_eq!(read_all(&log).len(), 5);
}

#[test]
fn reads_honour_max_bytes_max_offset_and_positions_inside_batches() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(1 << 20), &time);
    let batch: Vec<NewRecord> = (0..10)
        .map(|i| rec(T0 + i, None, Some("0123456789")))
        .collect();
    for _ in 0..5 {
        log.append(&batch, ProducerFields::NONE).unwrap();
    }
    let batch_size = log.size_bytes() as usize / 5;
    // At least one whole batch, however small max_bytes is.
    let one = log.read(0, 1, u64::MAX).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].records.len(), 10);
    // Whole batches up to max_bytes.
    assert_eq!(log.read(0, 2 * batch_size, u64::MAX).unwrap().len(), 2);
    assert_eq!(log.read(0, 2 * batch_size + 1, u64::MAX).unwrap().len(), 2);
    // From inside a batch: the batch, without the records before the offset.
    let mid = log.read(13, 1, u64::MAX).unwrap();
    assert_eq!(mid[0].info.base_offset, 10);
    assert_eq!(mid[0].records.first().unwrap().offset, 13);
    assert_eq!(mid[0].records.len(), 7);
    // max_offset is an exclusive bound on base offsets.
    let capped = log.read(0, usize::MAX, 30).unwrap();
    assert_eq!(capped.len(), 3);
    assert!(log.read(30, usize::MAX, 30).unwrap().is_empty());
    assert_eq!(log.read(25, usize::MAX, 21).unwrap().len(), 0);
    // The log end is an empty read; past it is out of range.
    assert!(log.read(50, 100, u64::MAX).unwrap().is_empty());
    assert!(matches!(
        log.read(51, 100, u64::MAX),
        Err(BrokerError::OffsetOutOfRange {
            log_end_offset: 50,
            ..
        })
    ));
}

#[test]
fn a_failed_fsync_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(dir.path(), small_config(1 << 20), &time);
    log.append(&[rec(T0, None, Some("a"))], ProducerFields::NONE)
        .unwrap();
    log.fail_next_sync = true;
    assert!(matches!(log.commit_point(), Err(BrokerError::Io { .. })));
    assert!(matches!(
        log.append(&[rec(T0, None, Some("b"))], ProducerFields::NONE),
        Err(BrokerError::LogPoisoned { .. })
    ));
    assert!(matches!(log.flush(), Err(BrokerError::LogPoisoned { .. })));
    // Reads still work.
    assert_eq!(read_all(&log).len(), 1);
    drop(log);
    // A reopen recovers.
    let mut log = open_with(dir.path(), small_config(1 << 20), &time);
    log.append(&[rec(T0, None, Some("b"))], ProducerFields::NONE)
        .unwrap();
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn every_append_policy_fsyncs_each_append() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = Log::open(
        dir.path(),
        "t",
        0,
        small_config(1 << 20),
        &env(FlushPolicy::EveryAppend, time),
    )
    .unwrap();
    log.append(&[rec(T0, None, Some("a"))], ProducerFields::NONE)
        .unwrap();
    log.fail_next_sync = true;
    assert!(matches!(
        log.append(&[rec(T0, None, Some("b"))], ProducerFields::NONE),
        Err(BrokerError::Io { .. })
    ));
    assert!(matches!(
        log.append(&[rec(T0, None, Some("c"))], ProducerFields::NONE),
        Err(BrokerError::LogPoisoned { .. })
    ));
}

#[test]
fn on_close_policy_skips_commit_point_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = Log::open(
        dir.path(),
        "t",
        0,
        small_config(1 << 20),
        &env(FlushPolicy::OnClose, time),
    )
    .unwrap();
    log.append(&[rec(T0, None, Some("a"))], ProducerFields::NONE)
        .unwrap();
    log.fail_next_sync = true;
    log.commit_point().unwrap();
    assert!(log.close().is_err(), "close fsyncs");
}

/// Measures reading: `cargo test -p broker-embedded --release -- --ignored read_throughput
/// --nocapture`.
#[test]
#[ignore = "a measurement, run by hand in release mode"]
fn read_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let time = MockTime::new(T0);
    let mut log = open_with(
        dir.path(),
        TopicConfig {
            segment_bytes: 64 << 20,
            ..TopicConfig::default()
        },
        &time,
    );
    let value = Bytes::from(vec![b'v'; 100]);
    let batch: Vec<NewRecord> = (0..500)
        .map(|i| NewRecord {
            timestamp: T0 + i,
            key: Some(Bytes::from(format!("key-{:04}", i % 1000))),
            value: Some(value.clone()),
            headers: Vec::new(),
        })
        .collect();
    let n_batches = 4000;
    let start = std::time::Instant::now();
    for _ in 0..n_batches {
        log.append(&batch, ProducerFields::NONE).unwrap();
    }
    let append = start.elapsed();
    let total = (n_batches * batch.len()) as f64;
    let start = std::time::Instant::now();
    let mut offset = 0;
    let mut count = 0usize;
    while offset < log.log_end_offset() {
        let batches = log.read(offset, 1 << 20, u64::MAX).unwrap();
        for b in &batches {
            count += b.records.len();
            offset = b.info.last_offset + 1;
        }
    }
    let read = start.elapsed();
    assert_eq!(count as f64, total);
    println!(
        "append: {:.2} M records/s; read: {:.2} M records/s ({} segments)",
        total / append.as_secs_f64() / 1e6,
        total / read.as_secs_f64() / 1e6,
        log.segment_count()
    );
}

// ---------------------------------------------------------------------------------------
// Format fixtures.

/// The fixture as written today: segments, indexes, the cleaner checkpoint and the record
/// of compaction's gaps (`offset-gaps`).
const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/log/fixtures/v2");
/// The same partition written before compaction recorded its gaps: still read back.
const FIXTURE_DIR_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/log/fixtures/v1");

/// Writes the fixture partition: keyed records with headers, a transactional batch and its
/// commit marker, a tombstone, a compaction pass, and more appends after it.
fn write_fixture(dir: &Path) {
    let time = MockTime::new(T0);
    let config = TopicConfig {
        cleanup_policy: CleanupPolicy::COMPACT_DELETE,
        retention_ms: None,
        segment_bytes: 300,
        index_interval_bytes: 100,
        ..TopicConfig::default()
    };
    let mut log = open_with(dir, config, &time);
    let with_header = |mut r: NewRecord| {
        r.headers = vec![
            Header::new("trace", Bytes::from_static(b"42")),
            Header {
                key: "empty".into(),
                value: None,
            },
        ];
        r
    };
    log.append(
        &[
            with_header(rec(T0, Some("a"), Some("a1"))),
            rec(T0 + 1, Some("b"), Some("b1")),
            rec(T0 - 5, Some("c"), Some("c1")),
        ],
        ProducerFields::NONE,
    )
    .unwrap();
    let producer = ProducerFields {
        producer_id: 5,
        producer_epoch: 1,
        base_sequence: 0,
        transactional: true,
        control: false,
    };
    log.append(
        &[
            rec(T0 + 10, Some("a"), Some("a2")),
            rec(T0 + 11, Some("d"), Some("d1")),
        ],
        producer,
    )
    .unwrap();
    // A commit marker: key = version 0, type 1 (commit); value = version 0, coordinator epoch 0.
    let marker = NewRecord {
        timestamp: T0 + 12,
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        headers: Vec::new(),
    };
    log.append(
        &[marker],
        ProducerFields {
            control: true,
            base_sequence: -1,
            ..producer
        },
    )
    .unwrap();
    log.append(&[rec(T0 + 20, Some("b"), None)], ProducerFields::NONE)
        .unwrap();
    for (i, key) in ["e", "f", "g", "h", "e", "f"].iter().enumerate() {
        let value = format!("{key}-{i}-{}", "x".repeat(40));
        log.append(
            &[rec(T0 + 30 + i as i64, Some(key), Some(&value))],
            ProducerFields::NONE,
        )
        .unwrap();
    }
    time.advance(1000);
    log.clean(true).unwrap();
    log.append(
        &[rec(T0 + 100, Some("z"), Some("after"))],
        ProducerFields::NONE,
    )
    .unwrap();
    log.close().unwrap();
}

fn dir_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
#[ignore = "rewrites the fixtures; run by hand only when a format version changes"]
fn regenerate_format_fixtures() {
    let dir = Path::new(FIXTURE_DIR);
    let _ = fs::remove_dir_all(dir);
    write_fixture(dir);
}

#[test]
fn format_fixtures_read_back_and_are_still_written_the_same() {
    let fixture = Path::new(FIXTURE_DIR);
    let stored = dir_files(fixture);
    assert!(stored.contains_key("cleaner-offset-checkpoint"));
    assert!(stored.contains_key("offset-gaps"));
    assert!(stored.keys().filter(|k| k.ends_with(".log")).count() >= 3);

    // The current code writes exactly these bytes.
    let fresh = tempfile::tempdir().unwrap();
    write_fixture(fresh.path());
    let written = dir_files(fresh.path());
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &stored {
        assert!(written[name] == *bytes, "{name} is written differently now");
    }

    // And reads them, and those written before gaps were recorded: index files accepted,
    // records as written.
    for fixture in [fixture, Path::new(FIXTURE_DIR_V1)] {
        check_fixture_reads_back(fixture);
    }
}

fn check_fixture_reads_back(fixture: &Path) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(fixture, copy.path());
    let time = MockTime::new(T0 + 1000);
    let log = open_with(copy.path(), TopicConfig::default(), &time);
    assert_eq!(log.rebuilt_at_open, 0);
    assert_eq!(log.cleaner_checkpoint(), log.active.base_offset());
    let records = read_all(&log);
    let summary: Vec<(u64, Option<&[u8]>)> = records
        .iter()
        .map(|r| (r.offset, r.value.as_deref()))
        .collect();
    let value = |s: &'static str| Some(s.as_bytes());
    assert_eq!(summary[0], (2, value("c1")));
    assert_eq!(summary[1], (3, value("a2")));
    assert_eq!(summary[2], (4, value("d1")));
    assert_eq!(summary[3], (5, value("\0\0\0\0\0\0")));
    assert_eq!(summary[4], (6, None));
    assert_eq!(summary.last(), Some(&(13, value("after"))));
    assert_eq!(log.log_end_offset(), 14);
    let batches = read_all_batches(&log);
    assert!(batches.iter().any(|b| b.info.control));
    assert!(batches
        .iter()
        .any(|b| b.info.transactional && b.info.producer_id == 5));
    assert_eq!(
        log.offset_for_timestamp(T0 + 31).unwrap(),
        Some((8, T0 + 31))
    );
}
