//! Which instance hosts what, as Kafka's `HostInfo`, `KeyQueryMetadata`
//! and `StreamsMetadata`.

use std::fmt;

use crate::error::{Result, StreamsError};
use crate::exec::TaskId;

/// An instance's `application.server`: where it answers interactive
/// queries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostInfo {
    /// The host name or IP address (an IPv6 address without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostInfo {
    /// `host` and `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// Parses `host:port` (an IPv6 host in brackets: `[::1]:8080`).
    pub fn parse(value: &str) -> Result<Self> {
        crate::config::parse_host_port(value)
            .map(|(host, port)| Self { host, port })
            .map_err(|reason| {
                StreamsError::invalid_config(
                    crate::config::StreamsConfig::APPLICATION_SERVER,
                    value,
                    reason,
                )
            })
    }
}

impl fmt::Display for HostInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where a key of a store lives, as Kafka's `KeyQueryMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyQueryMetadata {
    /// The instance whose task holds the key, if one is known: `None`
    /// while no instance is known to own the partition (a rebalance, or
    /// instances without `application.server`).
    pub active_host: Option<HostInfo>,
    /// Instances with a standby copy (none: standby replicas are not
    /// supported).
    pub standby_hosts: Vec<HostInfo>,
    /// The store's partition that holds the key (murmur2 of the key's
    /// bytes, as Kafka's default partitioner).
    pub partition: u32,
    /// Whether the owner is this instance.
    pub local: bool,
}

/// What one instance hosts, as Kafka's `StreamsMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamsMetadata {
    /// Its `application.server`; `None` for this instance when it has
    /// none.
    pub host_info: Option<HostInfo>,
    /// Whether this is the instance asked.
    pub local: bool,
    /// The stores its tasks hold, sorted.
    pub state_store_names: Vec<String>,
    /// The input partitions of its tasks, sorted.
    pub topic_partitions: Vec<(String, u32)>,
    /// Its tasks, sorted.
    pub tasks: Vec<TaskId>,
}
