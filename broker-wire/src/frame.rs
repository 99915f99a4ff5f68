//! Kafka's framing: each request and response is a 4-byte big-endian size and that many
//! bytes.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What reading a frame found.
#[derive(Debug)]
pub(crate) enum Frame {
    /// A whole frame.
    Request(Bytes),
    /// The client closed the connection between frames.
    Closed,
    /// The size field is negative or above the limit: nothing of the body was read.
    TooLarge(i64),
}

/// Reads one frame, refusing a size above `max` before reading the body.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Frame> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(Frame::Closed),
        Err(e) => return Err(e),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > max {
        return Ok(Frame::TooLarge(i64::from(size)));
    }
    let mut body = BytesMut::zeroed(size as usize);
    reader.read_exact(&mut body).await?;
    Ok(Frame::Request(body.freeze()))
}

/// Writes one frame: the size, then the bytes.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &[u8],
) -> std::io::Result<()> {
    let size = i32::try_from(body.len())
        .map_err(|_| std::io::Error::other("a response larger than 2 GiB"))?;
    writer.write_all(&size.to_be_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_sizes_are_checked_before_the_body() {
        let mut out = Vec::new();
        write_frame(&mut out, b"hello").await.unwrap();
        let mut input = &out[..];
        assert!(
            matches!(read_frame(&mut input, 10).await.unwrap(), Frame::Request(b) if &b[..] == b"hello")
        );
        assert!(matches!(
            read_frame(&mut input, 10).await.unwrap(),
            Frame::Closed
        ));
        let mut input = &out[..];
        assert!(matches!(
            read_frame(&mut input, 4).await.unwrap(),
            Frame::TooLarge(5)
        ));
        let negative = (-1i32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &negative[..], 4).await.unwrap(),
            Frame::TooLarge(-1)
        ));
        // A body cut short is an error, not a frame.
        let mut input = &out[..7];
        assert!(read_frame(&mut input, 10).await.is_err());
    }
}
