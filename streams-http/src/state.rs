//! What every route shares, behind one `Arc`: the app's queries, the
//! token, the client that forwards requests to other instances, and the
//! limits. Routes added later (metrics, a live page) read the app through
//! the same state.

use std::time::Duration;

use streams_core::InteractiveQueries;

use crate::proxy::Forwarder;

/// The shared state of the endpoint's routes.
#[derive(Debug)]
pub(crate) struct HttpState {
    /// The app.
    pub(crate) queries: InteractiveQueries,
    /// `http.auth.token`, if set.
    pub(crate) token: Option<String>,
    /// This instance's `application.server`, as other instances know it.
    pub(crate) advertised: Option<String>,
    /// Sends a request on to the instance that owns its key.
    pub(crate) forwarder: Forwarder,
    /// Entries per page when the request names no `limit`.
    pub(crate) default_limit: usize,
    /// The largest `limit` honoured (larger ones are cut to it).
    pub(crate) max_limit: usize,
    /// How long a forwarded request may take.
    pub(crate) forward_timeout: Duration,
}
