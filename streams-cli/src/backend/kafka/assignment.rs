//! Reads a member's assignment in Kafka's consumer protocol (`ConsumerProtocolAssignment`,
//! versions 0 to 3): the partitions a group's leader gave it.

/// The partitions of an assignment, `(topic, partition)`; `None` when the bytes are not a
/// consumer protocol assignment (another protocol type, or damaged).
pub(crate) fn assigned_partitions(bytes: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut reader = Reader { bytes };
    let version = reader.i16()?;
    if version < 0 {
        return None;
    }
    let topics = reader.count()?;
    let mut partitions = Vec::new();
    for _ in 0..topics {
        let topic = reader.string()?;
        let count = reader.count()?;
        for _ in 0..count {
            partitions.push((topic.clone(), reader.i32()?));
        }
    }
    // The user data (and, from version 1, nothing else) follows; it is not needed.
    Some(partitions)
}

/// A cursor over the bytes; every read checks the length first.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    /// An array length: no more elements than bytes left (each takes at least one), so
    /// that a damaged length cannot make the caller loop or allocate for long.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n <= self.bytes.len()).then_some(n)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        if len > self.bytes.len() {
            return None;
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(text.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: &[u8]) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (topic, partitions) in topics {
            out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            out.extend_from_slice(topic.as_bytes());
            out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
        out.extend_from_slice(&(user_data.len() as i32).to_be_bytes());
        out.extend_from_slice(user_data);
        out
    }

    #[test]
    fn reads_the_partitions_of_every_version() {
        for version in 0..=3 {
            let bytes = assignment(version, &[("orders", &[0, 2]), ("prices", &[1])], b"x");
            assert_eq!(
                assigned_partitions(&bytes),
                Some(vec![
                    ("orders".to_owned(), 0),
                    ("orders".to_owned(), 2),
                    ("prices".to_owned(), 1)
                ])
            );
        }
        assert_eq!(assigned_partitions(&assignment(0, &[], b"")), Some(vec![]));
    }

    #[test]
    fn damaged_bytes_are_none() {
        let bytes = assignment(1, &[("orders", &[0, 2])], b"");
        for cut in 0..bytes.len() - 4 {
            // Cut inside the topics (the user data may be cut: it is not read).
            assert_eq!(assigned_partitions(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(assigned_partitions(&huge), None);
        let mut negative = 0i16.to_be_bytes().to_vec();
        negative.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(assigned_partitions(&negative), None);
        assert_eq!(assigned_partitions(&(-1i16).to_be_bytes()), None);
    }
}
