//! The listener: accepts connections and serves each on its own task until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use broker_embedded::Broker;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::admission::ConnectionLimit;
use crate::config::WireConfig;
use crate::connection::serve_connection;
use crate::context::Context;
use crate::error::{Result, WireError};

/// The pause before accepting again after `accept` failed.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A bound server: [`Server::bind`], then [`Server::run`] until a shutdown signal.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    context: Arc<Context>,
}

impl Server {
    /// Binds `config.listen` for `broker`.
    pub async fn bind(broker: Broker, config: WireConfig) -> Result<Server> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| WireError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local = listener.local_addr().map_err(|source| WireError::Bind {
            addr: config.listen,
            source,
        })?;
        let advertised = config
            .advertised
            .clone()
            .unwrap_or_else(|| (local.ip().to_string(), local.port()));
        Ok(Server {
            listener,
            context: Arc::new(Context {
                broker,
                config,
                advertised,
            }),
        })
    }

    /// The address the server listens on (the port chosen, when `listen` had port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|source| WireError::Bind {
                addr: self.context.config.listen,
                source,
            })
    }

    /// Accepts connections until `shutdown` resolves; each connection is served on its own
    /// task. Connections still open then end with the server's runtime. Above
    /// `max.connections` a new connection is closed as soon as it is accepted.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let addr = self.local_addr()?;
        info!(%addr, advertised = ?self.context.advertised, "serving the Kafka protocol");
        let mut limit = ConnectionLimit::new(self.context.config.max_connections);
        // Failed accepts in a row: logged once, and retried after a pause (out of file
        // descriptors, accept fails at once for as long as it lasts).
        let mut failed_accepts = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => {
                    info!(%addr, "shutting down");
                    return Ok(());
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if failed_accepts > 0 {
                            info!(failed = failed_accepts, "accepting connections again");
                            failed_accepts = 0;
                        }
                        let Some(slot) = limit.admit(peer) else {
                            drop(stream);
                            continue;
                        };
                        let context = self.context.clone();
                        tokio::spawn(async move {
                            match serve_connection(stream, peer, context).await {
                                Ok(()) => {}
                                // A client that goes away mid-conversation is routine.
                                Err(e) if e.is_disconnect() => debug!(error = %e, "connection closed"),
                                Err(e) => warn!(error = %e, "connection closed"),
                            }
                            drop(slot);
                        });
                    }
                    // Out of descriptors, a connection reset before accept: keep serving.
                    Err(e) => {
                        if failed_accepts == 0 {
                            warn!(error = %e, "accepting a connection failed; retrying every {} ms", ACCEPT_RETRY.as_millis());
                        }
                        failed_accepts += 1;
                        tokio::time::sleep(ACCEPT_RETRY).await;
                    }
                }
            }
        }
    }
}
