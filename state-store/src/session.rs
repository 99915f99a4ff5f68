//! [`KvSessionStore`]: a [`SessionStore`] on any [`KeyValueStore`] backend,
//! in memory ([`InMemorySessionStore`]) or on disk (sled, redb), with
//! time-based retention. It is also a [`KeyValueStore`] over Kafka's
//! session key layout, so that the changelogging and restoration layers
//! apply to it unchanged.

use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Result, StoreError};
use crate::memory::InMemoryStore;
use crate::store::{KeyValueStore, KvIter};
use crate::time_indexed::TimeIndexed;
use crate::windowed::{SessionIter, SessionKey, SessionStore};

/// Bytes after the record key in a session store key: the 8-byte session
/// end then the 8-byte session start, both big-endian.
pub const SESSION_KEY_SUFFIX_LEN: usize = 16;

/// Encodes a session key in Kafka's `SessionKeySchema` layout:
///
/// ```text
/// +-----------------+----------------------------+------------------------------+
/// | key (n bytes)   | session end (i64, BE, 8)   | session start (i64, BE, 8)   |
/// +-----------------+----------------------------+------------------------------+
/// ```
///
/// There is no version byte, so that the changelog stays byte-compatible
/// with Kafka Streams' session-store changelogs.
pub fn encode_session_key(key: &[u8], start: i64, end: i64) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + SESSION_KEY_SUFFIX_LEN);
    buf.put_slice(key);
    buf.put_i64(end);
    buf.put_i64(start);
    buf.freeze()
}

/// Decodes a key written by [`encode_session_key`]; `None` if it is too
/// short to hold the session end and start.
pub fn decode_session_key(bytes: &[u8]) -> Option<SessionKey> {
    let key_len = bytes.len().checked_sub(SESSION_KEY_SUFFIX_LEN)?;
    let (key, suffix) = bytes.split_at(key_len);
    let end: [u8; 8] = suffix.get(..8)?.try_into().ok()?;
    let start: [u8; 8] = suffix.get(8..)?.try_into().ok()?;
    Some(SessionKey {
        key: Bytes::copy_from_slice(key),
        start: i64::from_be_bytes(start),
        end: i64::from_be_bytes(end),
    })
}

/// A session store held in memory.
pub type InMemorySessionStore = KvSessionStore<InMemoryStore>;

/// A [`SessionStore`] on a [`KeyValueStore`] backend.
///
/// Sessions are stored under their changelog key ([`encode_session_key`])
/// with a time index by session end (the layout is drawn in
/// `docs/state-stores.md`). The store's stream time is the largest session end
/// put so far, kept in the backend. A session expires once its end is at
/// or before `stream_time - retention`, as in Kafka Streams' session
/// stores: it is deleted as stream time advances, and a put of an expired
/// session is ignored. (A session aggregation with retention `gap + grace`
/// thus loses a session ending exactly at `stream_time - gap - grace`,
/// though the aggregation still accepts it, as Kafka's does.) Session
/// bounds are expected to be non-negative: range fetches rely on
/// big-endian order.
///
/// ```
/// use bytes::Bytes;
/// use state_store::{InMemorySessionStore, SessionKey, SessionStore};
///
/// # fn main() -> state_store::Result<()> {
/// let mut store = InMemorySessionStore::in_memory("sessions", 100);
/// let session = SessionKey { key: Bytes::from("alice"), start: 10, end: 20 };
/// store.put(session.clone(), Bytes::from("2"))?;
/// // A record at 25 with a gap of 5 merges sessions ending at 20 or later
/// // and starting at 30 or earlier.
/// let found: Vec<_> = store.find_sessions(b"alice", 20, 30)?.collect::<Result<_, _>>()?;
/// assert_eq!(found, [(session, Bytes::from("2"))]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct KvSessionStore<S> {
    data: TimeIndexed<S>,
}

impl InMemorySessionStore {
    /// An empty in-memory store keeping sessions for `retention_ms` after
    /// their end.
    pub fn in_memory(name: impl Into<String>, retention_ms: i64) -> Self {
        Self {
            data: TimeIndexed::new_empty(InMemoryStore::new(name), retention_ms),
        }
    }
}

impl<S: KeyValueStore> KvSessionStore<S> {
    /// A session store in `backend`, which is empty or was written by a
    /// session store. An entry it cannot decode is
    /// [`StoreError::CorruptEntry`].
    pub fn new(backend: S, retention_ms: i64) -> Result<Self> {
        Ok(Self {
            data: TimeIndexed::open(backend, retention_ms)?,
        })
    }

    /// The retention period, milliseconds.
    pub fn retention(&self) -> i64 {
        self.data.retention()
    }

    /// The largest session end put so far.
    pub fn observed_stream_time(&self) -> Option<i64> {
        self.data.observed()
    }

    /// The backend.
    pub fn backend(&self) -> &S {
        self.data.backend()
    }

    fn decode(&self, key: &[u8]) -> Result<SessionKey> {
        decode_session_key(key).ok_or_else(|| StoreError::InvalidSessionKey {
            store: self.data.name().to_owned(),
            len: key.len(),
        })
    }

    /// Every session of `key`, by ascending start then end.
    pub fn fetch(&self, key: &[u8]) -> Result<SessionIter<'_>> {
        self.find_sessions(key, 0, i64::MAX)
    }
}

impl<S: KeyValueStore> SessionStore for KvSessionStore<S> {
    fn name(&self) -> &str {
        self.data.name()
    }

    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>> {
        // This key's sessions ending at or after `earliest_session_end` lie
        // between these bounds (non-negative ends sort numerically); longer
        // keys sharing the prefix may too, and are filtered out.
        let from = encode_session_key(key, 0, earliest_session_end.max(0));
        let mut to = encode_session_key(key, i64::MAX, i64::MAX).to_vec();
        to.push(0);
        let mut out = Vec::new();
        for item in self.data.range(&from, &to)? {
            let (raw, value) = item?;
            let session = self.decode(&raw)?;
            if session.key == key
                && session.end >= earliest_session_end
                && session.start <= latest_session_start
            {
                out.push((session, value));
            }
        }
        out.sort_by_key(|(s, _)| (s.start, s.end));
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn fetch_session(&self, session: &SessionKey) -> Result<Option<Bytes>> {
        self.data.get(&encode_session_key(
            &session.key,
            session.start,
            session.end,
        ))
    }

    fn put(&mut self, session: SessionKey, value: Bytes) -> Result<()> {
        self.data.advance(session.end)?;
        if self.data.is_expired(session.end) {
            tracing::debug!(store = %self.data.name(), start = session.start, end = session.end, stream_time = ?self.data.observed(), "skipping put of an expired session");
            return Ok(());
        }
        let key = encode_session_key(&session.key, session.start, session.end);
        self.data.put(&key, session.end, value)
    }

    fn remove(&mut self, session: &SessionKey) -> Result<()> {
        let key = encode_session_key(&session.key, session.start, session.end);
        self.data.delete(&key, session.end)
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

/// The key-value view: keys are session keys in the layout of
/// [`encode_session_key`], ordered by those bytes. A key too short to be a
/// session key is [`StoreError::InvalidSessionKey`].
impl<S: KeyValueStore> KeyValueStore for KvSessionStore<S> {
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
        let session = self.decode(&key)?;
        SessionStore::put(self, session, value)
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        let session = self.decode(&key)?;
        let old = self.data.get(&key)?;
        if old.is_some() {
            self.remove(&session)?;
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

/// Opens (or creates) session store `name` on `backend` under `state_dir`,
/// keeping sessions for `retention_ms` after their end. A store that fails
/// to open or holds an entry it cannot decode is wiped and opened empty.
/// Returns the store and what the open found of its files: unless they
/// were [`crate::LocalData::Found`], restore it from the start of its
/// changelog and ignore its checkpoint.
pub fn open_session_store(
    backend: impl Into<crate::Engine>,
    state_dir: &Path,
    name: &str,
    retention_ms: i64,
) -> Result<(KvSessionStore<Box<dyn KeyValueStore>>, crate::LocalData)> {
    let engine = backend.into();
    let (base, local) = crate::backend::open_or_wipe(engine.clone(), state_dir, name)?;
    match KvSessionStore::new(base, retention_ms) {
        Ok(store) => Ok((store, local)),
        Err(e @ StoreError::CorruptEntry { .. }) => {
            tracing::warn!(store = name, error = %e, "wiping session store with an undecodable entry");
            crate::wipe(state_dir, name)?;
            let base = crate::backend::open_store(engine, state_dir, name)?;
            Ok((
                KvSessionStore::new(base, retention_ms)?,
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
    use crate::StoreBackend;

    fn session(key: &str, start: i64, end: i64) -> SessionKey {
        SessionKey {
            key: Bytes::copy_from_slice(key.as_bytes()),
            start,
            end,
        }
    }

    fn found(store: &impl SessionStore, key: &str, e: i64, s: i64) -> Vec<(i64, i64)> {
        store
            .find_sessions(key.as_bytes(), e, s)
            .unwrap()
            .map(|r| r.map(|(k, _)| (k.start, k.end)))
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn find_sessions_returns_overlapping_sessions_of_the_key() {
        let mut store = InMemorySessionStore::in_memory("s", 1_000);
        SessionStore::put(&mut store, session("a", 0, 10), Bytes::from("1")).unwrap();
        SessionStore::put(&mut store, session("a", 20, 30), Bytes::from("2")).unwrap();
        SessionStore::put(&mut store, session("a", 50, 50), Bytes::from("3")).unwrap();
        SessionStore::put(&mut store, session("ab", 20, 30), Bytes::from("4")).unwrap();
        // A record at 25 with a gap of 5: ends >= 20, starts <= 30.
        assert_eq!(found(&store, "a", 20, 30), [(20, 30)]);
        // A record at 15 with a gap of 5 bridges [0, 10] and [20, 30].
        assert_eq!(found(&store, "a", 10, 20), [(0, 10), (20, 30)]);
        assert_eq!(found(&store, "a", 51, 100), []);
        assert_eq!(found(&store, "ab", 0, 100), [(20, 30)]);
        assert_eq!(
            store.fetch_session(&session("a", 50, 50)).unwrap(),
            Some(Bytes::from("3"))
        );
        store.remove(&session("a", 20, 30)).unwrap();
        assert_eq!(found(&store, "a", 0, 100), [(0, 10), (50, 50)]);
    }

    #[test]
    fn expired_sessions_are_dropped_and_not_put() {
        let mut store = InMemorySessionStore::in_memory("s", 100);
        SessionStore::put(&mut store, session("a", 0, 9), Bytes::from("1")).unwrap();
        SessionStore::put(&mut store, session("a", 60, 110), Bytes::from("2")).unwrap();
        // Stream time 110, retention 100: ends at 10 or before have expired.
        assert_eq!(found(&store, "a", 0, 1_000), [(60, 110)]);
        SessionStore::put(&mut store, session("b", 5, 10), Bytes::from("3")).unwrap();
        assert_eq!(found(&store, "b", 0, 1_000), []);
        SessionStore::put(&mut store, session("b", 5, 11), Bytes::from("4")).unwrap();
        assert_eq!(found(&store, "b", 0, 1_000), [(5, 11)]);
        assert_eq!(store.approximate_num_entries().unwrap(), 2);
    }

    #[test]
    fn kv_view_uses_session_key_layout_and_rejects_short_keys() {
        let mut store = InMemorySessionStore::in_memory("s", 1_000);
        let key = encode_session_key(b"k", 3, 9);
        let mut expected = b"k".to_vec();
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&3i64.to_be_bytes());
        assert_eq!(key.as_ref(), expected.as_slice());
        KeyValueStore::put(&mut store, key.clone(), Bytes::from("v")).unwrap();
        assert_eq!(found(&store, "k", 0, 100), [(3, 9)]);
        assert!(matches!(
            KeyValueStore::put(&mut store, Bytes::from("short"), Bytes::from("v")),
            Err(StoreError::InvalidSessionKey { len: 5, .. })
        ));
        assert_eq!(store.delete(key).unwrap(), Some(Bytes::from("v")));
        assert_eq!(store.approximate_num_entries().unwrap(), 0);
    }

    #[test]
    fn restored_from_its_changelog() {
        let mut changelog = Vec::new();
        {
            let mut logged = ChangeLoggingStore::new(
                InMemorySessionStore::in_memory("s", 1_000),
                &mut changelog,
            );
            logged
                .put(encode_session_key(b"a", 0, 5), Bytes::from("1"))
                .unwrap();
            logged
                .put(encode_session_key(b"a", 20, 20), Bytes::from("2"))
                .unwrap();
            // A merge: both removed, the merged session put.
            logged.delete(encode_session_key(b"a", 0, 5)).unwrap();
            logged.delete(encode_session_key(b"a", 20, 20)).unwrap();
            logged
                .put(encode_session_key(b"a", 0, 20), Bytes::from("3"))
                .unwrap();
        }
        assert_eq!(changelog.len(), 5);
        let mut restored = InMemorySessionStore::in_memory("s", 1_000);
        crate::restore(&mut restored, changelog, 2).unwrap();
        let all: Vec<_> = restored.fetch(b"a").unwrap().map(Result::unwrap).collect();
        assert_eq!(all, [(session("a", 0, 20), Bytes::from("3"))]);
        assert_eq!(restored.observed_stream_time(), Some(20));
    }

    #[test]
    fn sled_store_keeps_sessions_and_stream_time_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut store, local) =
                open_session_store(StoreBackend::Sled, dir.path(), "s", 100).unwrap();
            assert_eq!(local, crate::LocalData::Created);
            assert!(KeyValueStore::persistent(&store));
            SessionStore::put(&mut store, session("a", 0, 10), Bytes::from("1")).unwrap();
            SessionStore::put(&mut store, session("a", 30, 40), Bytes::from("2")).unwrap();
            SessionStore::close(&mut store).unwrap();
        }
        let (mut store, local) =
            open_session_store(StoreBackend::Sled, dir.path(), "s", 100).unwrap();
        assert_eq!(local, crate::LocalData::Found);
        assert_eq!(store.observed_stream_time(), Some(40));
        assert_eq!(found(&store, "a", 0, 100), [(0, 10), (30, 40)]);
        // Stream time 121 expires the session ending at 10 on disk too.
        SessionStore::put(&mut store, session("b", 121, 121), Bytes::from("3")).unwrap();
        assert_eq!(found(&store, "a", 0, 100), [(30, 40)]);
        SessionStore::close(&mut store).unwrap();
    }

    #[test]
    fn undecodable_meta_wipes_the_store() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut raw = crate::open_store(StoreBackend::Sled, dir.path(), "s").unwrap();
            raw.put(Bytes::from_static(&[0]), Bytes::from_static(&[7]))
                .unwrap();
            raw.close().unwrap();
        }
        let (mut store, local) =
            open_session_store(StoreBackend::Sled, dir.path(), "s", 100).unwrap();
        assert_eq!(local, crate::LocalData::Wiped);
        assert_eq!(store.observed_stream_time(), None);
        SessionStore::close(&mut store).unwrap();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, i64, i64, u8),
        Remove(u8, i64, i64),
        Find(u8, i64, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 0i64..300, 0i64..50, any::<u8>()).prop_map(|(k, s, len, v)| Op::Put(k, s, s + len, v)),
            1 => (0u8..3, 0i64..300, 0i64..50).prop_map(|(k, s, len)| Op::Remove(k, s, s + len)),
            2 => (0u8..3, 0i64..350, 0i64..350).prop_map(|(k, e, s)| Op::Find(k, e, s)),
        ]
    }

    fn key(k: u8) -> Bytes {
        Bytes::from(vec![b'k'; usize::from(k)])
    }

    proptest! {
        #[test]
        fn matches_brute_force_model(retention in 1i64..200, ops in proptest::collection::vec(op(), 1..150)) {
            let mut store = InMemorySessionStore::in_memory("s", retention);
            let mut model: BTreeMap<(Bytes, i64, i64), Bytes> = BTreeMap::new();
            let mut observed: Option<i64> = None;
            for op in ops {
                match op {
                    Op::Put(k, s, e, v) => {
                        SessionStore::put(&mut store, SessionKey { key: key(k), start: s, end: e }, Bytes::from(vec![v])).unwrap();
                        observed = Some(observed.map_or(e, |t| t.max(e)));
                        let bound = observed.unwrap_or(i64::MIN) - retention;
                        model.retain(|(_, _, end), _| *end > bound);
                        if e > bound {
                            model.insert((key(k), s, e), Bytes::from(vec![v]));
                        }
                    }
                    Op::Remove(k, s, e) => {
                        store.remove(&SessionKey { key: key(k), start: s, end: e }).unwrap();
                        model.remove(&(key(k), s, e));
                    }
                    Op::Find(k, ee, ls) => {
                        let got: Vec<(i64, i64, Bytes)> = store
                            .find_sessions(&key(k), ee, ls)
                            .unwrap()
                            .map(Result::unwrap)
                            .map(|(sk, v)| (sk.start, sk.end, v))
                            .collect();
                        let want: Vec<(i64, i64, Bytes)> = model
                            .iter()
                            .filter(|((mk, s, e), _)| *mk == key(k) && *e >= ee && *s <= ls)
                            .map(|((_, s, e), v)| (*s, *e, v.clone()))
                            .collect();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }

        #[test]
        fn session_key_round_trips(k in proptest::collection::vec(any::<u8>(), 0..20), start in any::<i64>(), end in any::<i64>()) {
            let encoded = encode_session_key(&k, start, end);
            prop_assert_eq!(encoded.len(), k.len() + SESSION_KEY_SUFFIX_LEN);
            prop_assert_eq!(decode_session_key(&encoded), Some(SessionKey { key: Bytes::from(k), start, end }));
        }
    }
}
