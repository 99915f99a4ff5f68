//! The crate's error: what can stop the endpoint from starting.

use std::net::SocketAddr;

/// Why the HTTP endpoint did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The app has no `application.server` and no address was given.
    #[error("the app's configuration has no application.server: set it to host:port to serve HTTP there")]
    NoAddress,
    /// `application.server` (or the bind address) does not name an address.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The address as configured.
        address: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A setting of the app is not valid for the endpoint.
    #[error(transparent)]
    Config(#[from] streams_core::StreamsError),
}

/// The crate's result.
pub type Result<T, E = HttpError> = std::result::Result<T, E>;
