//! One client connection: frames in, responses out, in order.
//!
//! A connection reads a request, answers it, and only then reads the next one: at most one
//! request is in flight and one response pending per connection, which is how Kafka's
//! broker keeps order too (it mutes a channel while its response is pending). A client
//! that pipelines requests without reading the responses is held back by TCP: once the
//! socket buffers are full the server stops reading from it, so its requests wait in the
//! kernel, not in the server's memory. With `connections.max.idle.ms` set, a connection
//! on which nothing moves for that long is closed, whether it sends nothing or takes no
//! response; a request being answered (a Fetch long poll, a JoinGroup waiting for the
//! other members) is not idle time.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::debug;

use crate::apis::{self, Handled};
use crate::context::Context;
use crate::error::{Result, WireError};
use crate::frame::{read_frame, write_frame, Frame, Idle};

/// Serves requests from one client until it closes the connection, stays idle too long,
/// or sends a frame that cannot be answered.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    context: Arc<Context>,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    debug!(%peer, "connection opened");
    let io = |source| WireError::Io { peer, source };
    let idle = Idle(context.config.idle_limit());
    loop {
        let body = match read_frame(&mut stream, context.config.socket_request_max_bytes, idle)
            .await
        {
            Ok(Frame::Request(body)) => body,
            Ok(Frame::Closed) => {
                debug!(%peer, "connection closed by the client");
                return Ok(());
            }
            Ok(Frame::Idle) => {
                debug!(%peer, idle_ms = context.config.connections_max_idle_ms, "closing an idle connection");
                return Ok(());
            }
            Ok(Frame::TooLarge(size)) => {
                return Err(WireError::BadRequest {
                    peer,
                    reason: format!(
                        "request size {size} is above socket.request.max.bytes ({})",
                        context.config.socket_request_max_bytes
                    ),
                })
            }
            Err(e) => return Err(io(e)),
        };
        match apis::handle(&context, peer, body).await {
            Handled::Respond(response) => write_frame(&mut stream, &response, idle)
                .await
                .map_err(io)?,
            Handled::NoResponse => {}
            Handled::Refuse(reason) => return Err(WireError::BadRequest { peer, reason }),
        }
    }
}
