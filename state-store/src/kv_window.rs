//! [`KvWindowStore`]: a [`WindowStore`] on any [`KeyValueStore`] backend,
//! used for persistent window stores (sled, redb), with time-based
//! retention. It is also a [`KeyValueStore`] over Kafka's windowed key
//! layout, so that the changelogging and restoration layers apply to it
//! unchanged.

use std::path::Path;

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::memory_window::{decode_windowed_key, encode_windowed_key};
use crate::store::{KeyValueStore, KvIter};
use crate::time_indexed::TimeIndexed;
use crate::windowed::{WindowIter, WindowStore, WindowedKey, WindowedKvIter};

/// A [`WindowStore`] on a [`KeyValueStore`] backend.
///
/// Windows are stored under their changelog key
/// ([`encode_windowed_key`]) with a time index by window start (the layout
/// is drawn in `docs/state-stores.md`). The store's stream time is the largest
/// window start put so far, kept in the backend. A window expires once its
/// start is at or before `stream_time - retention`: it is deleted as
/// stream time advances, and a put into it is ignored. (The in-memory
/// [`crate::InMemoryWindowStore`] drops whole segments instead, so it may
/// keep a window up to one segment longer.) Window starts are expected to
/// be non-negative: range fetches rely on big-endian order.
///
/// ```
/// use bytes::Bytes;
/// use state_store::{InMemoryStore, KvWindowStore, WindowStore};
///
/// # fn main() -> state_store::Result<()> {
/// let mut store = KvWindowStore::new(InMemoryStore::new("w"), 100)?;
/// store.put(Bytes::from("a"), Some(Bytes::from("1")), 0)?;
/// store.put(Bytes::from("a"), Some(Bytes::from("2")), 50)?;
/// let starts: Vec<i64> = store.fetch_key_range(b"a", 0, 60)?.map(|r| r.map(|(s, _)| s)).collect::<Result<_, _>>()?;
/// assert_eq!(starts, [0, 50]);
/// store.put(Bytes::from("b"), Some(Bytes::from("3")), 100)?; // window 0 expires
/// assert_eq!(store.fetch(b"a", 0)?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct KvWindowStore<S> {
    data: TimeIndexed<S>,
}

impl<S: KeyValueStore> KvWindowStore<S> {
    /// A window store in `backend`, which is empty or was written by a
    /// window store, keeping windows for `retention_ms` after their start.
    /// An entry it cannot decode is [`StoreError::CorruptEntry`].
    pub fn new(backend: S, retention_ms: i64) -> Result<Self> {
        Ok(Self {
            data: TimeIndexed::open(backend, retention_ms)?,
        })
    }

    /// The retention period, milliseconds.
    pub fn retention(&self) -> i64 {
        self.data.retention()
    }

    /// The largest window start put so far.
    pub fn observed_stream_time(&self) -> Option<i64> {
        self.data.observed()
    }

    /// The backend.
    pub fn backend(&self) -> &S {
        self.data.backend()
    }

    fn decode(&self, key: &[u8]) -> Result<(Bytes, i64)> {
        decode_windowed_key(key).ok_or_else(|| StoreError::InvalidWindowedKey {
            store: self.data.name().to_owned(),
            len: key.len(),
        })
    }
}

impl<S: KeyValueStore> WindowStore for KvWindowStore<S> {
    fn name(&self) -> &str {
        self.data.name()
    }

    fn put(&mut self, key: Bytes, value: Option<Bytes>, window_start: i64) -> Result<()> {
        self.data.advance(window_start)?;
        let encoded = encode_windowed_key(&key, window_start);
        match value {
            Some(value) => {
                if self.data.is_expired(window_start) {
                    tracing::debug!(store = %self.data.name(), window_start, stream_time = ?self.data.observed(), "skipping put into an expired window");
                    return Ok(());
                }
                self.data.put(&encoded, window_start, value)
            }
            None => self.data.delete(&encoded, window_start),
        }
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>> {
        self.data.get(&encode_windowed_key(key, window_start))
    }

    fn fetch_key_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        let time_from = time_from.max(0);
        let mut out = Vec::new();
        if time_from <= time_to {
            // Non-negative big-endian starts sort numerically; longer keys
            // sharing the prefix may lie in between, and are filtered out.
            let from = encode_windowed_key(key, time_from);
            let mut to = encode_windowed_key(key, time_to).to_vec();
            to.push(0);
            for item in self.data.range(&from, &to)? {
                let (raw, value) = item?;
                let (k, start) = self.decode(&raw)?;
                if k == key && (time_from..=time_to).contains(&start) {
                    out.push((start, value));
                }
            }
        }
        out.sort_by_key(|(start, _)| *start);
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedKvIter<'_>> {
        let mut out = Vec::new();
        for raw in self.data.keys_in(time_from, time_to)? {
            let (key, window_start) = self.decode(&raw)?;
            if let Some(value) = self.data.get(&raw)? {
                out.push((WindowedKey { key, window_start }, value));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn persistent(&self) -> bool {
        self.data.backend().persistent()
    }

    fn flush(&mut self) -> Result<()> {
        self.data.backend_mut().flush()
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        self.data.backend_mut().flush_unsynced()
    }

    fn close(&mut self) -> Result<()> {
        self.data.backend_mut().close()
    }
}

/// The key-value view: keys are windowed keys in the layout of
/// [`encode_windowed_key`], ordered by those bytes. A key too short to be a
/// windowed key is [`StoreError::InvalidWindowedKey`].
impl<S: KeyValueStore> KeyValueStore for KvWindowStore<S> {
    fn name(&self) -> &str {
        self.data.name()
    }

    fn persistent(&self) -> bool {
        self.data.backend().persistent()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.decode(key)?;
        self.data.get(key)
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        let (k, start) = self.decode(&key)?;
        WindowStore::put(self, k, Some(value), start)
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        let (k, start) = self.decode(&key)?;
        let old = self.data.get(&key)?;
        if old.is_some() {
            WindowStore::put(self, k, None, start)?;
        }
        Ok(old)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.data.range(from, to)
    }

    fn all(&self) -> Result<KvIter<'_>> {
        self.data.all()
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.data.count()
    }

    fn flush(&mut self) -> Result<()> {
        self.data.backend_mut().flush()
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        self.data.backend_mut().flush_unsynced()
    }

    fn close(&mut self) -> Result<()> {
        self.data.backend_mut().close()
    }
}

/// Opens (or creates) window store `name` on `backend` under `state_dir`,
/// keeping windows for `retention_ms` after their start. A store that
/// fails to open or holds an entry it cannot decode is wiped and opened
/// empty. Returns the store and what the open found of its files: unless
/// they were [`crate::LocalData::Found`], restore it from the start of its
/// changelog and ignore its checkpoint.
pub fn open_window_store(
    backend: impl Into<crate::Engine>,
    state_dir: &Path,
    name: &str,
    retention_ms: i64,
) -> Result<(KvWindowStore<Box<dyn KeyValueStore>>, crate::LocalData)> {
    let engine = backend.into();
    let (base, local) = crate::backend::open_or_wipe(engine.clone(), state_dir, name)?;
    match KvWindowStore::new(base, retention_ms) {
        Ok(store) => Ok((store, local)),
        Err(e @ StoreError::CorruptEntry { .. }) => {
            tracing::warn!(store = name, error = %e, "wiping window store with an undecodable entry");
            crate::wipe(state_dir, name)?;
            let base = crate::backend::open_store(engine, state_dir, name)?;
            Ok((
                KvWindowStore::new(base, retention_ms)?,
                crate::LocalData::Wiped,
            ))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::changelog::ChangeLoggingStore;
    use crate::memory::InMemoryStore;
    use crate::StoreBackend;

    fn starts(store: &impl WindowStore, key: &[u8], from: i64, to: i64) -> Vec<i64> {
        store
            .fetch_key_range(key, from, to)
            .unwrap()
            .map(|r| r.map(|(s, _)| s))
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn sled_window_store_puts_fetches_expires_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, local) =
                open_window_store(StoreBackend::Sled, dir.path(), "w", 100).unwrap();
            assert_eq!(local, crate::LocalData::Created);
            assert!(WindowStore::persistent(&store));
            WindowStore::put(&mut store, Bytes::from("a"), Some(Bytes::from("1")), 0).unwrap();
            WindowStore::put(&mut store, Bytes::from("a"), Some(Bytes::from("2")), 50).unwrap();
            WindowStore::put(&mut store, Bytes::from("ab"), Some(Bytes::from("3")), 10).unwrap();
            assert_eq!(starts(&store, b"a", 0, 100), [0, 50]);
            assert_eq!(starts(&store, b"a", 1, 50), [50]);
            let all: Vec<_> = store
                .fetch_all(0, 20)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(all.len(), 2);
            assert_eq!(all[0].0.key, Bytes::from("a"));
            assert_eq!(all[1].0.key, Bytes::from("ab"));
            WindowStore::close(&mut store).unwrap();
        }
        let (mut store, local) =
            open_window_store(StoreBackend::Sled, dir.path(), "w", 100).unwrap();
        assert_eq!(local, crate::LocalData::Found);
        assert_eq!(store.observed_stream_time(), Some(50));
        assert_eq!(store.fetch(b"a", 50).unwrap(), Some(Bytes::from("2")));
        // Stream time 105: starts <= 5 have expired, and a put there is ignored.
        WindowStore::put(&mut store, Bytes::from("b"), Some(Bytes::from("4")), 105).unwrap();
        assert_eq!(store.fetch(b"a", 0).unwrap(), None);
        WindowStore::put(&mut store, Bytes::from("a"), Some(Bytes::from("5")), 5).unwrap();
        assert_eq!(store.fetch(b"a", 5).unwrap(), None);
        assert_eq!(starts(&store, b"a", 0, 200), [50]);
        WindowStore::close(&mut store).unwrap();
    }

    #[test]
    fn restored_from_its_changelog_on_sled() {
        let mut changelog = Vec::new();
        {
            let mut logged = ChangeLoggingStore::new(
                KvWindowStore::new(InMemoryStore::new("w"), 1_000).unwrap(),
                &mut changelog,
            );
            logged
                .put(encode_windowed_key(b"a", 0), Bytes::from("1"))
                .unwrap();
            logged
                .put(encode_windowed_key(b"a", 10), Bytes::from("2"))
                .unwrap();
            logged.delete(encode_windowed_key(b"a", 0)).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = open_window_store(StoreBackend::Sled, dir.path(), "w", 1_000).unwrap();
        crate::restore(&mut store, changelog, 10).unwrap();
        let all: Vec<_> = KeyValueStore::all(&store)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(all, [(encode_windowed_key(b"a", 10), Bytes::from("2"))]);
        KeyValueStore::close(&mut store).unwrap();
    }

    #[test]
    fn kv_view_rejects_short_keys() {
        let mut store = KvWindowStore::new(InMemoryStore::new("w"), 1_000).unwrap();
        assert!(matches!(
            KeyValueStore::put(&mut store, Bytes::from("short"), Bytes::from("v")),
            Err(StoreError::InvalidWindowedKey { len: 5, .. })
        ));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, i64, Option<u8>),
        FetchKey(u8, i64, i64),
        FetchAll(i64, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 0i64..400, proptest::option::weighted(0.8, any::<u8>()))
                .prop_map(|(k, s, v)| Op::Put(k, s, v)),
            1 => (0u8..3, 0i64..400, 0i64..400).prop_map(|(k, a, b)| Op::FetchKey(k, a, b)),
            1 => (0i64..400, 0i64..400).prop_map(|(a, b)| Op::FetchAll(a, b)),
        ]
    }

    fn key(k: u8) -> Bytes {
        Bytes::from(vec![b'k'; usize::from(k)])
    }

    proptest! {
        #[test]
        fn matches_brute_force_model(retention in 1i64..200, ops in proptest::collection::vec(op(), 1..150)) {
            let mut store = KvWindowStore::new(InMemoryStore::new("w"), retention).unwrap();
            let mut model: BTreeMap<(Bytes, i64), Bytes> = BTreeMap::new();
            let mut observed: Option<i64> = None;
            for op in ops {
                match op {
                    Op::Put(k, s, v) => {
                        WindowStore::put(&mut store, key(k), v.map(|b| Bytes::from(vec![b])), s).unwrap();
                        observed = Some(observed.map_or(s, |t| t.max(s)));
                        let cutoff = observed.unwrap_or(i64::MIN) - retention;
                        model.retain(|(_, start), _| *start > cutoff);
                        match v {
                            Some(v) if s > cutoff => { model.insert((key(k), s), Bytes::from(vec![v])); }
                            Some(_) => {}
                            None => { model.remove(&(key(k), s)); }
                        }
                    }
                    Op::FetchKey(k, a, b) => {
                        let got: Vec<(i64, Bytes)> = store.fetch_key_range(&key(k), a, b).unwrap().map(Result::unwrap).collect();
                        let want: Vec<(i64, Bytes)> = model
                            .iter()
                            .filter(|((mk, s), _)| *mk == key(k) && (a..=b).contains(s))
                            .map(|((_, s), v)| (*s, v.clone()))
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                    Op::FetchAll(a, b) => {
                        let got: Vec<(Bytes, i64, Bytes)> = store
                            .fetch_all(a, b)
                            .unwrap()
                            .map(Result::unwrap)
                            .map(|(wk, v)| (wk.key, wk.window_start, v))
                            .collect();
                        let want: Vec<(Bytes, i64, Bytes)> = model
                            .iter()
                            .filter(|((_, s), _)| (a..=b).contains(s))
                            .map(|((k, s), v)| (k.clone(), *s, v.clone()))
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }
}
