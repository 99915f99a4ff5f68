//! Model tests: random operation sequences against every backend (and the
//! caching and changelogging layers), compared with a `BTreeMap`, with
//! close-and-reopen steps for the persistent backends.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::{CacheEntry, CachingStore, ChangeLoggingStore, KeyValueStore, StoreBackend};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Debug, Clone)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    PutIfAbsent(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// A read-modify-write: appends the byte to the value read (an absent
    /// key reads as empty); `None` deletes a key that has a value and
    /// writes nothing to an absent one.
    Update(Vec<u8>, Option<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Get(Vec<u8>),
    Range(Vec<u8>, Vec<u8>),
    All,
    Count,
    Flush,
    Reopen,
}

/// Keys from a small alphabet, so that operations collide; the empty key
/// and prefixes of other keys are included.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(vec![0u8, 1, 0x7f, 0xff]), 0..4),
        1 => prop::collection::vec(any::<u8>(), 0..3),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

fn op(reopen: bool) -> impl Strategy<Value = Op> {
    // Without reopens, the reopen arm flushes instead (a union's arms must
    // all have weight).
    let reopen_or_flush = if reopen { Op::Reopen } else { Op::Flush };
    prop_oneof![
        8 => (key(), value()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (key(), value()).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
        4 => key().prop_map(Op::Delete),
        4 => (key(), prop::option::of(any::<u8>())).prop_map(|(k, b)| Op::Update(k, b)),
        1 => prop::collection::vec((key(), prop::option::of(value())), 0..6).prop_map(Op::Batch),
        4 => key().prop_map(Op::Get),
        3 => (key(), key()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::All),
        1 => Just(Op::Count),
        1 => Just(Op::Flush),
        1 => Just(reopen_or_flush),
    ]
}

fn ops(reopen: bool) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(reopen), 1..60)
}

fn collect(iter: crate::KvIter<'_>) -> Result<Pairs, TestCaseError> {
    iter.map(|item| {
        item.map(|(k, v)| (k.to_vec(), v.to_vec()))
            .map_err(|e| TestCaseError::fail(e.to_string()))
    })
    .collect()
}

fn model_range(model: &Model, from: &[u8], to: &[u8]) -> Pairs {
    model
        .iter()
        .filter(|(k, _)| k.as_slice() >= from && k.as_slice() < to)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Hooks for the layered tests: called after each step.
trait Observer<S: ?Sized> {
    fn after(
        &mut self,
        _store: &mut S,
        _model: &Model,
        _flushed: bool,
    ) -> Result<(), TestCaseError> {
        Ok(())
    }
}

struct NoObserver;
impl<S: ?Sized> Observer<S> for NoObserver {}

/// Runs `ops` against the store from `open` and the model. `exact_count`:
/// the store's count must equal the model's.
fn run<S: KeyValueStore>(
    ops: Vec<Op>,
    mut open: impl FnMut() -> S,
    exact_count: bool,
    observer: &mut impl Observer<S>,
) -> Result<(), TestCaseError> {
    let mut store = open();
    let mut model = Model::new();
    for op in ops {
        let mut flushed = false;
        match op {
            Op::Put(k, v) => {
                store
                    .put(k.clone().into(), v.clone().into())
                    .map_err(fail)?;
                model.insert(k, v);
            }
            Op::PutIfAbsent(k, v) => {
                let got = store
                    .put_if_absent(k.clone().into(), v.clone().into())
                    .map_err(fail)?;
                let expected = model.get(&k).cloned();
                prop_assert_eq!(got.map(|b| b.to_vec()), expected.clone());
                if expected.is_none() {
                    model.insert(k, v);
                }
            }
            Op::Delete(k) => {
                let got = store.delete(k.clone().into()).map_err(fail)?;
                prop_assert_eq!(got.map(|b| b.to_vec()), model.remove(&k));
            }
            Op::Update(k, byte) => {
                let mut seen = None;
                store
                    .update(&k, &mut |old| {
                        seen = Some(old.map(<[u8]>::to_vec));
                        match (byte, old) {
                            (Some(b), old) => {
                                let mut v = old.map(<[u8]>::to_vec).unwrap_or_default();
                                v.push(b);
                                crate::Update::Put(v.into())
                            }
                            (None, Some(_)) => crate::Update::Delete,
                            (None, None) => crate::Update::Keep,
                        }
                    })
                    .map_err(fail)?;
                prop_assert_eq!(
                    seen,
                    Some(model.get(&k).cloned()),
                    "update read a wrong value"
                );
                match byte {
                    Some(b) => model.entry(k).or_default().push(b),
                    None => {
                        model.remove(&k);
                    }
                }
            }
            Op::Batch(writes) => {
                let batch: Vec<_> = writes
                    .iter()
                    .map(|(k, v)| (Bytes::from(k.clone()), v.clone().map(Bytes::from)))
                    .collect();
                store.write_batch(&batch).map_err(fail)?;
                for (k, v) in writes {
                    match v {
                        Some(v) => model.insert(k, v),
                        None => model.remove(&k),
                    };
                }
            }
            Op::Get(k) => {
                let got = store.get(&k).map_err(fail)?;
                prop_assert_eq!(got.map(|b| b.to_vec()), model.get(&k).cloned());
            }
            Op::Range(a, b) => {
                let got = collect(store.range(&a, &b).map_err(fail)?)?;
                prop_assert_eq!(got, model_range(&model, &a, &b));
            }
            Op::All => {
                let got = collect(store.all().map_err(fail)?)?;
                let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(got, expected);
            }
            Op::Count => {
                if exact_count {
                    let got = store.approximate_num_entries().map_err(fail)?;
                    prop_assert_eq!(got, model.len() as u64);
                }
            }
            Op::Flush => {
                store.flush().map_err(fail)?;
                flushed = true;
            }
            Op::Reopen => {
                store.close().map_err(fail)?;
                let closed = matches!(store.get(b"x"), Err(crate::StoreError::Closed { .. }));
                prop_assert!(closed, "a closed store still answers reads");
                observer.after(&mut store, &model, true)?;
                drop(store);
                store = open();
                continue;
            }
        }
        observer.after(&mut store, &model, flushed)?;
    }
    // Everything written is there after a final reopen.
    store.close().map_err(fail)?;
    observer.after(&mut store, &model, true)?;
    drop(store);
    let store = open();
    if store.persistent() {
        let got = collect(store.all().map_err(fail)?)?;
        let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        prop_assert_eq!(got, expected);
    }
    Ok(())
}

fn fail(e: crate::StoreError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

fn open_backend(backend: StoreBackend, dir: &Path) -> Box<dyn KeyValueStore> {
    match backend.open(dir, "model") {
        Ok(store) => store,
        Err(e) => panic!("opening {backend} store failed: {e}"),
    }
}

fn backend_model(backend: StoreBackend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    run(
        ops,
        || open_backend(backend, dir.path()),
        true,
        &mut NoObserver,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn in_memory_store_matches_btreemap_model(ops in ops(false)) {
        backend_model(StoreBackend::InMemory, ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sled_store_matches_btreemap_model_across_reopens(ops in ops(true)) {
        backend_model(StoreBackend::Sled, ops)?;
    }

    #[test]
    fn redb_store_matches_btreemap_model_across_reopens(ops in ops(true)) {
        backend_model(StoreBackend::Redb, ops)?;
    }
}

/// Checks the caching layer's forwarded entries: each one's old value is
/// what downstream last saw for the key, and after a flush downstream, the
/// inner store and a replay of the changelog all equal the model.
#[derive(Default)]
struct CacheObserver {
    downstream: Model,
    changelog_replay: Model,
    changelog_seen: usize,
}

type Layered<S> = CachingStore<ChangeLoggingStore<S, Vec<(Bytes, Option<Bytes>)>>>;

impl<S: KeyValueStore> Observer<Layered<S>> for CacheObserver {
    fn after(
        &mut self,
        store: &mut Layered<S>,
        model: &Model,
        flushed: bool,
    ) -> Result<(), TestCaseError> {
        for CacheEntry {
            key,
            new_value,
            old_value,
        } in store.take_forwarded()
        {
            prop_assert_eq!(
                old_value.map(|b| b.to_vec()),
                self.downstream.get(key.as_ref()).cloned(),
                "old value of a forwarded entry is not what downstream saw last"
            );
            prop_assert!(
                new_value.is_some() || self.downstream.contains_key(key.as_ref()),
                "a delete of an absent key was forwarded"
            );
            match new_value {
                Some(v) => self.downstream.insert(key.to_vec(), v.to_vec()),
                None => self.downstream.remove(key.as_ref()),
            };
        }
        let sink = store.inner_mut().sink_mut();
        for (k, v) in sink.drain(..) {
            self.changelog_seen += 1;
            match v {
                Some(v) => self.changelog_replay.insert(k.to_vec(), v.to_vec()),
                None => self.changelog_replay.remove(k.as_ref()),
            };
        }
        if flushed {
            prop_assert_eq!(&self.downstream, model);
            prop_assert_eq!(&self.changelog_replay, model);
            prop_assert_eq!(store.dirty_entries(), 0);
        }
        prop_assert!(store.cached_bytes() <= store.max_bytes());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn caching_store_over_memory_matches_model(ops in ops(false), max_bytes in 0usize..1200) {
        let mut observer = CacheObserver::default();
        let inner = crate::InMemoryStore::new("cached");
        let mut slot = Some(inner);
        run(
            ops,
            || {
                let inner = slot.take().unwrap_or_else(|| crate::InMemoryStore::new("cached"));
                CachingStore::new(ChangeLoggingStore::new(inner, Vec::new()), max_bytes)
            },
            false,
            &mut observer,
        )?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn caching_store_over_redb_matches_model_across_reopens(ops in ops(true), max_bytes in 0usize..1200) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut observer = CacheObserver::default();
        run(
            ops,
            || CachingStore::new(ChangeLoggingStore::new(open_backend(StoreBackend::Redb, dir.path()), Vec::new()), max_bytes),
            false,
            &mut observer,
        )?;
    }
}
