//! How the server listens and what it tells clients.

use std::net::SocketAddr;
use std::time::Duration;

/// Kafka's `socket.request.max.bytes` default: 100 MiB.
pub const DEFAULT_SOCKET_REQUEST_MAX_BYTES: usize = 100 * 1024 * 1024;

/// The `max.connections` default. Kafka's is 2147483647 (no limit); an embedded broker is
/// not sized for that many clients, and each connection holds a task, a socket and up to
/// one request and one response.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

/// Kafka's `connections.max.idle.ms` default: 10 minutes.
pub const DEFAULT_CONNECTIONS_MAX_IDLE_MS: i64 = 600_000;

/// The server's settings, with Kafka's names where Kafka has them.
#[derive(Debug, Clone)]
pub struct WireConfig {
    /// Where to listen (`listeners`); default `127.0.0.1:9092`. Port 0 picks a free one.
    pub listen: SocketAddr,
    /// The `host:port` clients are told to connect to (`advertised.listeners`); default:
    /// the address the server listens on.
    pub advertised: Option<(String, u16)>,
    /// `socket.request.max.bytes`: a request whose size field says more is refused before
    /// any of it is read, and the connection closed. Below that, a request's buffer grows
    /// with the bytes that arrive, not with the size the client claims.
    pub socket_request_max_bytes: usize,
    /// `auto.create.topics.enable`: a Metadata request naming an unknown topic, from a
    /// client that allows it, creates the topic with the broker's `num.partitions`.
    pub auto_create_topics_enable: bool,
    /// `max.connections`, default [`DEFAULT_MAX_CONNECTIONS`]: with that many connections
    /// open, a new one is closed as soon as it is accepted (Kafka instead stops accepting
    /// until one closes) and the refusals are logged once per burst.
    pub max_connections: usize,
    /// `connections.max.idle.ms`, default [`DEFAULT_CONNECTIONS_MAX_IDLE_MS`]: a connection
    /// on which nothing moves for that long (no request arriving, no response being taken)
    /// is closed. A connection whose request is being answered (a Fetch long poll, a
    /// JoinGroup waiting for members) is not idle. Negative: never, as in Kafka.
    pub connections_max_idle_ms: i64,
}

impl WireConfig {
    /// `connections.max.idle.ms` as a duration; `None` when negative (never idle).
    pub(crate) fn idle_limit(&self) -> Option<Duration> {
        u64::try_from(self.connections_max_idle_ms)
            .ok()
            .map(Duration::from_millis)
    }
}

impl Default for WireConfig {
    fn default() -> Self {
        WireConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            socket_request_max_bytes: DEFAULT_SOCKET_REQUEST_MAX_BYTES,
            auto_create_topics_enable: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connections_max_idle_ms: DEFAULT_CONNECTIONS_MAX_IDLE_MS,
        }
    }
}
