//! Kafka's framing: each request and response is a 4-byte big-endian size and that many
//! bytes.
//!
//! A frame's body is read into a buffer that grows with the bytes that have arrived (first
//! [`FIRST_CHUNK`], then doubling), never allocated at the size the client claims: a client
//! that sends a header claiming 100 MiB and then trickles bytes holds the memory of what it
//! sent, not of what it claimed. Every read and write gives up after the connection's idle
//! limit passes without progress (`connections.max.idle.ms`).

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The buffer a frame's body starts with; it doubles as more of the body arrives.
pub(crate) const FIRST_CHUNK: usize = 64 * 1024;

/// What reading a frame found.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole frame.
    Request(Bytes),
    /// The client closed the connection between frames.
    Closed,
    /// The size field is negative or above the limit: nothing of the body was read.
    TooLarge(i64),
    /// Nothing arrived between frames for the idle limit.
    Idle,
}

/// How long a read or write may wait for progress; `None`: forever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Idle(pub(crate) Option<Duration>);

impl Idle {
    /// Runs one I/O step, failing with [`std::io::ErrorKind::TimedOut`] when it makes no
    /// progress within the limit.
    async fn step<T>(self, io: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
        match self.0 {
            None => io.await,
            Some(limit) => tokio::time::timeout(limit, io).await.unwrap_or_else(|_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "no progress for {} ms (connections.max.idle.ms)",
                        limit.as_millis()
                    ),
                ))
            }),
        }
    }
}

/// Reads one frame, refusing a size above `max` before reading the body. Waiting for the
/// next frame longer than `idle` is [`Frame::Idle`]; a frame that stops arriving for that
/// long is a [`std::io::ErrorKind::TimedOut`] error.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    idle: Idle,
) -> std::io::Result<Frame> {
    let mut size = [0u8; 4];
    let mut filled = 0;
    while filled < size.len() {
        let read = match idle.step(reader.read(&mut size[filled..])).await {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut && filled == 0 => {
                return Ok(Frame::Idle)
            }
            Err(e) => return Err(e),
        };
        if read == 0 {
            if filled == 0 {
                return Ok(Frame::Closed);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        filled += read;
    }
    let size = i32::from_be_bytes(size);
    let Ok(size) = usize::try_from(size) else {
        return Ok(Frame::TooLarge(i64::from(size)));
    };
    if size > max {
        return Ok(Frame::TooLarge(size as i64));
    }
    let mut body = BytesMut::with_capacity(size.min(FIRST_CHUNK));
    while body.len() < size {
        let left = size - body.len();
        if body.capacity() == body.len() {
            // Grow with what arrived: double, and never past the frame.
            body.reserve(body.len().max(FIRST_CHUNK).min(left));
        }
        let room = (body.capacity() - body.len()).min(left);
        let read = idle
            .step((&mut *reader).take(room as u64).read_buf(&mut body))
            .await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Frame::Request(body.freeze()))
}

/// Writes one frame: the size, then the bytes, each write step within `idle`.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
    idle: Idle,
) -> std::io::Result<()> {
    let size = i32::try_from(body.len())
        .map_err(|_| std::io::Error::other("a response larger than 2 GiB"))?;
    write_all(writer, &size.to_be_bytes(), idle).await?;
    write_all(writer, body, idle).await?;
    idle.step(writer.flush()).await
}

async fn write_all<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut bytes: &[u8],
    idle: Idle,
) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let written = idle.step(writer.write(bytes)).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREVER: Idle = Idle(None);

    #[tokio::test]
    async fn frames_round_trip_and_sizes_are_checked_before_the_body() {
        let mut out = Vec::new();
        write_frame(&mut out, b"hello", FOREVER).await.unwrap();
        let mut input = &out[..];
        assert!(
            matches!(read_frame(&mut input, 10, FOREVER).await.unwrap(), Frame::Request(b) if &b[..] == b"hello")
        );
        assert!(matches!(
            read_frame(&mut input, 10, FOREVER).await.unwrap(),
            Frame::Closed
        ));
        let mut input = &out[..];
        assert!(matches!(
            read_frame(&mut input, 4, FOREVER).await.unwrap(),
            Frame::TooLarge(5)
        ));
        let negative = (-1i32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &negative[..], 4, FOREVER).await.unwrap(),
            Frame::TooLarge(-1)
        ));
        // A body cut short is an error, not a frame; so is a header cut short.
        let mut input = &out[..7];
        assert!(read_frame(&mut input, 10, FOREVER).await.is_err());
        let mut input = &out[..2];
        assert!(read_frame(&mut input, 10, FOREVER).await.is_err());
    }

    #[tokio::test]
    async fn a_large_frame_arriving_in_pieces_is_read_whole() {
        let body: Vec<u8> = (0..(5 * FIRST_CHUNK + 123)).map(|i| i as u8).collect();
        let mut out = Vec::new();
        write_frame(&mut out, &body, FOREVER).await.unwrap();
        let (mut client, mut server) = tokio::io::duplex(1000);
        let writer = tokio::spawn(async move {
            for piece in out.chunks(777) {
                client.write_all(piece).await.unwrap();
            }
            client
        });
        let frame = read_frame(&mut server, body.len(), FOREVER).await.unwrap();
        assert!(matches!(frame, Frame::Request(b) if b[..] == body[..]));
        drop(writer.await.unwrap());
        assert!(matches!(
            read_frame(&mut server, body.len(), FOREVER).await.unwrap(),
            Frame::Closed
        ));
    }

    /// A client that sends a header claiming `claimed` bytes, then `piece` bytes per read
    /// until `sent` bytes, then stalls; it records the room each read was offered.
    struct Trickle {
        header: Option<[u8; 4]>,
        piece: usize,
        sent: usize,
        limit: usize,
        /// (bytes of the body delivered before the read, room offered).
        offered: Vec<(usize, usize)>,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(header) = self.header.take() {
                buf.put_slice(&header);
                return std::task::Poll::Ready(Ok(()));
            }
            if self.sent >= self.limit {
                return std::task::Poll::Pending;
            }
            let sent = self.sent;
            self.offered.push((sent, buf.remaining()));
            let n = self.piece.min(buf.remaining()).min(self.limit - sent);
            buf.put_slice(&vec![7u8; n]);
            self.sent += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn the_buffer_grows_with_what_arrived_not_with_the_size_claimed() {
        let claimed = 100 * 1024 * 1024;
        let mut client = Trickle {
            header: Some((claimed as i32).to_be_bytes()),
            piece: 1000,
            sent: 0,
            limit: 3 * 1024 * 1024,
            offered: Vec::new(),
        };
        let read = tokio::time::timeout(
            Duration::from_millis(200),
            read_frame(&mut client, claimed, FOREVER),
        )
        .await;
        assert!(read.is_err(), "the frame is not whole: the read waits");
        assert_eq!(client.sent, client.limit);
        // The room a read is offered is the buffer's free space: it never runs ahead of
        // what arrived by more than the first chunk or the bytes already there.
        for &(arrived, room) in &client.offered {
            assert!(
                room <= arrived.max(FIRST_CHUNK),
                "a read offered {room} bytes of room after {arrived} bytes arrived"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_past_the_idle_limit_ends_the_read() {
        let idle = Idle(Some(Duration::from_secs(600)));
        let (mut client, mut server) = tokio::io::duplex(1024);
        // Between frames: idle.
        assert!(matches!(
            read_frame(&mut server, 100, idle).await.unwrap(),
            Frame::Idle
        ));
        // Inside a frame: an error, the connection is closed.
        client.write_all(&10i32.to_be_bytes()).await.unwrap();
        client.write_all(b"abc").await.unwrap();
        let e = read_frame(&mut server, 100, idle).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        // A write nobody reads: an error too.
        let (_reader, mut writer) = tokio::io::duplex(16);
        let e = write_frame(&mut writer, &[0u8; 64], idle)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    }
}
