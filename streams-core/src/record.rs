//! Records as processors see them: [`Record`], [`Headers`] and the
//! [`RecordMetadata`] of the input record being processed.

use std::sync::Arc;

use bytes::Bytes;

/// One record header: a key and an optional value, as Kafka's `Header`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key.
    pub key: String,
    /// The header value; `None` is a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// The headers of a record, in order; a key may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    /// `None` when there are none, never an empty vector: most records
    /// have no headers, and every record a processor forwards carries its
    /// input's, so the empty case is one word, copied and cloned for free.
    /// The box is what makes it one word: a bare `Vec` is three.
    #[allow(clippy::box_collection)]
    entries: Option<Box<Vec<Header>>>,
}

impl Headers {
    /// No headers (does not allocate).
    pub fn new() -> Self {
        Self::default()
    }

    fn slice(&self) -> &[Header] {
        self.entries.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Appends a header.
    pub fn add(&mut self, key: impl Into<String>, value: Option<Bytes>) -> &mut Self {
        self.entries
            .get_or_insert_with(Default::default)
            .push(Header {
                key: key.into(),
                value,
            });
        self
    }

    /// Removes every header with `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        if let Some(entries) = &mut self.entries {
            entries.retain(|h| h.key != key);
            if entries.is_empty() {
                self.entries = None;
            }
        }
        self
    }

    /// The last header with `key`, as Kafka's `lastHeader`.
    pub fn last(&self, key: &str) -> Option<&Header> {
        self.slice().iter().rev().find(|h| h.key == key)
    }

    /// Every header with `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.slice().iter().filter(move |h| h.key == key)
    }

    /// Every header, in order, as a slice.
    pub(crate) fn as_slice(&self) -> &[Header] {
        self.slice()
    }

    /// Every header, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.slice().iter()
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        self.slice().len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }
}

impl From<Vec<Header>> for Headers {
    fn from(entries: Vec<Header>) -> Self {
        Self {
            entries: (!entries.is_empty()).then(|| Box::new(entries)),
        }
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Headers {
    type Item = Header;
    type IntoIter = std::vec::IntoIter<Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.map(|e| *e).unwrap_or_default().into_iter()
    }
}

/// A record flowing between processors, as Kafka's
/// `org.apache.kafka.streams.processor.api.Record`: an optional key, an
/// optional value (`None` is a null, e.g. a tombstone), a timestamp in epoch
/// milliseconds and headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record<K, V> {
    /// The key; `None` is a null key.
    pub key: Option<K>,
    /// The value; `None` is a null value.
    pub value: Option<V>,
    /// Epoch milliseconds.
    pub timestamp: i64,
    /// The headers.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record with a key and a value and no headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Self {
            key: Some(key),
            value: Some(value),
            timestamp,
            headers: Headers::new(),
        }
    }

    /// A record with an optional key and value and no headers.
    pub fn from_parts(key: Option<K>, value: Option<V>, timestamp: i64) -> Self {
        Self {
            key,
            value,
            timestamp,
            headers: Headers::new(),
        }
    }

    /// The same record with another key.
    pub fn with_key<K2>(self, key: Option<K2>) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value.
    pub fn with_value<V2>(self, value: Option<V2>) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another timestamp.
    pub fn with_timestamp(self, timestamp: i64) -> Self {
        Self { timestamp, ..self }
    }

    /// The same record with other headers.
    pub fn with_headers(self, headers: Headers) -> Self {
        Self { headers, ..self }
    }
}

/// Where the input record being processed came from, as Kafka's
/// `RecordMetadata` plus its timestamp and headers. Absent while a
/// punctuator runs or a cache flush is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The input topic.
    pub topic: Arc<str>,
    /// The input partition.
    pub partition: u32,
    /// The record's offset in the partition.
    pub offset: u64,
    /// The record's timestamp, epoch milliseconds.
    pub timestamp: i64,
    /// The record's headers as read.
    pub headers: Headers,
}

/// A record as bytes, as read from or written to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) timestamp: i64,
    pub(crate) headers: Headers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_order_and_repeats() {
        let mut h = Headers::new();
        h.add("a", Some(Bytes::from_static(b"1")))
            .add("b", None)
            .add("a", Some(Bytes::from_static(b"2")));
        assert_eq!(h.len(), 3);
        assert_eq!(h.last("a").unwrap().value, Some(Bytes::from_static(b"2")));
        assert_eq!(h.get_all("a").count(), 2);
        h.remove("a");
        assert_eq!(h.iter().map(|h| h.key.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn headers_emptied_or_built_empty_equal_no_headers() {
        let mut h = Headers::new();
        assert!(h.is_empty());
        h.add("a", None);
        assert!(!h.is_empty());
        assert_ne!(h, Headers::new());
        h.remove("a");
        assert!(h.is_empty());
        assert_eq!(h, Headers::new());
        assert_eq!(Headers::from(Vec::new()), Headers::new());
        assert_eq!(
            std::iter::empty::<Header>().collect::<Headers>(),
            Headers::new()
        );
        assert_eq!(Headers::new().into_iter().count(), 0);
        let h: Headers = vec![Header::new("x", "1"), Header::new("y", "2")].into();
        let copy = h.clone();
        assert_eq!(
            copy.into_iter().map(|h| h.key).collect::<Vec<_>>(),
            ["x", "y"]
        );
        assert_eq!((&h).into_iter().count(), 2);
    }

    #[test]
    fn record_builders() {
        let r = Record::new("k", 1, 5)
            .with_value(Some("one"))
            .with_timestamp(7);
        assert_eq!(r.key, Some("k"));
        assert_eq!(r.value, Some("one"));
        assert_eq!(r.timestamp, 7);
        let r = r.with_key::<u8>(None);
        assert_eq!(r.key, None);
    }
}
