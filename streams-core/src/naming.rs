//! Generated node and store names, as Kafka Streams' DSL makes them.

/// Hands out names of the form `KSTREAM-<OPERATION>-<10-digit index>`, with
/// one counter for every name, as Kafka Streams' `InternalStreamsBuilder`:
/// the first source of a DSL topology is `KSTREAM-SOURCE-0000000000`, the
/// next operation `KSTREAM-FLATMAPVALUES-0000000001`, and so on. A store
/// name takes an index too (`KSTREAM-AGGREGATE-STATE-STORE-0000000002`).
///
/// ```
/// use streams_core::NameGenerator;
///
/// let mut names = NameGenerator::new();
/// assert_eq!(names.kstream("SOURCE"), "KSTREAM-SOURCE-0000000000");
/// assert_eq!(names.kstream("FLATMAPVALUES"), "KSTREAM-FLATMAPVALUES-0000000001");
/// assert_eq!(names.store("KSTREAM-AGGREGATE-"), "KSTREAM-AGGREGATE-STATE-STORE-0000000002");
/// assert_eq!(names.ktable("TOSTREAM"), "KTABLE-TOSTREAM-0000000003");
/// ```
#[derive(Debug, Clone, Default)]
pub struct NameGenerator {
    next: u64,
}

impl NameGenerator {
    /// A generator starting at index 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next index, consumed.
    pub fn next_index(&mut self) -> u64 {
        let index = self.next;
        self.next += 1;
        index
    }

    /// `<prefix><10-digit index>`, e.g. `with_prefix("KSTREAM-MAP-")`.
    pub fn with_prefix(&mut self, prefix: &str) -> String {
        format!("{prefix}{:010}", self.next_index())
    }

    /// `KSTREAM-<operation>-<10-digit index>`.
    pub fn kstream(&mut self, operation: &str) -> String {
        format!("KSTREAM-{operation}-{:010}", self.next_index())
    }

    /// `KTABLE-<operation>-<10-digit index>`.
    pub fn ktable(&mut self, operation: &str) -> String {
        format!("KTABLE-{operation}-{:010}", self.next_index())
    }

    /// `<prefix>STATE-STORE-<10-digit index>`, as Kafka's `newStoreName`.
    pub fn store(&mut self, prefix: &str) -> String {
        format!("{prefix}STATE-STORE-{:010}", self.next_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_digit_indexes_shared_by_every_kind() {
        let mut n = NameGenerator::new();
        assert_eq!(n.with_prefix("KSTREAM-SINK-"), "KSTREAM-SINK-0000000000");
        for _ in 0..9 {
            n.next_index();
        }
        assert_eq!(n.kstream("MAP"), "KSTREAM-MAP-0000000010");
    }
}
