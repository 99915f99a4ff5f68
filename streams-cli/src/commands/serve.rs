//! `streams serve`: the data dir's broker over TCP in the Kafka wire protocol.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use broker_embedded::{Broker, BrokerConfig};
use broker_wire::{Server, WireConfig};

use super::{locate_broker, DirMode, Outcome};
use crate::args::ServeArgs;

/// Serves until Ctrl-C or SIGTERM, then closes the broker cleanly.
pub(crate) async fn run(dir: &Path, args: ServeArgs, out: &mut dyn Write) -> Result<Outcome> {
    if !args.listen.ip().is_loopback() {
        if !args.allow_non_loopback {
            bail!(
                "--listen {} is not a loopback address: the server has no authentication or \
                 TLS yet, so anyone who reaches the port can read and write every topic; pass \
                 --allow-non-loopback to serve it anyway",
                args.listen
            );
        }
        tracing::warn!(listen = %args.listen, "serving on a non-loopback address without authentication or TLS");
    }
    let mut broker_config = BrokerConfig::default();
    let mut wire = WireConfig {
        listen: args.listen,
        advertised: args.advertised_listener,
        ..WireConfig::default()
    };
    for (key, value) in &args.configs {
        let bad = |why: &str| anyhow::anyhow!("invalid config {key}={value:?}: {why}");
        match key.as_str() {
            "num.partitions" => {
                broker_config.num_partitions = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("a partition count of at least 1"))?
            }
            "auto.create.topics.enable" => {
                wire.auto_create_topics_enable = value.parse().map_err(|_| bad("true or false"))?
            }
            "socket.request.max.bytes" => {
                wire.socket_request_max_bytes = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("a positive number of bytes"))?
            }
            "max.connections" => {
                wire.max_connections = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("a positive number of connections"))?
            }
            "connections.max.idle.ms" => {
                wire.connections_max_idle_ms = value
                    .parse()
                    .map_err(|_| bad("a number of milliseconds (negative: never)"))?
            }
            "group.initial.rebalance.delay.ms" => {
                broker_config.group_initial_rebalance_delay_ms = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("a number of milliseconds, 0 or more"))?
            }
            "group.min.session.timeout.ms" => {
                broker_config.group_min_session_timeout_ms = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("a number of milliseconds, 0 or more"))?
            }
            "group.max.session.timeout.ms" => {
                broker_config.group_max_session_timeout_ms = value
                    .parse()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("a number of milliseconds, 0 or more"))?
            }
            _ => bail!(
                "unknown config {key}: streams serve takes num.partitions, \
                 auto.create.topics.enable, socket.request.max.bytes, max.connections, \
                 connections.max.idle.ms, group.initial.rebalance.delay.ms, \
                 group.min.session.timeout.ms and group.max.session.timeout.ms"
            ),
        }
    }
    if broker_config.group_min_session_timeout_ms > broker_config.group_max_session_timeout_ms {
        bail!(
            "invalid config: group.min.session.timeout.ms ({}) is above \
             group.max.session.timeout.ms ({})",
            broker_config.group_min_session_timeout_ms,
            broker_config.group_max_session_timeout_ms
        );
    }
    let dir = locate_broker(dir, DirMode::Create)?;
    let broker = Broker::open(&dir, broker_config).await?;
    let server = Server::bind(broker.clone(), wire).await?;
    let addr = server.local_addr()?;
    writeln!(
        out,
        "serving {} in the Kafka protocol on {addr}; Ctrl-C to stop",
        dir.display()
    )
    .and_then(|()| out.flush())
    .context("writing to stdout")?;
    let served = server.run(shutdown_signal()).await;
    let closed = broker.close().await.context("closing the broker");
    served?;
    closed?;
    Ok(Outcome::Done)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                super::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        () = super::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
