//! What a task writes for topics between two hand-overs to the producer:
//! the records of its sinks, changelogs and dead letters, in order.
//!
//! A sink serializes keys and values straight into one buffer, and a record
//! keeps where its bytes are in it: no buffer, and no reference-counted
//! slice, per key and per value on the stream thread. The buffer becomes
//! one `Bytes` when the output is turned into records, on the sender's
//! thread, which slices it there and frees it once, when the batch is sent.
//! Records that come with bytes of their own (changelog updates, dead
//! letters) keep them.

use std::sync::Arc;

use bytes::Bytes;

use crate::client::OutRecord as Outgoing;
use crate::record::Headers;
use crate::record::RawRecord;
use crate::serdes::SerdeError;

/// The largest changelog update (key and value bytes) that
/// [`Output::push_logged`] copies rather than shares.
const COPIED_UPDATE_BYTES: usize = 512;

/// Where a key or a value of an output record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// A null.
    Null,
    /// In the output's buffer.
    Inline { start: u32, len: u32 },
    /// Bytes of its own, at this index of the output's shared bytes.
    Shared(u32),
}

#[derive(Debug)]
struct OutRecord {
    /// Index into [`Output::topics`].
    topic: u32,
    key: Field,
    value: Field,
    timestamp: i64,
    headers: Headers,
}

/// A task's records for topics, in the order they were written.
#[derive(Debug, Default)]
pub(crate) struct Output {
    topics: Vec<Arc<str>>,
    bytes: Vec<u8>,
    shared: Vec<Bytes>,
    records: Vec<OutRecord>,
}

impl Output {
    /// An empty output with room for `records` records and `bytes` bytes of
    /// serialized keys and values.
    pub(crate) fn with_room(records: usize, bytes: usize) -> Self {
        Self {
            topics: Vec::new(),
            bytes: Vec::with_capacity(bytes),
            shared: Vec::new(),
            records: Vec::with_capacity(records),
        }
    }

    /// The number of records.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The bytes of the serialized keys and values.
    pub(crate) fn bytes_len(&self) -> usize {
        self.bytes.len()
    }

    #[inline]
    fn topic_index(&mut self, topic: &Arc<str>) -> u32 {
        // A task writes to a handful of topics, most often the last one.
        // The same name may come in another `Arc` (`send_bytes` makes one
        // per call): a topic is one entry whatever its `Arc`, or the list
        // would grow with every record and each search with it.
        if let Some(i) = self
            .topics
            .iter()
            .rposition(|t| Arc::ptr_eq(t, topic) || **t == **topic)
        {
            return i as u32;
        }
        self.topics.push(topic.clone());
        (self.topics.len() - 1) as u32
    }

    fn share(&mut self, bytes: Option<Bytes>) -> Field {
        match bytes {
            None => Field::Null,
            Some(bytes) => {
                self.shared.push(bytes);
                Field::Shared((self.shared.len() - 1) as u32)
            }
        }
    }

    /// Appends a record that has bytes of its own.
    pub(crate) fn push_raw(&mut self, topic: &Arc<str>, raw: RawRecord) {
        let topic = self.topic_index(topic);
        let key = self.share(raw.key);
        let value = self.share(raw.value);
        self.records.push(OutRecord {
            topic,
            key,
            value,
            timestamp: raw.timestamp,
            headers: raw.headers,
        });
    }

    /// Appends a store's changelog update. A key and value of up to
    /// [`COPIED_UPDATE_BYTES`] together are copied into the buffer and
    /// their own bytes released here: a store keeps the same bytes (a
    /// stream–stream join's window store, a record cache's value), and the
    /// sender's thread releasing them later would take the cache line of
    /// their reference count (and of the bytes beside it) to its core while
    /// the stream thread reads and releases them too. Larger ones are
    /// shared, as [`Output::push_raw`] does.
    pub(crate) fn push_logged(
        &mut self,
        topic: &Arc<str>,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
    ) {
        if key.len() + value.as_ref().map_or(0, Bytes::len) > COPIED_UPDATE_BYTES {
            return self.push_raw(
                topic,
                RawRecord {
                    key: Some(key),
                    value,
                    timestamp,
                    headers: Headers::new(),
                },
            );
        }
        let key = self.push_slice(&key);
        let value = match &value {
            Some(value) => self.push_slice(value),
            None => Field::Null,
        };
        self.push_fields(topic, key, value, timestamp, Headers::new());
    }

    /// Appends a store's changelog put whose key and value are borrowed:
    /// both are copied into the buffer.
    pub(crate) fn push_logged_slices(
        &mut self,
        topic: &Arc<str>,
        key: &[u8],
        value: &[u8],
        timestamp: i64,
    ) {
        let key = self.push_slice(key);
        let value = self.push_slice(value);
        self.push_fields(topic, key, value, timestamp, Headers::new());
    }

    /// Serializes a key or a value into the buffer with `write`. On an
    /// error, the buffer is as it was.
    pub(crate) fn write_field(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), SerdeError>,
    ) -> Result<Field, SerdeError> {
        let start = self.bytes.len();
        if let Err(e) = write(&mut self.bytes) {
            self.bytes.truncate(start);
            return Err(e);
        }
        let len = self.bytes.len() - start;
        match (u32::try_from(start), u32::try_from(len)) {
            (Ok(start), Ok(len)) if start.checked_add(len).is_some() => {
                Ok(Field::Inline { start, len })
            }
            // Past what a field can point at: the bytes move out.
            _ => {
                let own = Bytes::copy_from_slice(&self.bytes[start..]);
                self.bytes.truncate(start);
                Ok(self.share(Some(own)))
            }
        }
    }

    /// Copies `bytes`, a key's or a value's, into the buffer.
    #[inline]
    pub(crate) fn push_slice(&mut self, bytes: &[u8]) -> Field {
        let start = self.bytes.len();
        match (u32::try_from(start), u32::try_from(bytes.len())) {
            (Ok(start), Ok(len)) if start.checked_add(len).is_some() => {
                self.bytes.extend_from_slice(bytes);
                Field::Inline { start, len }
            }
            // Past what a field can point at: the bytes keep their own.
            _ => self.share(Some(Bytes::copy_from_slice(bytes))),
        }
    }

    /// Undoes the fields written since the buffer had `len` bytes (a record
    /// whose value failed to serialize after its key did).
    pub(crate) fn truncate_bytes(&mut self, len: usize) {
        self.bytes.truncate(len);
    }

    /// Appends a record whose fields [`Output::write_field`] wrote.
    #[inline(always)]
    pub(crate) fn push_fields(
        &mut self,
        topic: &Arc<str>,
        key: Field,
        value: Field,
        timestamp: i64,
        headers: Headers,
    ) {
        let topic = self.topic_index(topic);
        self.records.push(OutRecord {
            topic,
            key,
            value,
            timestamp,
            headers,
        });
    }

    /// The topics written, in the order of their first record.
    pub(crate) fn topics(&self) -> &[Arc<str>] {
        &self.topics
    }

    /// The records, in order, borrowed for the producer: `targets` gives the
    /// physical topic and pinned partition of each of [`Output::topics`].
    pub(crate) fn outgoing<'a>(&'a self, targets: &[(&'a str, Option<u32>)]) -> Vec<Outgoing<'a>> {
        self.records
            .iter()
            .map(|r| {
                let (topic, partition) = targets[r.topic as usize];
                Outgoing {
                    topic,
                    partition,
                    timestamp: r.timestamp,
                    key: self.field(r.key),
                    value: self.field(r.value),
                    headers: r.headers.as_slice(),
                }
            })
            .collect()
    }

    fn field(&self, field: Field) -> Option<&[u8]> {
        match field {
            Field::Null => None,
            Field::Inline { start, len } => {
                let start = start as usize;
                Some(&self.bytes[start..start + len as usize])
            }
            Field::Shared(i) => Some(&self.shared[i as usize]),
        }
    }

    /// The records, each with its topic, in order.
    pub(crate) fn into_records(self) -> impl Iterator<Item = (Arc<str>, RawRecord)> {
        let Output {
            topics,
            bytes,
            mut shared,
            records,
        } = self;
        let bytes = Bytes::from(bytes);
        records.into_iter().map(move |r| {
            let mut field = |f: Field| match f {
                Field::Null => None,
                Field::Inline { start, len } => {
                    let start = start as usize;
                    Some(bytes.slice(start..start + len as usize))
                }
                Field::Shared(i) => shared.get_mut(i as usize).map(std::mem::take),
            };
            let key = field(r.key);
            let value = field(r.value);
            (
                topics[r.topic as usize].clone(),
                RawRecord {
                    key,
                    value,
                    timestamp: r.timestamp,
                    headers: r.headers,
                },
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(key: Option<&str>, value: Option<&str>, timestamp: i64) -> RawRecord {
        RawRecord {
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
            timestamp,
            headers: Headers::new(),
        }
    }

    fn put(text: &str) -> impl FnOnce(&mut Vec<u8>) -> Result<(), SerdeError> + '_ {
        move |out| {
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
    }

    #[test]
    fn a_topic_named_again_in_a_new_arc_is_one_topic() {
        let mut out = Output::with_room(4, 16);
        for i in 0..1_000 {
            let topic: Arc<str> = Arc::from(if i % 2 == 0 { "a" } else { "b" });
            out.push_raw(&topic, raw(Some("k"), Some("v"), i));
        }
        assert_eq!(out.len(), 1_000);
        assert_eq!(out.topics().len(), 2);
    }

    #[test]
    fn records_come_back_in_order_with_their_topics_and_bytes() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut out = Output::with_room(4, 16);
        let key = out.write_field(put("k1")).unwrap();
        let value = out.write_field(put("v1")).unwrap();
        out.push_fields(&a, key, value, 1, Headers::new());
        out.push_raw(&b, raw(Some("ck"), None, 2));
        let key = out.write_field(put("")).unwrap();
        out.push_fields(&a, key, Field::Null, 3, Headers::new());
        // A failed value leaves no bytes behind.
        let mark = out.bytes_len();
        let key = out.write_field(put("k4")).unwrap();
        let failed = out.write_field(|buf| {
            buf.extend_from_slice(b"partial");
            Err(SerdeError::serialize::<String>("a", "no"))
        });
        assert!(failed.is_err());
        // The failed write left nothing; the key stays until the sink
        // undoes the record.
        assert_eq!(out.bytes_len(), mark + 2);
        assert_eq!(
            key,
            Field::Inline {
                start: mark as u32,
                len: 2
            }
        );
        out.truncate_bytes(mark);
        assert_eq!(out.bytes_len(), mark);
        let key = out.write_field(put("k5")).unwrap();
        out.push_fields(&b, key, Field::Null, 5, Headers::new());
        assert_eq!(out.len(), 4);
        let records: Vec<_> = out.into_records().collect();
        let expected = [
            ("a", raw(Some("k1"), Some("v1"), 1)),
            ("b", raw(Some("ck"), None, 2)),
            ("a", raw(Some(""), None, 3)),
            ("b", raw(Some("k5"), None, 5)),
        ];
        assert_eq!(records.len(), expected.len());
        for ((topic, record), (want_topic, want)) in records.iter().zip(expected) {
            assert_eq!(&**topic, want_topic);
            assert_eq!(record, &want);
        }
    }

    #[test]
    fn logged_updates_are_copied_unless_large_and_come_back_the_same() {
        let topic: Arc<str> = Arc::from("changelog");
        let mut out = Output::with_room(4, 16);
        let large = "x".repeat(COPIED_UPDATE_BYTES);
        let updates = [
            raw(Some("k"), Some("v"), 1),
            raw(Some("k"), None, 2),
            raw(Some("big"), Some(&large), 3),
        ];
        for update in updates.clone() {
            let key = update.key.unwrap();
            out.push_logged(&topic, key, update.value, update.timestamp);
        }
        // The small ones went into the buffer ("k", "v", "k"); the large
        // one kept its bytes.
        assert_eq!(out.bytes_len(), 3);
        assert_eq!(out.shared.len(), 2);
        let records: Vec<_> = out.into_records().collect();
        assert_eq!(records.len(), updates.len());
        for ((t, record), want) in records.iter().zip(updates) {
            assert_eq!(t, &topic);
            assert_eq!(record, &want);
        }
    }

    #[test]
    fn borrowed_records_are_the_records_on_their_targets() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        // Copied slices land in the buffer as written fields do.
        let mut out = Output::default();
        let key = out.push_slice(b"k1");
        assert_eq!(key, Field::Inline { start: 0, len: 2 });
        let value = out.push_slice(b"v1");
        let mut headers = Headers::new();
        headers.add("h", Some(Bytes::from_static(b"x")));
        out.push_fields(&a, key, value, 1, headers.clone());
        out.push_raw(&b, raw(Some("ck"), None, 2));
        out.push_fields(&a, Field::Null, Field::Null, 3, Headers::new());
        let mut second = raw(None, Some("v4"), 4);
        second.headers = headers;
        out.push_raw(&b, second);
        assert_eq!(&*out.topics()[0], "a");
        assert_eq!(&*out.topics()[1], "b");
        let targets = [("phys-a", None), ("phys-b", Some(7))];
        let refs = out.outgoing(&targets);
        let header = [crate::record::Header::new("h", "x")];
        let expected = [
            (
                "phys-a",
                None,
                1,
                Some(&b"k1"[..]),
                Some(&b"v1"[..]),
                &header[..],
            ),
            ("phys-b", Some(7), 2, Some(b"ck"), None, &[]),
            ("phys-a", None, 3, None, None, &[]),
            ("phys-b", Some(7), 4, None, Some(b"v4"), &header),
        ];
        assert_eq!(refs.len(), expected.len());
        for (r, (topic, partition, timestamp, key, value, headers)) in refs.iter().zip(expected) {
            assert_eq!(r.topic, topic);
            assert_eq!(r.partition, partition);
            assert_eq!(r.timestamp, timestamp);
            assert_eq!(r.key, key);
            assert_eq!(r.value, value);
            assert_eq!(r.headers, headers);
        }
    }

    #[test]
    fn an_empty_output_has_no_records() {
        let out = Output::default();
        assert!(out.is_empty());
        assert_eq!(out.into_records().count(), 0);
    }
}
