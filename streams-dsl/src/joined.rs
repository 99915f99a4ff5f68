//! [`Joined`]: the options of a stream–table join.

use std::fmt;
use std::time::Duration;

use streams_core::Serde;

use crate::options::{serde_arc, SerdeArc};

/// The options of a stream–table join (Kafka's `Joined`): the serdes of
/// the stream's key and value (used when the stream is repartitioned
/// before the join, or buffered for a grace period; by default the
/// stream's own) and of the table's values, the join's name, and a grace
/// period for a versioned table.
pub struct Joined<K, V, VT> {
    pub(crate) key_serde: Option<SerdeArc<K>>,
    pub(crate) value_serde: Option<SerdeArc<V>>,
    pub(crate) other_value_serde: Option<SerdeArc<VT>>,
    pub(crate) name: Option<String>,
    pub(crate) grace_period: Option<Duration>,
}

impl<K, V, VT> fmt::Debug for Joined<K, V, VT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joined")
            .field("name", &self.name)
            .field("key_serde", &self.key_serde.is_some())
            .field("value_serde", &self.value_serde.is_some())
            .field("other_value_serde", &self.other_value_serde.is_some())
            .field("grace_period", &self.grace_period)
            .finish()
    }
}

impl<K, V, VT> Default for Joined<K, V, VT> {
    fn default() -> Self {
        Self {
            key_serde: None,
            value_serde: None,
            other_value_serde: None,
            name: None,
            grace_period: None,
        }
    }
}

impl<K, V, VT> Joined<K, V, VT> {
    /// No serdes given: the stream's own are used.
    pub fn new() -> Self {
        Self::default()
    }

    /// The serdes of the stream's key and value and of the table's value.
    pub fn with(
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
        other_value_serde: impl Serde<VT>,
    ) -> Self {
        Self {
            key_serde: Some(serde_arc(key_serde)),
            value_serde: Some(serde_arc(value_serde)),
            other_value_serde: Some(serde_arc(other_value_serde)),
            name: None,
            grace_period: None,
        }
    }

    /// Options naming the join `name`: its processor, and the repartition
    /// topic `<name>-repartition` if the stream is repartitioned first.
    pub fn as_(name: impl Into<String>) -> Self {
        Self::new().with_name(name)
    }

    /// These options with the join named `name`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// These options with the stream's key serde.
    pub fn with_key_serde(mut self, key_serde: impl Serde<K>) -> Self {
        self.key_serde = Some(serde_arc(key_serde));
        self
    }

    /// These options with the stream's value serde.
    pub fn with_value_serde(mut self, value_serde: impl Serde<V>) -> Self {
        self.value_serde = Some(serde_arc(value_serde));
        self
    }

    /// These options with the table's value serde.
    pub fn with_other_value_serde(mut self, other_value_serde: impl Serde<VT>) -> Self {
        self.other_value_serde = Some(serde_arc(other_value_serde));
        self
    }

    /// These options with a grace period (Kafka's
    /// `Joined.withGracePeriod`): each stream record waits in a
    /// time-ordered buffer (the store `<join name>-Buffer`) until stream
    /// time passes its timestamp plus `grace`, and is then joined with the
    /// table's row as of its timestamp, so that table updates that arrive a
    /// little late still meet the stream records they precede. The table
    /// must be versioned with a history retention of at least `grace`;
    /// otherwise building fails, as in Kafka.
    pub fn with_grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = Some(grace);
        self
    }

    /// The grace period, if given.
    pub fn grace_period(&self) -> Option<Duration> {
        self.grace_period
    }
}
