//! The crate's one error type.

use std::net::SocketAddr;

/// What can go wrong serving the Kafka wire protocol.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A connection's socket failed.
    #[error("connection from {peer}: {source}")]
    Io {
        /// The client.
        peer: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A request frame was refused; the connection is closed.
    #[error("connection from {peer}: {reason}")]
    BadRequest {
        /// The client.
        peer: SocketAddr,
        /// What was wrong.
        reason: String,
    },
    /// The broker failed.
    #[error(transparent)]
    Broker(#[from] broker_embedded::BrokerError),
}

impl WireError {
    /// Whether the error is the client going away (a reset or closed socket, or a
    /// connection on which nothing moved for `connections.max.idle.ms`), not a fault.
    pub fn is_disconnect(&self) -> bool {
        use std::io::ErrorKind as K;
        matches!(
            self,
            WireError::Io { source, .. } if matches!(
                source.kind(),
                K::BrokenPipe
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::UnexpectedEof
                    | K::TimedOut
            )
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = WireError> = std::result::Result<T, E>;
