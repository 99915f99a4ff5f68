//! What every connection of a server shares.

use broker_embedded::Broker;

use crate::config::WireConfig;

/// The broker served, the server's settings, and what clients are told.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) broker: Broker,
    pub(crate) config: WireConfig,
    /// The `(host, port)` clients are told to connect to.
    pub(crate) advertised: (String, u16),
}
