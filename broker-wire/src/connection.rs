//! One client connection: frames in, responses out, in order.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::debug;

use crate::apis::{self, Handled};
use crate::context::Context;
use crate::error::{Result, WireError};
use crate::frame::{read_frame, write_frame, Frame};

/// Serves requests from one client until it closes the connection or sends a frame that
/// cannot be answered.
pub(crate) async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    context: Arc<Context>,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    debug!(%peer, "connection opened");
    let io = |source| WireError::Io { peer, source };
    loop {
        let body = match read_frame(&mut stream, context.config.socket_request_max_bytes).await {
            Ok(Frame::Request(body)) => body,
            Ok(Frame::Closed) => {
                debug!(%peer, "connection closed by the client");
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
            Handled::Respond(response) => write_frame(&mut stream, &response).await.map_err(io)?,
            Handled::NoResponse => {}
            Handled::Refuse(reason) => return Err(WireError::BadRequest { peer, reason }),
        }
    }
}
