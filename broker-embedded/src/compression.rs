//! Record-batch compression: Kafka's codecs (`compression.type`) for the record section of
//! a batch.
//!
//! A compressed batch keeps its 61-byte header as it is and holds its records, encoded as
//! in an uncompressed batch, as one compressed stream after it; the codec is in bits 0-2
//! of the batch's attributes. The streams are the ones Kafka's clients write: gzip (RFC
//! 1952), snappy in Xerial's framing (the 16-byte `\x82SNAPPY\0` header then blocks of a
//! 4-byte big-endian length and raw snappy bytes; raw snappy without the header, as
//! librdkafka writes it, is read too, as Kafka's Java client reads it), the LZ4 frame
//! format, and zstd frames.
//!
//! Compression goes through the `kafka-protocol` crate's compression module, so that the
//! bytes are those its `RecordBatchEncoder` writes. Decompression reads the same codecs
//! through their own crates, because `kafka-protocol`'s decompressors have no bound on
//! what they produce: here the output is cut off at a limit given by the caller (see
//! [`max_decompressed_len`](crate::batch::max_decompressed_len)), so a small batch that
//! claims or expands to gigabytes (a zip bomb) is an error, never an allocation. (The
//! zstd decoder also keeps a window of at most 128 MiB, zstd's default limit, which is what
//! a frame written at zstd's highest level may need.)

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use kafka_protocol::compression::{self as codecs, Compressor};

use crate::error::BrokerError;

/// A record batch's compression codec: bits 0-2 of its attributes, with Kafka's names
/// (the values of the producer's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// `none` (0): the records are stored as they are.
    #[default]
    None,
    /// `gzip` (1).
    Gzip,
    /// `snappy` (2), in Xerial's framing.
    Snappy,
    /// `lz4` (3), the LZ4 frame format.
    Lz4,
    /// `zstd` (4).
    Zstd,
}

impl Compression {
    /// Every codec, by attribute value.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec's value in bits 0-2 of a batch's attributes.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with this attribute value (0 to 4); `None` for 5 to 7 and anything else.
    pub fn from_id(id: i16) -> Option<Compression> {
        Compression::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// Kafka's name: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = BrokerError;

    /// Parses Kafka's producer `compression.type` values; anything else is
    /// [`BrokerError::InvalidConfig`] naming the key and the accepted values.
    fn from_str(value: &str) -> Result<Compression, BrokerError> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == value.trim())
            .ok_or_else(|| BrokerError::InvalidConfig {
                key: "compression.type".to_owned(),
                value: value.to_owned(),
                reason: "expected none, gzip, snappy, lz4 or zstd".to_owned(),
            })
    }
}

/// Why a compressed record section could not be decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inflate {
    /// The stream is malformed or truncated.
    Invalid(String),
    /// The stream expands past the limit.
    TooLarge,
}

/// Compresses `input` with `codec`, appending the stream to `out`. `Compression::None`
/// copies `input`.
pub(crate) fn compress(codec: Compression, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    // Each compressor hands its closure a scratch buffer for the uncompressed bytes.
    let result = match codec {
        Compression::None => {
            out.extend_from_slice(input);
            return Ok(());
        }
        Compression::Gzip => codecs::Gzip::compress(out, |tmp| {
            tmp.extend_from_slice(input);
            Ok(())
        }),
        Compression::Snappy => codecs::Snappy::compress(out, |tmp| {
            tmp.extend_from_slice(input);
            Ok(())
        }),
        Compression::Lz4 => codecs::Lz4::compress(out, |tmp| {
            tmp.extend_from_slice(input);
            Ok(())
        }),
        Compression::Zstd => codecs::Zstd::compress(out, |tmp| {
            tmp.extend_from_slice(input);
            Ok(())
        }),
    };
    result.map_err(|e| format!("{codec} compression failed: {e:#}"))
}

/// Decompresses the record section `input` of a batch compressed with `codec`, producing at
/// most `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, Inflate> {
    let invalid = |e: std::io::Error| Inflate::Invalid(e.to_string());
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(Inflate::TooLarge);
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit),
        Compression::Snappy => snappy_decompress(input, limit),
        Compression::Lz4 => {
            let mut decoder = lz4::Decoder::new(input).map_err(invalid)?;
            let out = read_bounded(&mut decoder, limit)?;
            // A stream that ends before its end mark reads as a short stream: only `finish`
            // tells.
            decoder.finish().1.map_err(|_| {
                Inflate::Invalid("the LZ4 frame ends before its end mark".to_owned())
            })?;
            Ok(out)
        }
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(invalid)?;
            read_bounded(decoder, limit)
        }
    }
}

/// Reads `reader` to its end, or fails once it yields more than `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, Inflate> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Inflate::Invalid(e.to_string()))?;
    if out.len() > limit {
        return Err(Inflate::TooLarge);
    }
    Ok(out)
}

/// Xerial's snappy framing starts with these 8 bytes, then a version and a minimum
/// compatible version (4 bytes each).
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// Decompresses Xerial-framed snappy, or raw snappy when the magic is absent (as Kafka's
/// Java client does). Each block's declared length is checked against what is left of
/// `limit` before anything is allocated for it.
fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, Inflate> {
    let invalid = |what: &str, e: snap::Error| Inflate::Invalid(format!("{what}: {e}"));
    if !input.starts_with(XERIAL_MAGIC) {
        let len = snap::raw::decompress_len(input).map_err(|e| invalid("raw snappy", e))?;
        if len > limit {
            return Err(Inflate::TooLarge);
        }
        let mut out = vec![0; len];
        let n = snap::raw::Decoder::new()
            .decompress(input, &mut out)
            .map_err(|e| invalid("raw snappy", e))?;
        out.truncate(n);
        return Ok(out);
    }
    let mut rest = input
        .get(XERIAL_HEADER_LEN..)
        .ok_or_else(|| Inflate::Invalid("truncated Xerial snappy header".to_owned()))?;
    let mut out = Vec::new();
    let mut decoder = snap::raw::Decoder::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Inflate::Invalid("truncated snappy block length".to_owned()))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or_else(|| {
            Inflate::Invalid(format!(
                "snappy block of {len} bytes runs past the stream ({} left)",
                tail.len()
            ))
        })?;
        rest = &tail[len..];
        let size = snap::raw::decompress_len(block).map_err(|e| invalid("snappy block", e))?;
        let start = out.len();
        if size > limit - start {
            return Err(Inflate::TooLarge);
        }
        out.resize(start + size, 0);
        let n = decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| invalid("snappy block", e))?;
        out.truncate(start + n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..5000u32).flat_map(|i| (i % 251).to_be_bytes()).collect()
    }

    #[test]
    fn names_and_ids_are_kafkas() {
        for (id, name) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
            let c = Compression::from_id(id as i16).unwrap();
            assert_eq!(c.id(), id as i16);
            assert_eq!(c.name(), *name);
            assert_eq!(name.parse::<Compression>().unwrap(), c);
            assert_eq!(c.to_string(), *name);
        }
        for id in [5, 6, 7, -1] {
            assert_eq!(Compression::from_id(id), None);
        }
        let err = "brotli".parse::<Compression>().unwrap_err().to_string();
        assert!(
            err.contains("compression.type") && err.contains("brotli"),
            "{err}"
        );
        assert!(err.contains("none, gzip, snappy, lz4 or zstd"), "{err}");
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in Compression::ALL {
            let mut out = b"prefix".to_vec();
            compress(codec, &input, &mut out).unwrap();
            assert!(out.starts_with(b"prefix"));
            let back = decompress(codec, &out[6..], input.len()).unwrap();
            assert_eq!(back, input, "{codec}");
            // One byte short of the output is too large.
            assert_eq!(
                decompress(codec, &out[6..], input.len() - 1),
                Err(Inflate::TooLarge),
                "{codec}"
            );
            // Empty input.
            let mut empty = Vec::new();
            compress(codec, &[], &mut empty).unwrap();
            assert_eq!(decompress(codec, &empty, 0).unwrap(), b"", "{codec}");
        }
    }

    #[test]
    fn snappy_is_xerial_framed_and_raw_snappy_is_read_too() {
        let input = sample();
        let mut framed = Vec::new();
        compress(Compression::Snappy, &input, &mut framed).unwrap();
        assert_eq!(&framed[..8], XERIAL_MAGIC);
        // Version 1, minimum compatible version 1, as snappy-java writes.
        assert_eq!(&framed[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);

        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            input
        );
    }

    #[test]
    fn streams_have_the_framing_kafkas_java_client_reads() {
        let input = sample();
        let stream = |codec| {
            let mut out = Vec::new();
            compress(codec, &input, &mut out).unwrap();
            out
        };
        // gzip: an RFC 1952 member, deflate.
        assert_eq!(&stream(Compression::Gzip)[..3], &[0x1f, 0x8b, 8]);
        // zstd: a zstd frame.
        assert_eq!(&stream(Compression::Zstd)[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        // LZ4: a frame whose descriptor Kafka's Lz4BlockInputStream accepts: version 1,
        // independent blocks, reserved bits 0, a block size of 64 KiB to 4 MiB (4 to 7).
        let lz4 = stream(Compression::Lz4);
        assert_eq!(&lz4[..4], &[0x04, 0x22, 0x4d, 0x18]);
        let (flg, bd) = (lz4[4], lz4[5]);
        assert_eq!(flg >> 6, 1, "version");
        assert_eq!(flg & 0x20, 0x20, "independent blocks");
        assert_eq!(flg & 0x03, 0, "reserved bits");
        assert!((4..=7).contains(&((bd >> 4) & 7)), "block size {bd:#x}");
        assert_eq!(bd & 0x8f, 0, "reserved bits");
    }

    #[test]
    fn truncated_and_damaged_streams_are_errors() {
        let input = sample();
        for codec in &Compression::ALL[1..] {
            let mut out = Vec::new();
            compress(*codec, &input, &mut out).unwrap();
            for cut in [0, 1, out.len() / 2, out.len() - 1] {
                assert!(
                    decompress(*codec, &out[..cut], 1 << 20).is_err_and(|e| e != Inflate::TooLarge)
                        || cut == 0,
                    "{codec} cut to {cut} of {}",
                    out.len()
                );
            }
            for at in [0, out.len() / 3, out.len() / 2] {
                let mut bad = out.clone();
                bad[at] ^= 0x5a;
                // Either an error, or (for a byte the codec does not check) other bytes:
                // never a panic and never more than the limit.
                if let Ok(back) = decompress(*codec, &bad, 1 << 20) {
                    assert!(back.len() <= 1 << 20);
                }
            }
        }
    }

    #[test]
    fn a_snappy_block_claiming_gigabytes_allocates_nothing() {
        // A raw snappy stream whose preamble claims 2^32 - 1 bytes.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert_eq!(
            decompress(Compression::Snappy, &bomb, 64 << 20),
            Err(Inflate::TooLarge)
        );
        let mut framed = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        framed.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
        framed.extend_from_slice(&bomb);
        assert_eq!(
            decompress(Compression::Snappy, &framed, 64 << 20),
            Err(Inflate::TooLarge)
        );
    }
}
