//! Key and value formats: how text typed on stdin becomes record bytes (`produce`), and how
//! record bytes are shown on stdout (`consume`).
//!
//! | format   | produce (text → bytes)                       | consume (bytes → text)                    |
//! |----------|----------------------------------------------|-------------------------------------------|
//! | `string` | the line's bytes as they are                 | UTF-8, invalid sequences shown as U+FFFD  |
//! | `i64`    | a decimal integer → 8 bytes big-endian       | 8 bytes big-endian → decimal; else error  |
//! | `json`   | a JSON document, stored without whitespace   | JSON shown on one line; invalid → error   |
//! | `hex`    | hex digits (either case) → bytes             | lowercase hex digits                      |

use std::fmt;

use bytes::Bytes;
use clap::ValueEnum;

/// How a key or a value is written on the command line and shown on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum Format {
    /// Text: bytes as they are (UTF-8 expected when shown).
    #[default]
    String,
    /// A signed 64-bit integer stored as 8 bytes big-endian, as Kafka's `LongSerializer`.
    I64,
    /// A JSON document, stored and shown without insignificant whitespace.
    Json,
    /// Raw bytes written as hex digits.
    Hex,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::String => "string",
            Format::I64 => "i64",
            Format::Json => "json",
            Format::Hex => "hex",
        })
    }
}

/// Why bytes or text do not fit a [`Format`].
#[derive(Debug)]
pub(crate) enum FormatError {
    /// Text that is not a decimal 64-bit integer.
    NotAnInteger {
        /// The text (cut short if long).
        input: String,
    },
    /// Stored bytes whose length is not the 8 bytes of an i64.
    I64Length {
        /// Their length.
        len: usize,
    },
    /// Text or bytes that are not one JSON document.
    Json(serde_json::Error),
    /// JSON that is not UTF-8.
    Utf8(std::str::Utf8Error),
    /// Text that is not an even number of hex digits.
    Hex(hex::FromHexError),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::NotAnInteger { input } => {
                write!(f, "{input:?} is not a 64-bit decimal integer")
            }
            FormatError::I64Length { len } => {
                write!(f, "an i64 is 8 bytes big-endian, this is {len} bytes")
            }
            FormatError::Json(e) => write!(f, "{e}"),
            FormatError::Utf8(e) => write!(f, "not UTF-8: {e}"),
            FormatError::Hex(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Longest piece of bad input quoted back in an error message.
const QUOTE_MAX_CHARS: usize = 40;

fn quote(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    if text.chars().count() <= QUOTE_MAX_CHARS {
        text.into_owned()
    } else {
        let mut cut: String = text.chars().take(QUOTE_MAX_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// Turns text given on stdin into the bytes to store.
pub(crate) fn encode(format: Format, input: &[u8]) -> Result<Bytes, FormatError> {
    match format {
        Format::String => Ok(Bytes::copy_from_slice(input)),
        Format::I64 => {
            let n = std::str::from_utf8(input)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| FormatError::NotAnInteger {
                    input: quote(input),
                })?;
            Ok(Bytes::copy_from_slice(&n.to_be_bytes()))
        }
        Format::Json => Ok(Bytes::from(compact_json(input)?)),
        Format::Hex => hex::decode(input.trim_ascii())
            .map(Bytes::from)
            .map_err(FormatError::Hex),
    }
}

/// Turns stored bytes into the text shown on stdout.
pub(crate) fn decode(format: Format, data: &[u8]) -> Result<String, FormatError> {
    match format {
        Format::String => Ok(String::from_utf8_lossy(data).into_owned()),
        Format::I64 => {
            let bytes: [u8; 8] = data
                .try_into()
                .map_err(|_| FormatError::I64Length { len: data.len() })?;
            Ok(i64::from_be_bytes(bytes).to_string())
        }
        Format::Json => {
            let compact = compact_json(data)?;
            // `compact_json` only accepts valid JSON, which is UTF-8.
            Ok(String::from_utf8_lossy(&compact).into_owned())
        }
        Format::Hex => Ok(hex::encode(data)),
    }
}

/// Checks that `input` is exactly one JSON document and returns it without insignificant
/// whitespace. Key order, duplicate keys and the spelling of numbers are kept as written:
/// only whitespace outside strings is removed.
pub(crate) fn compact_json(input: &[u8]) -> Result<Vec<u8>, FormatError> {
    let text = std::str::from_utf8(input).map_err(FormatError::Utf8)?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(FormatError::Json)?;
    let mut out = Vec::with_capacity(input.len());
    let mut in_string = false;
    let mut escaped = false;
    for &b in input {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else {
            match b {
                b' ' | b'\t' | b'\n' | b'\r' => {}
                b'"' => {
                    in_string = true;
                    out.push(b);
                }
                _ => out.push(b),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(format: Format, input: &str) -> Vec<u8> {
        match encode(format, input.as_bytes()) {
            Ok(b) => b.to_vec(),
            Err(e) => panic!("encode {format} {input:?}: {e}"),
        }
    }

    fn dec(format: Format, data: &[u8]) -> String {
        match decode(format, data) {
            Ok(s) => s,
            Err(e) => panic!("decode {format} {data:?}: {e}"),
        }
    }

    #[test]
    fn string_is_bytes_as_they_are() {
        assert_eq!(enc(Format::String, " a\tb "), b" a\tb ");
        assert_eq!(enc(Format::String, ""), b"");
        assert_eq!(dec(Format::String, "héllo".as_bytes()), "héllo");
        assert_eq!(dec(Format::String, b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn i64_is_eight_bytes_big_endian() {
        assert_eq!(enc(Format::I64, "1"), [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(enc(Format::I64, "-1"), [0xff; 8]);
        assert_eq!(enc(Format::I64, " 258 "), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(
            enc(Format::I64, "9223372036854775807"),
            i64::MAX.to_be_bytes()
        );
        assert_eq!(dec(Format::I64, &[0, 0, 0, 0, 0, 0, 1, 2]), "258");
        assert_eq!(
            dec(Format::I64, &i64::MIN.to_be_bytes()),
            i64::MIN.to_string()
        );
    }

    #[test]
    fn i64_rejects_bad_text_and_wrong_lengths() {
        for bad in ["", "x", "1.5", "9223372036854775808", "0x10"] {
            let err = encode(Format::I64, bad.as_bytes()).unwrap_err();
            assert!(matches!(err, FormatError::NotAnInteger { .. }), "{bad:?}");
            assert!(err.to_string().contains("not a 64-bit"), "{err}");
        }
        let long = "y".repeat(100);
        let err = encode(Format::I64, long.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.len() < 100, "long input is cut short: {err}");
        for len in [0, 4, 7, 9] {
            let err = decode(Format::I64, &vec![1; len]).unwrap_err();
            assert!(matches!(err, FormatError::I64Length { len: l } if l == len));
            assert!(err.to_string().contains(&format!("{len} bytes")), "{err}");
        }
    }

    #[test]
    fn json_is_compacted_keeping_order_and_numbers() {
        let input = r#" { "b" : [1, 2.50, 1e3] , "a": "x y\"z \\", "c": null } "#;
        let want = r#"{"b":[1,2.50,1e3],"a":"x y\"z \\","c":null}"#;
        assert_eq!(enc(Format::Json, input), want.as_bytes());
        assert_eq!(dec(Format::Json, input.as_bytes()), want);
        assert_eq!(dec(Format::Json, b"\"\\\\\" "), r#""\\""#);
        assert_eq!(
            dec(Format::Json, b"12345678901234567890123"),
            "12345678901234567890123"
        );
    }

    #[test]
    fn json_rejects_invalid_documents() {
        for bad in [
            "",
            "{",
            "{} {}",
            "nul",
            "{\"a\" 1}",
            "'x'",
            "\"a\\qb\"",
            "\"a\tb\"",
            "[1,]",
        ] {
            let err = encode(Format::Json, bad.as_bytes()).unwrap_err();
            assert!(matches!(err, FormatError::Json(_)), "{bad:?}");
            assert!(decode(Format::Json, bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(matches!(
            decode(Format::Json, b"\"\xff\""),
            Err(FormatError::Utf8(_))
        ));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(enc(Format::Hex, "00ff10"), [0, 0xff, 0x10]);
        assert_eq!(enc(Format::Hex, "ABcd\r"), [0xab, 0xcd]);
        assert_eq!(enc(Format::Hex, ""), b"");
        assert_eq!(dec(Format::Hex, &[0, 0xff, 0x10]), "00ff10");
        assert_eq!(dec(Format::Hex, b""), "");
        for bad in ["abc", "zz", "0x00"] {
            assert!(
                matches!(
                    encode(Format::Hex, bad.as_bytes()),
                    Err(FormatError::Hex(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_format_round_trips_what_it_encodes() {
        let cases = [
            (Format::String, "plain text"),
            (Format::I64, "-42"),
            (Format::Json, r#"{"k":[true,false]}"#),
            (Format::Hex, "deadbeef"),
        ];
        for (format, text) in cases {
            let bytes = enc(format, text);
            assert_eq!(dec(format, &bytes), text, "{format}");
        }
    }
}
