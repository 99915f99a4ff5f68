//! Stored bytes as JSON, and keys typed in a URL as stored bytes, by the
//! layout of the store's serdes ([`SerdeFormat`]).
//!
//! | format | JSON | in a URL |
//! | --- | --- | --- |
//! | `string` | a string | the text |
//! | `i16` … `u64`, `f32`, `f64` | a number | the number |
//! | `bool` | `true` / `false` | `true` / `false` |
//! | `json` | the JSON as stored | JSON (a bare word is taken as a JSON string) |
//! | `bytes`, `opaque` | base64 (standard alphabet) | base64 (standard or URL-safe) |
//! | `timestamped(F)` | the value in `F`, its timestamp beside it | not a key format |
//!
//! Bytes that do not read in their format (text that is not UTF-8, say)
//! are shown as base64 rather than refused.

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::Value;
use streams_core::SerdeFormat;

/// The name of `format` in answers: `string`, `i64`, `timestamped(i64)`...
pub(crate) fn format_name(format: &SerdeFormat) -> String {
    match format {
        SerdeFormat::Opaque => "opaque".to_owned(),
        SerdeFormat::Bytes => "bytes".to_owned(),
        SerdeFormat::String => "string".to_owned(),
        SerdeFormat::I16 => "i16".to_owned(),
        SerdeFormat::I32 => "i32".to_owned(),
        SerdeFormat::I64 => "i64".to_owned(),
        SerdeFormat::U16 => "u16".to_owned(),
        SerdeFormat::U32 => "u32".to_owned(),
        SerdeFormat::U64 => "u64".to_owned(),
        SerdeFormat::F32 => "f32".to_owned(),
        SerdeFormat::F64 => "f64".to_owned(),
        SerdeFormat::Bool => "bool".to_owned(),
        SerdeFormat::Json => "json".to_owned(),
        SerdeFormat::Timestamped(inner) => format!("timestamped({})", format_name(inner)),
        _ => "opaque".to_owned(),
    }
}

fn base64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

/// A value as JSON, and the timestamp its layout carries, if any.
pub(crate) fn to_json(format: &SerdeFormat, bytes: &[u8]) -> (Value, Option<i64>) {
    if let SerdeFormat::Timestamped(inner) = format {
        return match bytes.split_first_chunk::<8>() {
            Some((ts, rest)) => (plain(inner, rest), Some(i64::from_be_bytes(*ts))),
            None => (base64(bytes), None),
        };
    }
    (plain(format, bytes), None)
}

fn fixed<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    bytes.try_into().ok()
}

fn float(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map_or_else(|| Value::String(value.to_string()), Value::Number)
}

fn plain(format: &SerdeFormat, bytes: &[u8]) -> Value {
    let value = match format {
        SerdeFormat::String => std::str::from_utf8(bytes)
            .ok()
            .map(|s| Value::String(s.to_owned())),
        SerdeFormat::I16 => fixed(bytes).map(|b| Value::from(i16::from_be_bytes(b))),
        SerdeFormat::I32 => fixed(bytes).map(|b| Value::from(i32::from_be_bytes(b))),
        SerdeFormat::I64 => fixed(bytes).map(|b| Value::from(i64::from_be_bytes(b))),
        SerdeFormat::U16 => fixed(bytes).map(|b| Value::from(u16::from_be_bytes(b))),
        SerdeFormat::U32 => fixed(bytes).map(|b| Value::from(u32::from_be_bytes(b))),
        SerdeFormat::U64 => fixed(bytes).map(|b| Value::from(u64::from_be_bytes(b))),
        SerdeFormat::F32 => fixed(bytes).map(|b| float(f64::from(f32::from_be_bytes(b)))),
        SerdeFormat::F64 => fixed(bytes).map(|b| float(f64::from_be_bytes(b))),
        SerdeFormat::Bool => match bytes {
            [0] => Some(Value::Bool(false)),
            [1] => Some(Value::Bool(true)),
            _ => None,
        },
        SerdeFormat::Json => serde_json::from_slice(bytes).ok(),
        _ => None,
    };
    value.unwrap_or_else(|| base64(bytes))
}

/// The bytes of a key typed as `text` in a URL, in `format`; an error says
/// why it does not read. The bytes still go through the key serde, which
/// has the last word.
pub(crate) fn parse_key(format: &SerdeFormat, text: &str) -> Result<Vec<u8>, String> {
    fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
        text.trim()
            .parse()
            .map_err(|_| format!("{text:?} is not {what}"))
    }
    Ok(match format {
        SerdeFormat::String => text.as_bytes().to_vec(),
        SerdeFormat::I16 => number::<i16>(text, "an i16")?.to_be_bytes().to_vec(),
        SerdeFormat::I32 => number::<i32>(text, "an i32")?.to_be_bytes().to_vec(),
        SerdeFormat::I64 => number::<i64>(text, "an i64")?.to_be_bytes().to_vec(),
        SerdeFormat::U16 => number::<u16>(text, "a u16")?.to_be_bytes().to_vec(),
        SerdeFormat::U32 => number::<u32>(text, "a u32")?.to_be_bytes().to_vec(),
        SerdeFormat::U64 => number::<u64>(text, "a u64")?.to_be_bytes().to_vec(),
        SerdeFormat::F32 => number::<f32>(text, "an f32")?.to_be_bytes().to_vec(),
        SerdeFormat::F64 => number::<f64>(text, "an f64")?.to_be_bytes().to_vec(),
        SerdeFormat::Bool => match text {
            "true" => vec![1],
            "false" => vec![0],
            other => return Err(format!("{other:?} is not true or false")),
        },
        SerdeFormat::Json => {
            let value = serde_json::from_str::<Value>(text)
                .unwrap_or_else(|_| Value::String(text.to_owned()));
            serde_json::to_vec(&value).map_err(|e| format!("cannot write {text:?} as JSON: {e}"))?
        }
        SerdeFormat::Timestamped(_) => {
            return Err(
                "the store's keys are timestamped values, which a URL cannot name".to_owned(),
            )
        }
        _ => STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| format!("{text:?} is not base64 (the store's keys are bytes)"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_by_format() {
        assert_eq!(to_json(&SerdeFormat::String, b"hi").0, Value::from("hi"));
        assert_eq!(
            to_json(&SerdeFormat::I64, &7i64.to_be_bytes()).0,
            Value::from(7)
        );
        assert_eq!(
            to_json(&SerdeFormat::U16, &9u16.to_be_bytes()).0,
            Value::from(9)
        );
        assert_eq!(
            to_json(&SerdeFormat::F64, &f64::NAN.to_be_bytes()).0,
            Value::from("NaN")
        );
        assert_eq!(to_json(&SerdeFormat::Bool, &[1]).0, Value::Bool(true));
        assert_eq!(
            to_json(&SerdeFormat::Json, br#"{"a":[1,2]}"#).0,
            serde_json::json!({"a": [1, 2]})
        );
        assert_eq!(
            to_json(&SerdeFormat::Bytes, &[0, 255]).0,
            Value::from("AP8=")
        );
        // Bytes that do not read in their format fall back to base64.
        assert_eq!(
            to_json(&SerdeFormat::String, &[0xff]).0,
            Value::from("/w==")
        );
        assert_eq!(to_json(&SerdeFormat::I64, &[1]).0, Value::from("AQ=="));
        let mut stamped = 1_700_000_000_000i64.to_be_bytes().to_vec();
        stamped.extend_from_slice(&3i64.to_be_bytes());
        let format = SerdeFormat::Timestamped(Box::new(SerdeFormat::I64));
        assert_eq!(
            to_json(&format, &stamped),
            (Value::from(3), Some(1_700_000_000_000))
        );
        assert_eq!(format_name(&format), "timestamped(i64)");
    }

    #[test]
    fn keys_parse_by_format() {
        assert_eq!(
            parse_key(&SerdeFormat::String, "é").unwrap(),
            "é".as_bytes()
        );
        assert_eq!(
            parse_key(&SerdeFormat::I32, "-2").unwrap(),
            (-2i32).to_be_bytes()
        );
        assert!(parse_key(&SerdeFormat::I64, "abc").is_err());
        assert!(parse_key(&SerdeFormat::U16, "70000").is_err());
        assert_eq!(parse_key(&SerdeFormat::Json, "word").unwrap(), br#""word""#);
        assert_eq!(parse_key(&SerdeFormat::Json, "[1, 2]").unwrap(), b"[1,2]");
        assert_eq!(parse_key(&SerdeFormat::Bytes, "AP8=").unwrap(), [0, 255]);
        assert_eq!(parse_key(&SerdeFormat::Bytes, "AP8").unwrap(), [0, 255]);
        assert!(parse_key(&SerdeFormat::Bytes, "***").is_err());
        assert!(parse_key(&SerdeFormat::Timestamped(Box::new(SerdeFormat::I64)), "1").is_err());
    }
}
