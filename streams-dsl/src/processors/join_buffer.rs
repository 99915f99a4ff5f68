//! The time-ordered buffer of a stream–table join with a grace period
//! (Kafka's `RocksDBTimeOrderedKeyValueBuffer`): stream records wait in a
//! key-value store, ordered by timestamp, until stream time has passed
//! their timestamp by the grace period.
//!
//! The store holds bytes (`<join name>-Buffer`, changelogged like any
//! store). Its keys, by their first byte:
//!
//! ```text
//! 0x00                                          -> meta: version (u8 = 1), observed
//!                                                  stream time (i64 BE; i64::MIN before
//!                                                  the first record), next sequence
//!                                                  number (u32 BE)
//! 0x01 | timestamp* | key bytes | seq (u32 BE)  -> a record: version (u8 = 1), header
//!                                                  count (u32 BE), each header (key length
//!                                                  u32 BE, key UTF-8, 1 + value length u32
//!                                                  BE + value or 0), then the value bytes
//! ```
//!
//! `*`: an i64 big-endian with its sign bit flipped, so that records sort
//! by timestamp, then by their key's bytes, then by arrival: Kafka's
//! `TimeFirstWindowKeySchema` order, in which it evicts them.

use bytes::{BufMut, Bytes, BytesMut};
use streams_core::{Headers, ProcessorContext, Record, Result, SerdeError};

use crate::options::SerdeArc;

const META_KEY: &[u8] = &[0x00];
const RECORD_PREFIX: u8 = 0x01;
const FORMAT_VERSION: u8 = 1;
const META_LEN: usize = 1 + 8 + 4;

/// `t` with its sign bit flipped, big-endian: sorts like `t`.
fn ordered_time(t: i64) -> [u8; 8] {
    (u64::from_be_bytes(t.to_be_bytes()) ^ (1 << 63)).to_be_bytes()
}

/// The buffer of one join processor, over its store.
pub(crate) struct JoinBuffer<K, V> {
    store: String,
    grace_ms: i64,
    key_serde: SerdeArc<K>,
    value_serde: SerdeArc<V>,
    /// The observed stream time (the largest timestamp buffered) and the
    /// next sequence number, read from the store at first use.
    state: Option<(Option<i64>, u32)>,
}

impl<K, V> std::fmt::Debug for JoinBuffer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinBuffer")
            .field("store", &self.store)
            .field("grace_ms", &self.grace_ms)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> JoinBuffer<K, V> {
    pub(crate) fn new(
        store: String,
        grace_ms: i64,
        key_serde: SerdeArc<K>,
        value_serde: SerdeArc<V>,
    ) -> Self {
        Self {
            store,
            grace_ms,
            key_serde,
            value_serde,
            state: None,
        }
    }

    fn corrupt(&self, reason: String) -> streams_core::StreamsError {
        SerdeError::deserialize::<Record<K, V>>(&self.store, reason).into()
    }

    fn state<KO, VO>(
        &mut self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
    ) -> Result<(Option<i64>, u32)> {
        if let Some(state) = self.state {
            return Ok(state);
        }
        let meta = ctx
            .key_value_store::<Bytes, Bytes>(&self.store)?
            .get(&Bytes::from_static(META_KEY))?;
        let state = match meta {
            None => (None, 0),
            Some(meta) => {
                if meta.len() != META_LEN || meta[0] != FORMAT_VERSION {
                    return Err(self.corrupt(format!(
                        "a join buffer's metadata of {} bytes, version {:?}",
                        meta.len(),
                        meta.first()
                    )));
                }
                let mut time = [0u8; 8];
                time.copy_from_slice(&meta[1..9]);
                let mut seq = [0u8; 4];
                seq.copy_from_slice(&meta[9..13]);
                let time = i64::from_be_bytes(time);
                ((time != i64::MIN).then_some(time), u32::from_be_bytes(seq))
            }
        };
        self.state = Some(state);
        Ok(state)
    }

    /// Buffers `record` (whose key and value are not null) unless it is
    /// already too late to wait: older than the observed stream time minus
    /// the grace period. Returns whether it was buffered.
    pub(crate) fn put<KO, VO>(
        &mut self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        key: &K,
        value: &V,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<bool> {
        let (observed, seq) = self.state(ctx)?;
        if observed.is_some_and(|t| t.saturating_sub(self.grace_ms) > timestamp) {
            return Ok(false);
        }
        let key_bytes = self.key_serde.serialize(&self.store, key)?;
        let value_bytes = self.value_serde.serialize(&self.store, value)?;
        let mut entry_key = BytesMut::with_capacity(13 + key_bytes.len());
        entry_key.put_u8(RECORD_PREFIX);
        entry_key.put_slice(&ordered_time(timestamp));
        entry_key.put_slice(&key_bytes);
        entry_key.put_u32(seq);
        let entry = encode_entry(headers, &value_bytes);
        let observed = observed.map_or(timestamp, |t| t.max(timestamp));
        // Kafka's sequence numbers stay positive.
        let next = (seq + 1) & 0x7fff_ffff;
        let mut meta = BytesMut::with_capacity(META_LEN);
        meta.put_u8(FORMAT_VERSION);
        meta.put_i64(observed);
        meta.put_u32(next);
        let mut store = ctx.key_value_store::<Bytes, Bytes>(&self.store)?;
        store.put(&entry_key.freeze(), &entry)?;
        store.put(&Bytes::from_static(META_KEY), &meta.freeze())?;
        self.state = Some((Some(observed), next));
        Ok(true)
    }

    /// Removes and returns the buffered records whose wait is over
    /// (timestamp at most the observed stream time minus the grace
    /// period), in timestamp order, then by key bytes, then by arrival.
    pub(crate) fn evict<KO, VO>(
        &mut self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
    ) -> Result<Vec<Record<K, V>>> {
        let (observed, _) = self.state(ctx)?;
        let Some(observed) = observed else {
            return Ok(Vec::new());
        };
        let limit = observed.saturating_sub(self.grace_ms);
        let from = Bytes::from_static(&[RECORD_PREFIX]);
        // `range` is inclusive: 9 bytes sort before every record key of
        // timestamp `limit + 1`, which has more.
        let to = match limit.checked_add(1) {
            Some(next) => {
                let mut to = vec![RECORD_PREFIX];
                to.extend_from_slice(&ordered_time(next));
                Bytes::from(to)
            }
            None => Bytes::from_static(&[RECORD_PREFIX + 1]),
        };
        let mut store = ctx.key_value_store::<Bytes, Bytes>(&self.store)?;
        let due: Vec<(Bytes, Bytes)> = store.range(&from, &to)?.collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(due.len());
        for (entry_key, entry) in due {
            store.delete(&entry_key)?;
            let (timestamp, key) = entry_key
                .len()
                .checked_sub(4)
                .filter(|&end| end >= 9)
                .map(|end| {
                    let mut time = [0u8; 8];
                    time.copy_from_slice(&entry_key[1..9]);
                    let time = (u64::from_be_bytes(time) ^ (1 << 63)) as i64;
                    (time, entry_key.slice(9..end))
                })
                .ok_or_else(|| {
                    self.corrupt(format!("a join buffer key of {} bytes", entry_key.len()))
                })?;
            let (headers, value) = decode_entry(&entry)
                .ok_or_else(|| self.corrupt("an undecodable join buffer entry".to_owned()))?;
            let key = self.key_serde.deserialize(&self.store, &key)?;
            let value = self.value_serde.deserialize(&self.store, &value)?;
            out.push(Record::new(key, value, timestamp).with_headers(headers));
        }
        Ok(out)
    }
}

fn encode_entry(headers: &Headers, value: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(5 + value.len());
    buf.put_u8(FORMAT_VERSION);
    buf.put_u32(u32::try_from(headers.len()).unwrap_or(u32::MAX));
    for header in headers {
        buf.put_u32(u32::try_from(header.key.len()).unwrap_or(u32::MAX));
        buf.put_slice(header.key.as_bytes());
        match &header.value {
            Some(v) => {
                buf.put_u8(1);
                buf.put_u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
                buf.put_slice(v);
            }
            None => buf.put_u8(0),
        }
    }
    buf.put_slice(value);
    buf.freeze()
}

fn decode_entry(entry: &Bytes) -> Option<(Headers, Bytes)> {
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Option<std::ops::Range<usize>> {
        let end = at.checked_add(n).filter(|&end| end <= entry.len())?;
        let range = *at..end;
        *at = end;
        Some(range)
    };
    let u32_at = |at: &mut usize| -> Option<usize> {
        let r = take(at, 4)?;
        usize::try_from(u32::from_be_bytes(entry[r].try_into().ok()?)).ok()
    };
    if entry[take(&mut at, 1)?][0] != FORMAT_VERSION {
        return None;
    }
    let count = u32_at(&mut at)?;
    let mut headers = Headers::new();
    for _ in 0..count {
        let len = u32_at(&mut at)?;
        let key = std::str::from_utf8(&entry[take(&mut at, len)?])
            .ok()?
            .to_owned();
        let value = match entry[take(&mut at, 1)?][0] {
            0 => None,
            1 => {
                let len = u32_at(&mut at)?;
                Some(entry.slice(take(&mut at, len)?))
            }
            _ => return None,
        };
        headers.add(key, value);
    }
    Some((headers, entry.slice(at..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_with_headers() {
        let mut headers = Headers::new();
        headers.add("a", Some(Bytes::from_static(b"1")));
        headers.add("b", None);
        let entry = encode_entry(&headers, b"value");
        let (decoded, value) = decode_entry(&entry).unwrap();
        assert_eq!(decoded, headers);
        assert_eq!(value, Bytes::from_static(b"value"));
        let plain = encode_entry(&Headers::new(), b"");
        assert_eq!(plain.as_ref(), [1, 0, 0, 0, 0]);
        assert_eq!(decode_entry(&plain), Some((Headers::new(), Bytes::new())));
    }

    #[test]
    fn entry_layout_is_pinned() {
        let mut headers = Headers::new();
        headers.add("k", Some(Bytes::from_static(b"v")));
        headers.add("n", None);
        let entry = encode_entry(&headers, b"x");
        assert_eq!(
            entry.as_ref(),
            [
                1, // version
                0, 0, 0, 2, // headers
                0, 0, 0, 1, b'k', 1, 0, 0, 0, 1, b'v', // k = v
                0, 0, 0, 1, b'n', 0,    // n = null
                b'x', // the value
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let _ = decode_entry(&Bytes::from(bytes));
        }
    }

    #[test]
    fn ordered_time_sorts_like_the_number() {
        let times = [i64::MIN, -5, 0, 3, i64::MAX];
        for w in times.windows(2) {
            assert!(ordered_time(w[0]) < ordered_time(w[1]));
        }
    }
}
