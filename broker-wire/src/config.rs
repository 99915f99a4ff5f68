//! How the server listens and what it tells clients.

use std::net::SocketAddr;

/// Kafka's `socket.request.max.bytes` default: 100 MiB.
pub const DEFAULT_SOCKET_REQUEST_MAX_BYTES: usize = 100 * 1024 * 1024;

/// The server's settings, with Kafka's names where Kafka has them.
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// Where to listen (`listeners`); default `127.0.0.1:9092`. Port 0 picks a free one.
    pub listen: SocketAddr,
    /// The `host:port` clients are told to connect to (`advertised.listeners`); default:
    /// the address the server listens on.
    pub advertised: Option<(String, u16)>,
    /// `socket.request.max.bytes`: a request whose size field says more is refused before
    /// any of it is read, and the connection closed.
    pub socket_request_max_bytes: usize,
    /// `auto.create.topics.enable`: a Metadata request naming an unknown topic, from a
    /// client that allows it, creates the topic with the broker's `num.partitions`.
    pub auto_create_topics_enable: bool,
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            socket_request_max_bytes: DEFAULT_SOCKET_REQUEST_MAX_BYTES,
            auto_create_topics_enable: true,
        }
    }
}
