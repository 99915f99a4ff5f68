//! [`HttpServer`]: listens on `application.server` and serves the router
//! on the caller's tokio runtime, one task per connection, with limits
//! that keep a hostile or slow client from holding the endpoint: a request
//! head must arrive within the header timeout and fit in a bounded
//! buffer, a request must be answered within the request timeout, and at
//! most so many connections are open at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use streams_core::{InteractiveQueries, StreamsApp};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{HttpError, Result};
use crate::proxy::Forwarder;
use crate::routes::router;
use crate::state::HttpState;

/// The HTTP endpoint of a running app: interactive queries over its state
/// stores (see the crate documentation for the routes). It runs on the
/// tokio runtime it was started on until [`HttpServer::shutdown`] or until
/// it is dropped.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Options of an [`HttpServer`], from [`HttpServer::builder`].
#[derive(Debug, Clone)]
pub struct HttpServerBuilder {
    queries: InteractiveQueries,
    bind: Option<String>,
    header_read_timeout: Duration,
    request_timeout: Duration,
    forward_timeout: Duration,
    max_connections: usize,
    default_limit: usize,
    max_limit: usize,
}

impl HttpServer {
    /// Serves `app` on its `application.server` with the default options.
    ///
    /// # Errors
    ///
    /// [`HttpError::NoAddress`] when the app has no `application.server`,
    /// [`HttpError::Resolve`] or [`HttpError::Bind`] when it cannot listen
    /// there.
    pub async fn start(app: &StreamsApp) -> Result<Self> {
        Self::builder(app).start().await
    }

    /// Options for serving `app`.
    pub fn builder(app: &StreamsApp) -> HttpServerBuilder {
        HttpServerBuilder {
            queries: app.interactive_queries(),
            bind: None,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            forward_timeout: Duration::from_secs(10),
            max_connections: 256,
            default_limit: 100,
            max_limit: 1000,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections and waits (up to 5 s) for the requests
    /// in flight.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "the HTTP server task failed");
            }
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl HttpServerBuilder {
    /// Listens on `address` (`host:port`) rather than on
    /// `application.server`, which other instances are still told (say,
    /// `0.0.0.0:8080` behind the advertised `app-1.internal:8080`).
    pub fn bind_address(mut self, address: impl Into<String>) -> Self {
        self.bind = Some(address.into());
        self
    }

    /// How long a client may take to send a request's head (default 10 s);
    /// a slower one is disconnected.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a request may take to be answered (default 30 s; then
    /// 503).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long a request forwarded to another instance may take (default
    /// 10 s; then 504).
    pub fn forward_timeout(mut self, timeout: Duration) -> Self {
        self.forward_timeout = timeout;
        self
    }

    /// At most this many connections at once (default 256); more are
    /// closed as they arrive.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Entries per page when a scan names no `limit` (default 100), and
    /// the largest `limit` honoured (default 1000).
    pub fn page_limits(mut self, default: usize, max: usize) -> Self {
        self.max_limit = max.max(1);
        self.default_limit = default.clamp(1, self.max_limit);
        self
    }

    /// Binds and starts serving.
    ///
    /// # Errors
    ///
    /// As [`HttpServer::start`].
    pub async fn start(self) -> Result<HttpServer> {
        let config = self.queries.config();
        let advertised = config.application_server().map(str::to_owned);
        let address = self
            .bind
            .clone()
            .or_else(|| advertised.clone())
            .ok_or(HttpError::NoAddress)?;
        let addr = tokio::net::lookup_host(&address)
            .await
            .map_err(|source| HttpError::Resolve {
                address: address.clone(),
                source,
            })?
            .next()
            .ok_or_else(|| HttpError::Resolve {
                address: address.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind {
                address: addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| HttpError::Bind {
            address: addr,
            source,
        })?;
        let token = config.http_auth_token().map(str::to_owned);
        if !local_addr.ip().is_loopback() && token.is_none() {
            tracing::warn!(address = %local_addr, "the HTTP endpoint listens beyond loopback with no authentication: anyone who reaches it can read the state stores; set http.auth.token");
        }
        let state = Arc::new(HttpState {
            queries: self.queries.clone(),
            token,
            advertised,
            forwarder: Forwarder::new(),
            default_limit: self.default_limit,
            max_limit: self.max_limit,
            forward_timeout: self.forward_timeout,
        });
        let app = router(state, self.request_timeout);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, app, self, stopped));
        tracing::info!(address = %local_addr, "serving interactive queries over HTTP");
        Ok(HttpServer {
            local_addr,
            stop,
            task: Some(task),
        })
    }
}

/// Accepts connections until told to stop, then lets the open ones finish.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    options: HttpServerBuilder,
    mut stopped: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather
                    // than spin.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, max = options.max_connections, "too many HTTP connections; closing a new one");
            drop(stream);
            continue;
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "HTTP connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open 5 s after shutdown; dropping them");
    }
}
