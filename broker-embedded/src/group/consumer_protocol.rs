//! Reading the consumer protocol's member metadata and assignments (Kafka's
//! `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`), which classic-group
//! clients of protocol type `consumer` send as opaque bytes: the coordinator reads them to
//! show a member's topics and partitions and to know which topics a group consumes.
//!
//! Both start with an `i16` version followed by the version 0 fields, which every later
//! version keeps as its prefix, so only those are read (as Kafka's coordinator does):
//!
//! ```text
//! subscription: i16 version | i32 n | n × (i16 len | topic) | ...
//! assignment:   i16 version | i32 n | n × (i16 len | topic | i32 m | m × i32 partition) | ...
//! ```
//!
//! The bytes come from clients: a count or length that runs past the end, or a negative
//! one, makes the whole value unreadable (`None`), never a panic or a large allocation.

use crate::TopicPartition;

/// The protocol type of Kafka's consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An array count, which cannot be more than the bytes left (each element takes at
    /// least `min_size` bytes).
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n.saturating_mul(min_size) <= self.bytes.len()).then_some(n)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

/// The topics of a consumer's subscription; `None` if the bytes are not one.
pub fn subscription_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { bytes: metadata };
    if r.i16()? < 0 {
        return None;
    }
    let n = r.count(2)?;
    (0..n).map(|_| r.string()).collect()
}

/// The partitions of a consumer's assignment; `None` if the bytes are not one. An empty
/// value (a member the leader gave nothing) is no partitions.
pub fn assignment_partitions(assignment: &[u8]) -> Option<Vec<TopicPartition>> {
    if assignment.is_empty() {
        return Some(Vec::new());
    }
    let mut r = Reader { bytes: assignment };
    if r.i16()? < 0 {
        return None;
    }
    let topics = r.count(6)?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic = r.string()?;
        let partitions = r.count(4)?;
        for _ in 0..partitions {
            let partition = u32::try_from(r.i32()?).ok()?;
            out.push(TopicPartition::new(topic.clone(), partition));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn reads_the_version_0_prefix_of_any_version() {
        // Version 3: topics, user data (null), owned partitions, generation, rack.
        let mut sub = 3i16.to_be_bytes().to_vec();
        sub.extend_from_slice(&2i32.to_be_bytes());
        string(&mut sub, "orders");
        string(&mut sub, "payments");
        sub.extend_from_slice(&(-1i32).to_be_bytes());
        sub.extend_from_slice(&0i32.to_be_bytes());
        sub.extend_from_slice(&7i32.to_be_bytes());
        sub.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(
            subscription_topics(&sub),
            Some(vec!["orders".to_owned(), "payments".to_owned()])
        );

        let mut a = 1i16.to_be_bytes().to_vec();
        a.extend_from_slice(&1i32.to_be_bytes());
        string(&mut a, "orders");
        a.extend_from_slice(&2i32.to_be_bytes());
        a.extend_from_slice(&0i32.to_be_bytes());
        a.extend_from_slice(&2i32.to_be_bytes());
        a.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(
            assignment_partitions(&a),
            Some(vec![
                TopicPartition::new("orders", 0),
                TopicPartition::new("orders", 2)
            ])
        );
        assert_eq!(assignment_partitions(&[]), Some(Vec::new()));
    }

    #[test]
    fn hostile_bytes_are_unreadable_not_a_panic() {
        // A count far above the bytes there are.
        let mut sub = 0i16.to_be_bytes().to_vec();
        sub.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(subscription_topics(&sub), None);
        // A negative count, a string cut short, a negative partition, garbage.
        let mut neg = 0i16.to_be_bytes().to_vec();
        neg.extend_from_slice(&(-3i32).to_be_bytes());
        assert_eq!(subscription_topics(&neg), None);
        let mut short = 0i16.to_be_bytes().to_vec();
        short.extend_from_slice(&1i32.to_be_bytes());
        short.extend_from_slice(&10i16.to_be_bytes());
        short.extend_from_slice(b"abc");
        assert_eq!(subscription_topics(&short), None);
        let mut a = 0i16.to_be_bytes().to_vec();
        a.extend_from_slice(&1i32.to_be_bytes());
        string(&mut a, "t");
        a.extend_from_slice(&1i32.to_be_bytes());
        a.extend_from_slice(&(-5i32).to_be_bytes());
        assert_eq!(assignment_partitions(&a), None);
        assert_eq!(subscription_topics(&[0xff]), None);
        assert_eq!(assignment_partitions(&[0, 0, 0]), None);
    }
}
