//! Tests of the versioned stores: Kafka's `RocksDBVersionedStoreTest`
//! expectations, a brute-force model, the changelog and restoration, and
//! the persistent backends.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use crate::{
    open_versioned_store, ChangeLoggingVersionedStore, ChangelogSink, InMemoryVersionedStore,
    KeyValueStore, KvVersionedStore, LocalData, PutOutcome, StoreBackend, StoreError,
    VersionedKeyValueStore, VersionedRecord, VersionedWrite,
};

const HISTORY_RETENTION: i64 = 300_000;
const SEGMENT_INTERVAL: i64 = HISTORY_RETENTION / 3;
const BASE_TIMESTAMP: i64 = 10;
/// Kafka's `PUT_RETURN_CODE_VALID_TO_UNDEFINED`: the put is the latest.
const LATEST: i64 = -1;
/// Kafka's `PUT_RETURN_CODE_NOT_PUT`.
const NOT_PUT: i64 = i64::MIN;

fn store() -> InMemoryVersionedStore {
    InMemoryVersionedStore::in_memory("versioned", HISTORY_RETENTION)
}

fn put(
    store: &mut impl VersionedKeyValueStore,
    key: &str,
    value: Option<&str>,
    ts: i64,
    code: i64,
) {
    let outcome = store
        .put(
            Bytes::copy_from_slice(key.as_bytes()),
            value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            ts,
        )
        .unwrap();
    assert_eq!(
        outcome.kafka_code(),
        code,
        "put of {key}={value:?} at {ts}: {outcome:?}"
    );
}

fn text(record: Option<VersionedRecord<Bytes>>) -> Option<(String, i64, Option<i64>)> {
    record.map(|r| {
        (
            String::from_utf8(r.value.to_vec()).unwrap(),
            r.timestamp,
            r.valid_to,
        )
    })
}

fn latest(store: &impl VersionedKeyValueStore, key: &str) -> Option<(String, i64)> {
    text(store.get(key.as_bytes()).unwrap()).map(|(v, ts, valid_to)| {
        assert_eq!(valid_to, None);
        (v, ts)
    })
}

/// `get_as_of`: value, timestamp and valid-to (`LATEST` for none).
fn as_of(store: &impl VersionedKeyValueStore, key: &str, t: i64) -> Option<(String, i64, i64)> {
    text(store.get_as_of(key.as_bytes(), t).unwrap())
        .map(|(v, ts, valid_to)| (v, ts, valid_to.unwrap_or(LATEST)))
}

fn some(v: &str, ts: i64, valid_to: i64) -> Option<(String, i64, i64)> {
    Some((v.to_owned(), ts, valid_to))
}

fn delete(store: &mut impl VersionedKeyValueStore, key: &str, ts: i64) -> Option<(String, i64)> {
    text(
        store
            .delete(Bytes::copy_from_slice(key.as_bytes()), ts)
            .unwrap(),
    )
    .map(|(v, t, _)| (v, t))
}

#[test]
fn should_put_latest() {
    let mut s = store();
    put(&mut s, "k", Some("v"), BASE_TIMESTAMP, LATEST);
    put(&mut s, "k", Some("v2"), BASE_TIMESTAMP + 1, LATEST);
    assert_eq!(latest(&s, "k"), Some(("v2".into(), BASE_TIMESTAMP + 1)));
    assert_eq!(
        as_of(&s, "k", BASE_TIMESTAMP),
        some("v", BASE_TIMESTAMP, BASE_TIMESTAMP + 1)
    );
    assert_eq!(
        as_of(&s, "k", BASE_TIMESTAMP + 1),
        some("v2", BASE_TIMESTAMP + 1, LATEST)
    );
    assert_eq!(
        as_of(&s, "k", BASE_TIMESTAMP + 2),
        some("v2", BASE_TIMESTAMP + 1, LATEST)
    );
}

#[test]
fn should_put_null_as_latest() {
    let mut s = store();
    put(&mut s, "k", None, BASE_TIMESTAMP, LATEST);
    put(&mut s, "k", None, BASE_TIMESTAMP + 1, LATEST);
    assert_eq!(latest(&s, "k"), None);
    for t in BASE_TIMESTAMP..BASE_TIMESTAMP + 3 {
        assert_eq!(as_of(&s, "k", t), None);
    }
}

#[test]
fn should_put_older_with_non_null_latest() {
    let mut s = store();
    let b = BASE_TIMESTAMP;
    put(&mut s, "k", Some("v"), b, LATEST);
    put(&mut s, "k", Some("v2"), b - 2, b);
    put(&mut s, "k", Some("v1"), b - 1, b);
    put(&mut s, "k", Some("v4"), b - 4, b - 2);
    assert_eq!(latest(&s, "k"), Some(("v".into(), b)));
    assert_eq!(as_of(&s, "k", b), some("v", b, LATEST));
    assert_eq!(as_of(&s, "k", b - 1), some("v1", b - 1, b));
    assert_eq!(as_of(&s, "k", b - 2), some("v2", b - 2, b - 1));
    assert_eq!(as_of(&s, "k", b - 3), some("v4", b - 4, b - 2));
}

#[test]
fn should_put_older_with_null_latest() {
    let mut s = store();
    let b = BASE_TIMESTAMP;
    put(&mut s, "k", None, b, LATEST);
    put(&mut s, "k", Some("v2"), b - 2, b);
    put(&mut s, "k", Some("v1"), b - 1, b);
    put(&mut s, "k", Some("v4"), b - 4, b - 2);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", b), None);
    assert_eq!(as_of(&s, "k", b - 1), some("v1", b - 1, b));
    assert_eq!(as_of(&s, "k", b - 2), some("v2", b - 2, b - 1));
    assert_eq!(as_of(&s, "k", b - 3), some("v4", b - 4, b - 2));
}

#[test]
fn should_put_older_null_with_non_null_latest() {
    let mut s = store();
    let b = BASE_TIMESTAMP;
    put(&mut s, "k", Some("v"), b, LATEST);
    put(&mut s, "k", None, b - 2, b);
    put(&mut s, "k", None, b - 1, b);
    put(&mut s, "k", None, b - 4, b - 2);
    put(&mut s, "k", Some("v5"), b - 5, b - 4);
    put(&mut s, "k", Some("v3"), b - 3, b - 2);
    put(&mut s, "k", None, b - 6, b - 5);
    assert_eq!(latest(&s, "k"), Some(("v".into(), b)));
    assert_eq!(as_of(&s, "k", b), some("v", b, LATEST));
    assert_eq!(as_of(&s, "k", b - 1), None);
    assert_eq!(as_of(&s, "k", b - 2), None);
    assert_eq!(as_of(&s, "k", b - 3), some("v3", b - 3, b - 2));
    assert_eq!(as_of(&s, "k", b - 4), None);
    assert_eq!(as_of(&s, "k", b - 5), some("v5", b - 5, b - 4));
    assert_eq!(as_of(&s, "k", b - 6), None);
}

#[test]
fn should_put_older_null_with_null_latest() {
    let mut s = store();
    let b = BASE_TIMESTAMP;
    put(&mut s, "k", None, b, LATEST);
    put(&mut s, "k", None, b - 2, b);
    put(&mut s, "k", None, b - 1, b);
    put(&mut s, "k", None, b - 4, b - 2);
    put(&mut s, "k", Some("v3"), b - 3, b - 2);
    put(&mut s, "k", Some("v5"), b - 5, b - 4);
    put(&mut s, "k", None, b - 6, b - 5);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", b), None);
    assert_eq!(as_of(&s, "k", b - 1), None);
    assert_eq!(as_of(&s, "k", b - 2), None);
    assert_eq!(as_of(&s, "k", b - 3), some("v3", b - 3, b - 2));
    assert_eq!(as_of(&s, "k", b - 4), None);
    assert_eq!(as_of(&s, "k", b - 5), some("v5", b - 5, b - 4));
    assert_eq!(as_of(&s, "k", b - 6), None);
}

#[test]
fn should_put_repeat_timestamp_as_latest() {
    let mut s = store();
    let b = BASE_TIMESTAMP;
    put(&mut s, "k", Some("to_be_replaced"), b, LATEST);
    put(&mut s, "k", Some("b"), b, LATEST);
    assert_eq!(latest(&s, "k"), Some(("b".into(), b)));
    assert_eq!(as_of(&s, "k", b), some("b", b, LATEST));
    assert_eq!(as_of(&s, "k", b - 1), None);
    put(&mut s, "k", None, b, LATEST);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", b), None);
    assert_eq!(as_of(&s, "k", b - 1), None);
    put(&mut s, "k", None, b, LATEST);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", b), None);
    put(&mut s, "k", Some("b"), b, LATEST);
    assert_eq!(latest(&s, "k"), Some(("b".into(), b)));
    assert_eq!(as_of(&s, "k", b), some("b", b, LATEST));
    assert_eq!(as_of(&s, "k", b - 1), None);
}

/// The records of Kafka's `shouldPutRepeatTimestamps` and
/// `shouldRestoreWithNullsAndRepeatTimestamps`, with the valid-to each put
/// returns.
fn repeat_timestamp_records() -> Vec<(Option<&'static str>, i64, i64)> {
    let si = SEGMENT_INTERVAL;
    vec![
        (Some("to_be_replaced"), si + 20, LATEST),
        (None, si - 10, si + 20),
        (Some("to_be_replaced"), si - 10, si + 20),
        (None, si - 10, si + 20),
        (Some("to_be_replaced"), si - 1, si + 20),
        (Some("to_be_replaced"), si + 1, si + 20),
        (None, si - 1, si + 1),
        (None, si + 1, si + 20),
        (None, si + 10, si + 20),
        (None, si + 5, si + 10),
        (Some("vp5"), si + 5, si + 10),
        (Some("to_be_replaced"), si - 5, si - 1),
        (Some("vn5"), si - 5, si - 1),
        (None, si + 20, LATEST),
        (None, si + 20, LATEST),
        (Some("vn6"), si - 6, si - 5),
    ]
}

/// The reads Kafka checks after the records above (and after
/// `shouldMoveRecordToOlderSegmentWithNullsDuringPut`'s).
fn check_vp5_vn5_vn6(s: &impl VersionedKeyValueStore) {
    let si = SEGMENT_INTERVAL;
    assert_eq!(latest(s, "k"), None);
    assert_eq!(as_of(s, "k", si + 30), None);
    assert_eq!(as_of(s, "k", si + 15), None);
    assert_eq!(as_of(s, "k", si + 6), some("vp5", si + 5, si + 10));
    assert_eq!(as_of(s, "k", si + 2), None);
    assert_eq!(as_of(s, "k", si), None);
    assert_eq!(as_of(s, "k", si - 1), None);
    assert_eq!(as_of(s, "k", si - 5), some("vn5", si - 5, si - 1));
    assert_eq!(as_of(s, "k", si - 6), some("vn6", si - 6, si - 5));
    assert_eq!(as_of(s, "k", si - 8), None);
}

#[test]
fn should_put_repeat_timestamps() {
    let mut s = store();
    for (value, ts, code) in repeat_timestamp_records() {
        put(&mut s, "k", value, ts, code);
    }
    check_vp5_vn5_vn6(&s);
}

#[test]
fn should_put_into_multiple_segments() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", None, si - 20, LATEST);
    put(&mut s, "k", Some("vn10"), si - 10, LATEST);
    put(&mut s, "k", None, si - 1, LATEST);
    put(&mut s, "k", None, si + 1, LATEST);
    put(&mut s, "k", Some("vp10"), si + 10, LATEST);
    put(&mut s, "k", None, si + 20, LATEST);
    check_multiple_segments(&s);
}

fn check_multiple_segments(s: &impl VersionedKeyValueStore) {
    let si = SEGMENT_INTERVAL;
    assert_eq!(latest(s, "k"), None);
    assert_eq!(as_of(s, "k", si + 30), None);
    assert_eq!(as_of(s, "k", si + 15), some("vp10", si + 10, si + 20));
    assert_eq!(as_of(s, "k", si + 5), None);
    assert_eq!(as_of(s, "k", si + 2), None);
    assert_eq!(as_of(s, "k", si), None);
    assert_eq!(as_of(s, "k", si - 1), None);
    assert_eq!(as_of(s, "k", si - 5), some("vn10", si - 10, si - 1));
    assert_eq!(as_of(s, "k", si - 15), None);
}

#[test]
fn should_move_record_to_older_segment_during_put() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", Some("vp20"), si + 20, LATEST);
    put(&mut s, "k", Some("vp10"), si + 10, si + 20);
    put(&mut s, "k", Some("vn10"), si - 10, si + 10);
    put(&mut s, "k", Some("vn2"), si - 2, si + 10);
    put(&mut s, "k", Some("vn1"), si - 1, si + 10);
    put(&mut s, "k", Some("vp1"), si + 1, si + 10);
    check_vp20_to_vn10(&s);
}

fn check_vp20_to_vn10(s: &impl VersionedKeyValueStore) {
    let si = SEGMENT_INTERVAL;
    assert_eq!(latest(s, "k"), Some(("vp20".into(), si + 20)));
    assert_eq!(as_of(s, "k", si + 30), some("vp20", si + 20, LATEST));
    assert_eq!(as_of(s, "k", si + 15), some("vp10", si + 10, si + 20));
    assert_eq!(as_of(s, "k", si + 5), some("vp1", si + 1, si + 10));
    assert_eq!(as_of(s, "k", si), some("vn1", si - 1, si + 1));
    assert_eq!(as_of(s, "k", si - 1), some("vn1", si - 1, si + 1));
    assert_eq!(as_of(s, "k", si - 2), some("vn2", si - 2, si - 1));
    assert_eq!(as_of(s, "k", si - 5), some("vn10", si - 10, si - 2));
}

#[test]
fn should_move_record_to_older_segment_with_nulls_during_put() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", None, si + 20, LATEST);
    put(&mut s, "k", None, si - 1, si + 20);
    put(&mut s, "k", None, si + 1, si + 20);
    put(&mut s, "k", None, si - 10, si - 1);
    put(&mut s, "k", None, si + 10, si + 20);
    put(&mut s, "k", Some("vp5"), si + 5, si + 10);
    put(&mut s, "k", Some("vn5"), si - 5, si - 1);
    put(&mut s, "k", Some("vn6"), si - 6, si - 5);
    check_vp5_vn5_vn6(&s);
}

#[test]
fn should_fall_through_to_existing_older_segment_as_latest_during_put() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", None, si - 5, LATEST);
    put(&mut s, "k", Some("vn6"), si - 6, si - 5);
    put(&mut s, "k", Some("vp20"), si + 20, LATEST);
    put(&mut s, "k", None, si + 10, si + 20);
    put(&mut s, "k", None, si - 1, si + 10);
    put(&mut s, "k", Some("vn2"), si - 2, si - 1);
    assert_eq!(latest(&s, "k"), Some(("vp20".into(), si + 20)));
    assert_eq!(as_of(&s, "k", si + 30), some("vp20", si + 20, LATEST));
    assert_eq!(as_of(&s, "k", si + 12), None);
    assert_eq!(as_of(&s, "k", si), None);
    assert_eq!(as_of(&s, "k", si - 1), None);
    assert_eq!(as_of(&s, "k", si - 2), some("vn2", si - 2, si - 1));
    assert_eq!(as_of(&s, "k", si - 5), None);
    assert_eq!(as_of(&s, "k", si - 6), some("vn6", si - 6, si - 5));
}

#[test]
fn should_put_non_latest_tombstone_with_valid_to() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", Some("vp30"), si + 30, LATEST);
    put(&mut s, "k", None, si - 10, si + 30);
    put(&mut s, "k", Some("vn5"), si - 5, si + 30);
    put(&mut s, "k", Some("vn1"), si - 1, si + 30);
    put(&mut s, "k", None, si - 2, si - 1);
    assert_eq!(latest(&s, "k"), Some(("vp30".into(), si + 30)));
    assert_eq!(as_of(&s, "k", si + 10), some("vn1", si - 1, si + 30));
    assert_eq!(as_of(&s, "k", si - 1), some("vn1", si - 1, si + 30));
    assert_eq!(as_of(&s, "k", si - 2), None);
    assert_eq!(as_of(&s, "k", si - 5), some("vn5", si - 5, si - 2));
    assert_eq!(as_of(&s, "k", si - 10), None);
}

#[test]
fn should_delete() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", Some("vp20"), si + 20, LATEST);
    put(&mut s, "k", Some("vp10"), si + 10, si + 20);
    put(&mut s, "k", Some("vn10"), si - 10, si + 10);
    put(&mut s, "k", Some("vn2"), si - 2, si + 10);
    assert_eq!(delete(&mut s, "k", si - 5), Some(("vn10".into(), si - 10)));
    assert_eq!(delete(&mut s, "k", si + 10), Some(("vp10".into(), si + 10)));
    assert_eq!(delete(&mut s, "k", si + 10), None);
    assert_eq!(delete(&mut s, "k", si + 25), Some(("vp20".into(), si + 20)));
    assert_eq!(latest(&s, "k"), None);
}

#[test]
fn should_not_put_expired() {
    let mut s = store();
    let r = HISTORY_RETENTION;
    put(&mut s, "k", Some("v"), r + 10, LATEST);
    // The grace period (the history retention) has not elapsed.
    put(&mut s, "k1", Some("v1"), 10, LATEST);
    assert_eq!(latest(&s, "k1"), Some(("v1".into(), 10)));
    // It has: the put does not take place.
    put(&mut s, "k2", Some("v2"), 9, NOT_PUT);
    assert_eq!(latest(&s, "k2"), None);
}

#[test]
fn should_not_delete_expired() {
    let mut s = store();
    let r = HISTORY_RETENTION;
    put(&mut s, "k1", Some("v1"), 1, LATEST);
    put(&mut s, "k2", Some("v2"), 1, LATEST);
    put(&mut s, "kother", Some("vother"), r + 10, LATEST);
    assert_eq!(delete(&mut s, "k1", 10), Some(("v1".into(), 1)));
    assert_eq!(latest(&s, "k1"), None);
    // Too old: nothing deleted, nothing returned although the row exists.
    assert_eq!(delete(&mut s, "k2", 9), None);
    assert_eq!(latest(&s, "k2"), Some(("v2".into(), 1)));
}

#[test]
fn should_get_from_older_segments() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "ko", None, si - 10, LATEST);
    put(&mut s, "ko", None, 2 * si - 10, LATEST);
    put(&mut s, "ko", None, 3 * si - 10, LATEST);
    assert_eq!(as_of(&s, "k", si - 20), None);
    put(&mut s, "k", Some("v"), si - 20, LATEST);
    put(&mut s, "k", None, si - 10, LATEST);
    assert_eq!(as_of(&s, "k", si - 30), None);
    assert_eq!(as_of(&s, "k", si - 15), some("v", si - 20, si - 10));
    assert_eq!(as_of(&s, "k", si - 5), None);
    put(&mut s, "k", Some("v2"), 3 * si - 20, LATEST);
    put(&mut s, "k", None, 3 * si - 10, LATEST);
    assert_eq!(as_of(&s, "k", si - 30), None);
    assert_eq!(as_of(&s, "k", si - 15), some("v", si - 20, si - 10));
    assert_eq!(as_of(&s, "k", si - 5), None);
}

#[test]
fn should_not_get_expired() {
    let mut s = store();
    let (si, r) = (SEGMENT_INTERVAL, HISTORY_RETENTION);
    put(&mut s, "k", Some("v_old"), 0, LATEST);
    put(&mut s, "k", Some("v"), si - 10, LATEST);
    assert_eq!(as_of(&s, "k", si - 11), some("v_old", 0, si - 10));
    put(&mut s, "ko", Some("vo"), r + si - 11, LATEST);
    assert_eq!(as_of(&s, "k", si - 11), some("v_old", 0, si - 10));
    put(&mut s, "ko", Some("vo2"), r + si - 10, LATEST);
    assert_eq!(as_of(&s, "k", si - 11), None);
}

#[test]
fn should_get_expired_if_latest_value() {
    let mut s = store();
    put(&mut s, "k", Some("v"), 1, LATEST);
    put(&mut s, "ko", Some("vo_old"), 1, LATEST);
    put(&mut s, "ko", Some("vo_new"), HISTORY_RETENTION + 12, LATEST);
    assert_eq!(as_of(&s, "k", 10), some("v", 1, LATEST));
    assert_eq!(as_of(&s, "ko", 10), None);
}

#[test]
fn should_distinguish_empty_and_null() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    put(&mut s, "k", None, si + 20, LATEST);
    put(&mut s, "k", None, si - 10, si + 20);
    put(&mut s, "k", None, si - 1, si + 20);
    put(&mut s, "k", None, si + 1, si + 20);
    put(&mut s, "k", None, si + 10, si + 20);
    put(&mut s, "k", Some(""), si + 5, si + 10);
    put(&mut s, "k", Some(""), si - 5, si - 1);
    put(&mut s, "k", Some(""), si - 6, si - 5);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", si + 15), None);
    assert_eq!(as_of(&s, "k", si + 6), some("", si + 5, si + 10));
    assert_eq!(as_of(&s, "k", si + 2), None);
    assert_eq!(as_of(&s, "k", si - 1), None);
    assert_eq!(as_of(&s, "k", si - 5), some("", si - 5, si - 1));
    assert_eq!(as_of(&s, "k", si - 6), some("", si - 6, si - 5));
    assert_eq!(as_of(&s, "k", si - 8), None);
}

#[test]
fn should_allow_zero_history_retention() {
    let mut s = InMemoryVersionedStore::in_memory("zero", 0);
    let b = BASE_TIMESTAMP;
    put(&mut s, "k", Some("v"), b, LATEST);
    assert_eq!(latest(&s, "k"), Some(("v".into(), b)));
    assert_eq!(as_of(&s, "k", b), some("v", b, LATEST));
    assert_eq!(as_of(&s, "k", b + 1), some("v", b, LATEST));
    put(&mut s, "k", Some("updated"), b, LATEST);
    assert_eq!(latest(&s, "k"), Some(("updated".into(), b)));
    put(&mut s, "k", Some("v2"), b + 2, LATEST);
    assert_eq!(as_of(&s, "k", b + 2), some("v2", b + 2, LATEST));
    // Older than the history retention: nothing.
    assert_eq!(as_of(&s, "k", b + 1), None);
    delete(&mut s, "k", b + 3);
    assert_eq!(latest(&s, "k"), None);
    put(&mut s, "k2", Some("v"), b + 2, NOT_PUT);
    assert_eq!(latest(&s, "k2"), None);
}

#[test]
fn a_delete_at_the_latest_values_timestamp_keeps_no_delete_as_kafka() {
    // Kafka's store removes the latest value and keeps no delete, so a
    // later older put becomes the latest version.
    let mut s = store();
    put(&mut s, "k", Some("v"), 10, LATEST);
    put(&mut s, "k", None, 10, LATEST);
    put(&mut s, "k", Some("old"), 7, LATEST);
    assert_eq!(latest(&s, "k"), Some(("old".into(), 7)));
    // With an older version ending there, the boundary stays.
    let mut s = store();
    put(&mut s, "k", Some("a"), 5, LATEST);
    put(&mut s, "k", Some("v"), 10, LATEST);
    put(&mut s, "k", None, 10, LATEST);
    put(&mut s, "k", Some("x"), 7, 10);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", 8), some("x", 7, 10));
    assert_eq!(as_of(&s, "k", 6), some("a", 5, 7));
    put(&mut s, "k", Some("y"), 12, LATEST);
    assert_eq!(as_of(&s, "k", 11), None);
}

// The expectations below are what Kafka 4.1.1's `RocksDBVersionedStore`
// answers to the same records (history retention 300 000 ms, segment
// interval 100 000 ms, as in its tests; its own tests have none of these
// sequences). A latest delete is kept in a segment as a delete at its own
// timestamp only; a value that follows it goes to the latest-value store
// and does not end it. So once that value is deleted at its own timestamp,
// the key is deleted from the earlier delete on, and a put after it is the
// latest version again.

#[test]
fn a_value_after_a_latest_delete_does_not_end_the_delete_as_kafka() {
    let mut s = store();
    put(&mut s, "k", None, 10, LATEST);
    put(&mut s, "k", Some("v"), 20, LATEST);
    assert_eq!(delete(&mut s, "k", 20), Some(("v".into(), 20)));
    // Kafka: the latest version, not valid until 20.
    put(&mut s, "k", Some("x"), 15, LATEST);
    assert_eq!(latest(&s, "k"), Some(("x".into(), 15)));
    assert_eq!(as_of(&s, "k", 25), some("x", 15, LATEST));
    assert_eq!(as_of(&s, "k", 12), None);
}

#[test]
fn a_delete_then_a_value_at_its_timestamp_keeps_the_delete_as_kafka() {
    let mut s = store();
    assert_eq!(delete(&mut s, "k", 10), None);
    put(&mut s, "k", Some("v"), 10, LATEST);
    assert_eq!(as_of(&s, "k", 10), some("v", 10, LATEST));
    assert_eq!(delete(&mut s, "k", 10), Some(("v".into(), 10)));
    // The first delete at 10 is still there: the put ends at it.
    put(&mut s, "k", Some("x"), 5, 10);
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", 7), some("x", 5, 10));
    assert_eq!(as_of(&s, "k", 10), None);
    assert_eq!(as_of(&s, "k", 12), None);
}

#[test]
fn an_older_put_ends_at_a_latest_delete_that_a_value_followed_as_kafka() {
    let mut s = store();
    assert_eq!(delete(&mut s, "k", 6), None);
    put(&mut s, "k", Some("v1"), 9, LATEST);
    put(&mut s, "k", Some("v2"), 5, 6);
    put(&mut s, "k", None, 9, LATEST);
    assert_eq!(as_of(&s, "k", 5), some("v2", 5, 6));
    assert_eq!(as_of(&s, "k", 7), None);
    put(&mut s, "k", Some("v3"), 11, LATEST);
    // Kafka: valid until the latest value (not until 9, where the deleted
    // value was).
    put(&mut s, "k", Some("x"), 7, 11);
    assert_eq!(as_of(&s, "k", 5), some("v2", 5, 6));
    assert_eq!(as_of(&s, "k", 6), None);
    assert_eq!(as_of(&s, "k", 9), some("x", 7, 11));
    assert_eq!(as_of(&s, "k", 11), some("v3", 11, LATEST));
}

#[test]
fn deletes_that_follow_each_other_stay_a_history_as_kafka() {
    let mut s = store();
    assert_eq!(delete(&mut s, "k", 10), None);
    put(&mut s, "k", None, 20, LATEST);
    put(&mut s, "k", Some("v"), 30, LATEST);
    assert_eq!(delete(&mut s, "k", 30), Some(("v".into(), 30)));
    // The history still ends at the delete at 20.
    put(&mut s, "k", Some("x"), 15, 20);
    assert_eq!(as_of(&s, "k", 19), some("x", 15, 20));
    assert_eq!(as_of(&s, "k", 20), None);
    put(&mut s, "k", Some("y"), 25, LATEST);
    assert_eq!(latest(&s, "k"), Some(("y".into(), 25)));
    assert_eq!(as_of(&s, "k", 19), some("x", 15, 20));
    assert_eq!(as_of(&s, "k", 22), None);
    assert_eq!(as_of(&s, "k", 30), some("y", 25, LATEST));
}

#[test]
fn a_value_after_a_latest_delete_across_segments_as_kafka() {
    let mut s = store();
    let si = SEGMENT_INTERVAL;
    assert_eq!(delete(&mut s, "k", si - 10), None);
    put(&mut s, "k", Some("v"), si + 10, LATEST);
    assert_eq!(delete(&mut s, "k", si + 10), Some(("v".into(), si + 10)));
    put(&mut s, "k", Some("x"), si - 5, LATEST);
    assert_eq!(as_of(&s, "k", si + 10), some("x", si - 5, LATEST));
    put(&mut s, "k", Some("y"), si + 5, LATEST);
    assert_eq!(as_of(&s, "k", si), some("x", si - 5, si + 5));
    assert_eq!(as_of(&s, "k", si + 9), some("y", si + 5, LATEST));
    assert_eq!(as_of(&s, "k", si - 6), None);
}

#[test]
fn a_put_after_an_expired_latest_delete_as_kafka() {
    // History retention 1: the delete at 0 has long expired when the
    // value at 78 comes; deleting that value leaves nothing a put at 77
    // could end at.
    let mut s = InMemoryVersionedStore::in_memory("v", 1);
    put(&mut s, "k", None, 0, LATEST);
    put(&mut s, "k", Some("v"), 78, LATEST);
    assert_eq!(delete(&mut s, "k", 78), Some(("v".into(), 78)));
    put(&mut s, "k", None, 77, LATEST);
    put(&mut s, "k", Some("x"), 77, LATEST);
    assert_eq!(as_of(&s, "k", 78), some("x", 77, LATEST));
}

/// A sink keeping each record with its timestamp.
#[derive(Debug, Default)]
struct TimestampedSink(Vec<VersionedWrite>);

impl ChangelogSink for TimestampedSink {
    fn send(&mut self, _key: Bytes, _value: Option<Bytes>) -> crate::Result<()> {
        panic!("a versioned store's changelog records need their timestamps");
    }

    fn send_at(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> crate::Result<()> {
        self.0.push((key, value, timestamp));
        Ok(())
    }
}

fn records(list: &[(Option<&str>, i64)]) -> Vec<VersionedWrite> {
    list.iter()
        .map(|(v, ts)| {
            (
                Bytes::from_static(b"k"),
                v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                *ts,
            )
        })
        .collect()
}

#[test]
fn should_restore() {
    let si = SEGMENT_INTERVAL;
    let mut s = store();
    s.restore_batch(&records(&[
        (Some("vp20"), si + 20),
        (Some("vp10"), si + 10),
        (Some("vn10"), si - 10),
        (Some("vn2"), si - 2),
        (Some("vn1"), si - 1),
        (Some("vp1"), si + 1),
    ]))
    .unwrap();
    check_vp20_to_vn10(&s);
}

#[test]
fn should_restore_with_nulls() {
    let si = SEGMENT_INTERVAL;
    let mut s = store();
    s.restore_batch(&records(&[
        (None, si + 20),
        (None, si - 1),
        (None, si + 1),
        (None, si - 10),
        (None, si + 10),
        (Some("vp5"), si + 5),
        (Some("vn5"), si - 5),
        (Some("vn6"), si - 6),
    ]))
    .unwrap();
    check_vp5_vn5_vn6(&s);
}

#[test]
fn should_restore_with_nulls_and_repeat_timestamps() {
    let list: Vec<(Option<&str>, i64)> = repeat_timestamp_records()
        .into_iter()
        .map(|(v, ts, _)| (v, ts))
        .collect();
    let mut s = store();
    s.restore_batch(&records(&list)).unwrap();
    check_vp5_vn5_vn6(&s);
}

#[test]
fn should_restore_multiple_batches() {
    let si = SEGMENT_INTERVAL;
    let mut s = store();
    s.restore_batch(&records(&[
        (None, si - 20),
        (Some("vn10"), si - 10),
        (None, si - 1),
    ]))
    .unwrap();
    s.restore_batch(&records(&[
        (None, si + 1),
        (Some("vp10"), si + 10),
        (None, si + 20),
    ]))
    .unwrap();
    check_multiple_segments(&s);
}

#[test]
fn should_not_restore_expired_but_restore_what_expires_later_in_the_batch() {
    let r = HISTORY_RETENTION;
    let mut s = store();
    let batch = vec![
        (
            Bytes::from_static(b"k2"),
            Some(Bytes::from_static(b"v2")),
            0,
        ),
        (
            Bytes::from_static(b"k"),
            Some(Bytes::from_static(b"v")),
            r + 10,
        ),
        (
            Bytes::from_static(b"k1"),
            Some(Bytes::from_static(b"v1")),
            10,
        ),
        (
            Bytes::from_static(b"k3"),
            Some(Bytes::from_static(b"v3")),
            9,
        ),
    ];
    s.restore_batch(&batch).unwrap();
    assert_eq!(latest(&s, "k2"), Some(("v2".into(), 0)));
    assert_eq!(latest(&s, "k"), Some(("v".into(), r + 10)));
    assert_eq!(latest(&s, "k1"), Some(("v1".into(), 10)));
    assert_eq!(latest(&s, "k3"), None);
}

#[test]
fn the_changelog_carries_each_version_with_its_timestamp() {
    let mut logged = ChangeLoggingVersionedStore::new(store(), TimestampedSink::default());
    put(&mut logged, "k", Some("b"), 20, LATEST);
    put(&mut logged, "k", Some("a"), 10, 20);
    assert_eq!(delete(&mut logged, "k", 30), Some(("b".into(), 20)));
    // Logged as Kafka's layer does: a put too old to be stored too.
    put(
        &mut logged,
        "k",
        Some("late"),
        30 - HISTORY_RETENTION - 1,
        NOT_PUT,
    );
    assert_eq!(
        logged.sink().0,
        [
            (Bytes::from_static(b"k"), Some(Bytes::from_static(b"b")), 20),
            (Bytes::from_static(b"k"), Some(Bytes::from_static(b"a")), 10),
            (Bytes::from_static(b"k"), None, 30),
            (
                Bytes::from_static(b"k"),
                Some(Bytes::from_static(b"late")),
                30 - HISTORY_RETENTION - 1
            ),
        ]
    );
}

#[test]
fn backend_layout_is_pinned() {
    let mut s = InMemoryVersionedStore::in_memory("s", 100);
    put(&mut s, "k", Some("a"), 1, LATEST);
    put(&mut s, "k", Some("b"), 2, LATEST);
    let raw: Vec<(Bytes, Bytes)> = s.backend().all().unwrap().map(Result::unwrap).collect();
    let flipped = |t: i64| (u64::from_be_bytes(t.to_be_bytes()) ^ (1 << 63)).to_be_bytes();
    let mut history = vec![0x02, 0, 0, 0, 1, b'k'];
    history.extend_from_slice(&flipped(2));
    let mut older = vec![1];
    older.extend_from_slice(&1i64.to_be_bytes());
    older.push(b'a');
    let mut latest = vec![1];
    latest.extend_from_slice(&2i64.to_be_bytes());
    latest.push(b'b');
    let mut index = vec![0x03];
    index.extend_from_slice(&flipped(2));
    index.extend_from_slice(&[0, 0, 0, 1, b'k']);
    let mut meta = vec![1];
    meta.extend_from_slice(&2i64.to_be_bytes());
    assert_eq!(
        raw,
        [
            (Bytes::from_static(&[0x00]), Bytes::from(meta)),
            (Bytes::from_static(&[0x01, b'k']), Bytes::from(latest)),
            (Bytes::from(history), Bytes::from(older)),
            (Bytes::from(index), Bytes::new()),
        ]
    );
}

#[test]
fn expired_versions_leave_the_backend() {
    let mut s = InMemoryVersionedStore::in_memory("s", 10);
    put(&mut s, "k", Some("a"), 0, LATEST);
    put(&mut s, "k", Some("b"), 5, LATEST);
    put(&mut s, "d", None, 6, LATEST);
    put(&mut s, "k", Some("c"), 8, LATEST);
    let entries = |s: &InMemoryVersionedStore| s.backend().approximate_num_entries().unwrap();
    // meta, 2 latest, 2 older + 2 index, 1 delete index.
    assert_eq!(entries(&s), 8);
    // Stream time 15: what stopped being valid by 5 goes.
    put(&mut s, "x", Some("x"), 15, LATEST);
    assert_eq!(as_of(&s, "k", 5), some("b", 5, 8));
    // Stream time 18: the version valid until 8 and the delete at 6 go;
    // the latest value stays (meta, 2 latest, x's older version + index).
    put(&mut s, "x", Some("x"), 18, LATEST);
    assert_eq!(entries(&s), 5);
    assert_eq!(latest(&s, "k"), Some(("c".into(), 8)));
    assert_eq!(as_of(&s, "k", 7), None);
}

fn check_persistent_backend(backend: StoreBackend) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut s, local) = open_versioned_store(backend, dir.path(), "v", 100).unwrap();
        assert_eq!(local, LocalData::Created);
        assert!(VersionedKeyValueStore::persistent(&s));
        put(&mut s, "k", Some("b"), 20, LATEST);
        put(&mut s, "k", Some("a"), 10, 20);
        put(&mut s, "k", None, 30, LATEST);
        VersionedKeyValueStore::close(&mut s).unwrap();
    }
    let (mut s, local) = open_versioned_store(backend, dir.path(), "v", 100).unwrap();
    assert_eq!(local, LocalData::Found);
    assert_eq!(s.observed_stream_time(), Some(30));
    assert_eq!(latest(&s, "k"), None);
    assert_eq!(as_of(&s, "k", 15), some("a", 10, 20));
    assert_eq!(as_of(&s, "k", 25), some("b", 20, 30));
    // Too old for the stream time kept on disk.
    put(&mut s, "k", Some("old"), -71, NOT_PUT);
    put(&mut s, "k", Some("c"), 131, LATEST);
    assert_eq!(as_of(&s, "k", 30), None);
    assert_eq!(as_of(&s, "k", 25), None);
    VersionedKeyValueStore::close(&mut s).unwrap();
}

#[test]
fn redb_store_keeps_versions_and_stream_time_across_reopen() {
    check_persistent_backend(StoreBackend::Redb);
}

#[test]
fn sled_store_keeps_versions_and_stream_time_across_reopen() {
    check_persistent_backend(StoreBackend::Sled);
}

#[test]
fn undecodable_meta_wipes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut raw = crate::open_store(StoreBackend::Redb, dir.path(), "v").unwrap();
        raw.put(Bytes::from_static(&[0]), Bytes::from_static(&[7]))
            .unwrap();
        raw.close().unwrap();
    }
    let (mut s, local) = open_versioned_store(StoreBackend::Redb, dir.path(), "v", 100).unwrap();
    assert_eq!(local, LocalData::Wiped);
    assert_eq!(s.observed_stream_time(), None);
    VersionedKeyValueStore::close(&mut s).unwrap();
}

#[test]
fn a_corrupt_entry_is_a_typed_error() {
    let mut backend = crate::InMemoryStore::new("v");
    backend
        .put(Bytes::from_static(&[0x01, b'k']), Bytes::from_static(&[9]))
        .unwrap();
    let s = KvVersionedStore::new(backend, 10).unwrap();
    let err = s.get(b"k").unwrap_err();
    assert!(matches!(err, StoreError::CorruptEntry { .. }), "{err}");
    assert!(err.requires_restore());
}

/// A brute-force model of Kafka's `RocksDBVersionedStore` that never
/// expires anything: reads older than the history retention answer only
/// the latest value, as Kafka's do.
#[derive(Debug, Default)]
struct Model {
    retention: i64,
    observed: Option<i64>,
    keys: BTreeMap<u8, KeyModel>,
}

/// One key as Kafka's store holds it: the latest value (its latest-value
/// store, which never holds a delete) and the history (its segments): the
/// timestamps at which a version starts, with its value (`None`: a
/// delete). The history's last entry is always a delete, its end; a latest
/// value is at or after it.
#[derive(Debug, Default)]
struct KeyModel {
    latest: Option<(i64, u8)>,
    history: BTreeMap<i64, Option<u8>>,
}

impl Model {
    fn cutoff(&self) -> Option<i64> {
        self.observed.map(|t| t - self.retention)
    }

    /// Kafka's `doPut`, on the abstract state.
    fn put(&mut self, key: u8, value: Option<u8>, ts: i64) -> PutOutcome {
        if self.cutoff().is_some_and(|c| ts < c) {
            return PutOutcome::NotPut;
        }
        self.observed = Some(self.observed.map_or(ts, |o| o.max(ts)));
        let k = self.keys.entry(key).or_default();
        match k.latest {
            // A later record: the latest value goes into the history,
            // valid until this record.
            Some((t, old)) if ts > t => {
                k.history.insert(t, Some(old));
                k.history.insert(ts, None);
                k.latest = value.map(|v| (ts, v));
                PutOutcome::Latest
            }
            // The latest value's own timestamp: replaced, or removed by a
            // delete, which leaves no delete behind.
            Some((t, _)) if ts == t => {
                k.latest = value.map(|v| (ts, v));
                PutOutcome::Latest
            }
            latest => {
                let end = k.history.last_key_value().map(|(t, _)| *t);
                if end.is_some_and(|end| ts < end) {
                    // Within or before the history: valid until the next
                    // version there.
                    let next = k.history.range(ts + 1..).next().map(|(t, _)| *t);
                    k.history.insert(ts, value);
                    PutOutcome::Older {
                        valid_to: next.expect("the history ends after ts"),
                    }
                } else if let Some((t, _)) = latest {
                    // Between the history's end and the latest value: the
                    // history now ends at the latest value.
                    k.history.insert(ts, value);
                    k.history.insert(t, None);
                    PutOutcome::Older { valid_to: t }
                } else {
                    // After everything: a value becomes the latest one, a
                    // delete the history's new end.
                    match value {
                        Some(v) => k.latest = Some((ts, v)),
                        None => {
                            k.history.insert(ts, None);
                        }
                    }
                    PutOutcome::Latest
                }
            }
        }
    }

    fn get(&self, key: u8) -> Option<(u8, i64)> {
        self.keys.get(&key)?.latest.map(|(t, v)| (v, t))
    }

    fn get_as_of(&self, key: u8, as_of: i64) -> Option<(u8, i64, Option<i64>)> {
        let k = self.keys.get(&key)?;
        if let Some((t, v)) = k.latest.filter(|(t, _)| *t <= as_of) {
            return Some((v, t, None));
        }
        if self.cutoff().is_some_and(|c| as_of < c) {
            return None;
        }
        let (t, v) = k.history.range(..=as_of).next_back()?;
        // At or after the history's end: deleted.
        let (valid_to, _) = k.history.range(as_of + 1..).next()?;
        v.map(|v| (v, *t, Some(*valid_to)))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Option<u8>, i64),
    Delete(u8, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, proptest::option::weighted(0.8, any::<u8>()), 0i64..80)
            .prop_map(|(k, v, ts)| Op::Put(k, v, ts)),
        1 => (0u8..3, 0i64..80).prop_map(|(k, ts)| Op::Delete(k, ts)),
    ]
}

fn reads(store: &impl VersionedKeyValueStore) -> Vec<Option<(u8, i64, Option<i64>)>> {
    let mut out = Vec::new();
    for k in 0u8..3 {
        for t in -1..82 {
            out.push(
                store
                    .get_as_of(&[k], t)
                    .unwrap()
                    .map(|r| (r.value[0], r.timestamp, r.valid_to)),
            );
        }
    }
    out
}

proptest! {
    #[test]
    fn matches_the_model_and_restores_from_its_changelog(
        retention in 0i64..40,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut store = ChangeLoggingVersionedStore::new(
            InMemoryVersionedStore::in_memory("v", retention),
            TimestampedSink::default(),
        );
        let mut model = Model { retention, ..Model::default() };
        for op in ops {
            match op {
                Op::Put(k, v, ts) => {
                    let got = store.put(Bytes::from(vec![k]), v.map(|v| Bytes::from(vec![v])), ts).unwrap();
                    prop_assert_eq!(got, model.put(k, v, ts), "put {}={:?}@{}", k, v, ts);
                }
                Op::Delete(k, ts) => {
                    let want = if model.cutoff().is_some_and(|c| ts < c) {
                        None
                    } else {
                        model.get_as_of(k, ts).map(|(v, t, _)| (v, t))
                    };
                    model.put(k, None, ts);
                    let got = store.delete(Bytes::from(vec![k]), ts).unwrap().map(|r| (r.value[0], r.timestamp));
                    prop_assert_eq!(got, want, "delete {}@{}", k, ts);
                }
            }
            for k in 0u8..3 {
                let got = store.get(&[k]).unwrap().map(|r| (r.value[0], r.timestamp));
                prop_assert_eq!(got, model.get(k));
                for t in -1..82 {
                    let got = store.get_as_of(&[k], t).unwrap().map(|r| (r.value[0], r.timestamp, r.valid_to));
                    prop_assert_eq!(got, model.get_as_of(k, t), "key {} as of {}", k, t);
                }
            }
        }
        // Restoring the changelog, in batches of any size, rebuilds what
        // reads can see.
        let changelog = store.sink().0.clone();
        for batch in [1, 3, changelog.len().max(1)] {
            let mut restored = InMemoryVersionedStore::in_memory("r", retention);
            for chunk in changelog.chunks(batch) {
                restored.restore_batch(chunk).unwrap();
            }
            prop_assert_eq!(reads(&restored), reads(&store));
            prop_assert_eq!(restored.observed_stream_time(), store.observed_stream_time());
        }
    }
}
