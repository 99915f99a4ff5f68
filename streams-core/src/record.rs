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
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    entries: Vec<Header>,
}

impl Clone for Headers {
    // Most records have no headers, and each record a processor forwards
    // carries a copy of its input's: the empty case skips `Vec::clone`.
    fn clone(&self) -> Self {
        if self.entries.is_empty() {
            return Self::new();
        }
        Self {
            entries: self.entries.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        if source.entries.is_empty() {
            self.entries.clear();
        } else {
            self.entries.clone_from(&source.entries);
        }
    }
}

impl Headers {
    /// No headers (does not allocate).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header.
    pub fn add(&mut self, key: impl Into<String>, value: Option<Bytes>) -> &mut Self {
        self.entries.push(Header {
            key: key.into(),
            value,
        });
        self
    }

    /// Removes every header with `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.entries.retain(|h| h.key != key);
        self
    }

    /// The last header with `key`, as Kafka's `lastHeader`.
    pub fn last(&self, key: &str) -> Option<&Header> {
        self.entries.iter().rev().find(|h| h.key == key)
    }

    /// Every header with `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.entries.iter().filter(move |h| h.key == key)
    }

    /// Every header, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.entries.iter()
    }

    /// The number of headers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl From<Vec<Header>> for Headers {
    fn from(entries: Vec<Header>) -> Self {
        Self { entries }
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
        }
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl IntoIterator for Headers {
    type Item = Header;
    type IntoIter = std::vec::IntoIter<Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
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
