//! [`TableJoined`]: the options of a foreign-key table join.

/// The options of a foreign-key table join (Kafka's `TableJoined`): its
/// name, which names its internal topics and subscription store, so that
/// they keep their names (and data) when the topology changes.
#[derive(Debug, Clone, Default)]
pub struct TableJoined {
    pub(crate) name: Option<String>,
}

impl TableJoined {
    /// Generated names (`KTABLE-FK-JOIN-SUBSCRIPTION-...-<n>`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The join named `name`: its topics are
    /// `<name>-subscription-registration-topic` and
    /// `<name>-subscription-response-topic`, its store
    /// `<name>-subscription-store`, its processors `<name>-...`.
    pub fn as_(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
        }
    }
}
