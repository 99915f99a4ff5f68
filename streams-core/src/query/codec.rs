//! A store's key or value serde with its type erased: what interactive
//! queries over bytes need of it (its layout, and a check that bytes a
//! person typed read as a value of its type).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::serdes::{Serde, SerdeError, SerdeFormat};

/// A serde of some type, seen through bytes only.
pub(crate) trait ErasedCodec: Send + Sync {
    /// The serde's layout.
    fn format(&self) -> SerdeFormat;
    /// Reads `bytes` with the serde and writes the value again: the bytes
    /// the store holds for that value (a JSON key typed with other
    /// spacing or field order, say, becomes the serde's own rendering).
    fn canonicalize(&self, topic: &str, bytes: &[u8]) -> Result<Bytes, SerdeError>;
}

impl fmt::Debug for dyn ErasedCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErasedCodec({:?})", self.format())
    }
}

struct TypedCodec<T>(Arc<dyn Serde<T>>);

impl<T: 'static> ErasedCodec for TypedCodec<T> {
    fn format(&self) -> SerdeFormat {
        self.0.serde_format()
    }

    fn canonicalize(&self, topic: &str, bytes: &[u8]) -> Result<Bytes, SerdeError> {
        let value = self.0.deserialize_slice(topic, bytes)?;
        self.0.serialize(topic, &value)
    }
}

/// `serde` seen through bytes.
pub(crate) fn codec_of<T: 'static>(serde: &Arc<dyn Serde<T>>) -> Arc<dyn ErasedCodec> {
    Arc::new(TypedCodec(serde.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serdes::{shared, Serdes};

    #[test]
    fn canonical_bytes_come_from_the_serde() {
        let json = codec_of(&shared(Serdes::json::<
            std::collections::BTreeMap<String, i32>,
        >()));
        assert_eq!(json.format(), SerdeFormat::Json);
        assert_eq!(
            json.canonicalize("t", br#"{ "b": 2,  "a": 1 }"#).unwrap(),
            Bytes::from_static(br#"{"a":1,"b":2}"#)
        );
        assert!(json.canonicalize("t", b"[1]").is_err());
        let int = codec_of(&shared(Serdes::i64()));
        assert_eq!(int.format(), SerdeFormat::I64);
        assert!(int.canonicalize("t", &[1, 2]).is_err());
    }
}
