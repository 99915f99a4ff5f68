//! Serializers and deserializers: the [`Serde`] trait and the built-ins of
//! [`Serdes`].
//!
//! Byte layouts follow Kafka's serializers, so that data written by a Kafka
//! Streams application reads back here and the other way round:
//!
//! | serde | layout |
//! | --- | --- |
//! | [`Serdes::bytes`] | the bytes as they are |
//! | [`Serdes::string`] | UTF-8 |
//! | [`Serdes::i16`] .. [`Serdes::u64`] | big-endian, exactly the type's width |
//! | [`Serdes::f32`], [`Serdes::f64`] | IEEE 754 bits, big-endian |
//! | [`Serdes::bool`] | one byte, `0` or `1` |
//! | [`Serdes::json`] | `serde_json` |
//! | [`Serdes::bincode`] | `bincode` 1.3: fixed-width little-endian integers, no trailing bytes |
//! | [`Serdes::time_windowed`] | key bytes, then the window start as 8 bytes big-endian (Kafka's `TimeWindowedSerde`) |
//! | [`Serdes::session_windowed`] | key bytes, then the end, then the start, 8 bytes big-endian each (Kafka's `SessionWindowedSerde`) |
//!
//! A null key or value never reaches a serde: records carry `Option`s and
//! `None` is written as a null ([`Serde::serialize_nullable`]).

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

/// Whether a [`SerdeError`] happened while writing or reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerdeOperation {
    /// Turning a value into bytes.
    Serialize,
    /// Turning bytes into a value.
    Deserialize,
}

impl fmt::Display for SerdeOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Serialize => "serializing",
            Self::Deserialize => "deserializing",
        })
    }
}

/// A serializer or deserializer failure, naming the topic and the type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} {type_name} for topic '{topic}' failed: {reason}")]
#[non_exhaustive]
pub struct SerdeError {
    /// The topic the data was written to or read from (for a state store,
    /// its changelog topic).
    pub topic: String,
    /// What failed.
    pub operation: SerdeOperation,
    /// The Rust type being written or read.
    pub type_name: &'static str,
    /// Why.
    pub reason: String,
}

impl SerdeError {
    /// A serialization failure of a `T` for `topic`.
    pub fn serialize<T: ?Sized>(topic: &str, reason: impl Into<String>) -> Self {
        Self {
            topic: topic.to_owned(),
            operation: SerdeOperation::Serialize,
            type_name: std::any::type_name::<T>(),
            reason: reason.into(),
        }
    }

    /// A deserialization failure of a `T` from `topic`.
    pub fn deserialize<T: ?Sized>(topic: &str, reason: impl Into<String>) -> Self {
        Self {
            topic: topic.to_owned(),
            operation: SerdeOperation::Deserialize,
            type_name: std::any::type_name::<T>(),
            reason: reason.into(),
        }
    }
}

/// Converts values of `T` to bytes and back, as Kafka's `Serde<T>`.
///
/// `topic` is the topic the bytes go to or come from (for a state store, its
/// changelog topic); it is used in error messages and may select a schema.
/// Deserializing must never panic: malformed input is a [`SerdeError`].
pub trait Serde<T>: Send + Sync + 'static {
    /// Writes `value` as bytes.
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes, SerdeError>;

    /// Reads a value from `bytes`.
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<T, SerdeError>;

    /// Writes `value`, which the caller gives up: a serde whose bytes are
    /// the value's own buffer (strings, byte vectors) takes it without a
    /// copy. By default, [`Serde::serialize`].
    fn serialize_owned(&self, topic: &str, value: T) -> Result<Bytes, SerdeError> {
        self.serialize(topic, &value)
    }

    /// Appends `value`'s bytes to `out`. By default a copy of
    /// [`Serde::serialize`]'s; the built-in serdes write straight into
    /// `out`, which saves a buffer per value.
    fn serialize_into(&self, topic: &str, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        out.extend_from_slice(&self.serialize(topic, value)?);
        Ok(())
    }

    /// The bytes [`Serde::serialize`] would write for `value`, when `value`
    /// holds them as they are (a string's UTF-8, a byte buffer): a sink then
    /// copies them without a call to [`Serde::serialize_into`]. By default
    /// `None`.
    fn bytes_of<'v>(&self, value: &'v T) -> Option<&'v [u8]> {
        let _ = value;
        None
    }

    /// Reads a value from a borrowed slice. By default [`Serde::deserialize`]
    /// of a copy; the built-in serdes read the slice as it is.
    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        self.deserialize(topic, &Bytes::copy_from_slice(bytes))
    }

    /// Writes an optional value: `None` is a null.
    fn serialize_nullable(
        &self,
        topic: &str,
        value: Option<&T>,
    ) -> Result<Option<Bytes>, SerdeError> {
        value.map(|v| self.serialize(topic, v)).transpose()
    }

    /// Reads an optional value: a null is `None`.
    fn deserialize_nullable(
        &self,
        topic: &str,
        bytes: Option<&Bytes>,
    ) -> Result<Option<T>, SerdeError> {
        bytes.map(|b| self.deserialize(topic, b)).transpose()
    }

    /// How this serde lays out its bytes, for tools that show stored data
    /// to people (the interactive queries of `streams-http` render keys and
    /// values as JSON with it). By default [`SerdeFormat::Opaque`]: the
    /// bytes are shown as base64. The built-in serdes say what they write.
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::Opaque
    }
}

/// How a [`Serde`] lays out its bytes ([`Serde::serde_format`]), so that
/// a tool can show them as JSON and read a key typed by a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SerdeFormat {
    /// Unknown to tools: shown as base64.
    Opaque,
    /// Raw bytes ([`Serdes::bytes`], [`Serdes::byte_vec`]): base64.
    Bytes,
    /// UTF-8 text ([`Serdes::string`]).
    String,
    /// A big-endian `i16`.
    I16,
    /// A big-endian `i32`.
    I32,
    /// A big-endian `i64`.
    I64,
    /// A big-endian `u16`.
    U16,
    /// A big-endian `u32`.
    U32,
    /// A big-endian `u64`.
    U64,
    /// A big-endian IEEE 754 `f32`.
    F32,
    /// A big-endian IEEE 754 `f64`.
    F64,
    /// One byte, 0 or 1.
    Bool,
    /// JSON text ([`Serdes::json`]).
    Json,
    /// Kafka's `ValueAndTimestamp` layout, which the DSL's stores hold: an
    /// 8-byte big-endian timestamp (epoch milliseconds), then the value's
    /// bytes in the inner format.
    Timestamped(Box<SerdeFormat>),
}

/// `serde` as a shared trait object, without wrapping it again when it is
/// one already (the DSL passes its serdes as `Arc<dyn Serde<T>>`): a node
/// then calls the serde itself rather than a wrapper that calls it.
pub(crate) fn shared<T: 'static, S: Serde<T>>(serde: S) -> Arc<dyn Serde<T>> {
    match (&serde as &dyn std::any::Any).downcast_ref::<Arc<dyn Serde<T>>>() {
        Some(shared) => Arc::clone(shared),
        None => Arc::new(serde),
    }
}

impl<T, S: Serde<T> + ?Sized> Serde<T> for Arc<S> {
    fn bytes_of<'v>(&self, value: &'v T) -> Option<&'v [u8]> {
        (**self).bytes_of(value)
    }
    fn serde_format(&self) -> SerdeFormat {
        (**self).serde_format()
    }
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes, SerdeError> {
        (**self).serialize(topic, value)
    }
    fn serialize_into(&self, topic: &str, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        (**self).serialize_into(topic, value, out)
    }
    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        (**self).deserialize_slice(topic, bytes)
    }
    fn serialize_owned(&self, topic: &str, value: T) -> Result<Bytes, SerdeError> {
        (**self).serialize_owned(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<T, SerdeError> {
        (**self).deserialize(topic, bytes)
    }
}

impl<T, S: Serde<T> + ?Sized> Serde<T> for Box<S> {
    fn bytes_of<'v>(&self, value: &'v T) -> Option<&'v [u8]> {
        (**self).bytes_of(value)
    }
    fn serde_format(&self) -> SerdeFormat {
        (**self).serde_format()
    }
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes, SerdeError> {
        (**self).serialize(topic, value)
    }
    fn serialize_into(&self, topic: &str, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        (**self).serialize_into(topic, value, out)
    }
    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        (**self).deserialize_slice(topic, bytes)
    }
    fn serialize_owned(&self, topic: &str, value: T) -> Result<Bytes, SerdeError> {
        (**self).serialize_owned(topic, value)
    }
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<T, SerdeError> {
        (**self).deserialize(topic, bytes)
    }
}

/// The built-in serdes, as Kafka's `Serdes` class.
#[derive(Debug, Clone, Copy)]
pub struct Serdes;

impl Serdes {
    /// Bytes as they are ([`Bytes`], no copy).
    pub fn bytes() -> BytesSerde {
        BytesSerde
    }

    /// Bytes as they are, into a `Vec<u8>`.
    pub fn byte_vec() -> ByteVecSerde {
        ByteVecSerde
    }

    /// UTF-8 strings; invalid UTF-8 is an error.
    pub fn string() -> StringSerde {
        StringSerde
    }

    /// `i16`, 2 bytes big-endian (Kafka's `Short`).
    pub fn i16() -> I16Serde {
        I16Serde
    }

    /// `i32`, 4 bytes big-endian (Kafka's `Integer`).
    pub fn i32() -> I32Serde {
        I32Serde
    }

    /// `i64`, 8 bytes big-endian (Kafka's `Long`).
    pub fn i64() -> I64Serde {
        I64Serde
    }

    /// `u16`, 2 bytes big-endian.
    pub fn u16() -> U16Serde {
        U16Serde
    }

    /// `u32`, 4 bytes big-endian.
    pub fn u32() -> U32Serde {
        U32Serde
    }

    /// `u64`, 8 bytes big-endian.
    pub fn u64() -> U64Serde {
        U64Serde
    }

    /// `f32`, IEEE 754 bits, 4 bytes big-endian (Kafka's `Float`).
    pub fn f32() -> F32Serde {
        F32Serde
    }

    /// `f64`, IEEE 754 bits, 8 bytes big-endian (Kafka's `Double`).
    pub fn f64() -> F64Serde {
        F64Serde
    }

    /// `bool`, one byte `0` or `1` (Kafka's `Boolean`).
    pub fn bool() -> BoolSerde {
        BoolSerde
    }

    /// Any `serde` type as JSON.
    pub fn json<T>() -> JsonSerde<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        JsonSerde(PhantomData)
    }

    /// Any `serde` type with `bincode` 1.3 (fixed-width little-endian
    /// integers; trailing bytes are an error).
    pub fn bincode<T>() -> BincodeSerde<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        BincodeSerde(PhantomData)
    }

    /// Keys of time windows of `window_size_ms`: the key's bytes, then the
    /// window start (8 bytes, big-endian). The end is not written; reading
    /// computes it as `start + window_size_ms`, as Kafka's
    /// `TimeWindowedDeserializer` does.
    pub fn time_windowed<S>(inner: S, window_size_ms: i64) -> TimeWindowedSerde<S> {
        TimeWindowedSerde {
            inner,
            window_size_ms,
        }
    }

    /// Keys of session windows: the key's bytes, then the end, then the
    /// start (8 bytes each, big-endian), as Kafka's `SessionWindowedSerde`.
    pub fn session_windowed<S>(inner: S) -> SessionWindowedSerde<S> {
        SessionWindowedSerde { inner }
    }

    /// The built-in serde of `T`, if `T` has one: `String`, the integers,
    /// `f32`, `f64`, `bool`, `Bytes` and `Vec<u8>` (Kafka's default serdes,
    /// chosen by type rather than by configuration). The DSL falls back on
    /// it where no serde is given, so that, for such types, giving one is
    /// optional.
    pub fn default_for<T: 'static>() -> Option<Arc<dyn Serde<T>>> {
        fn typed<T: 'static, S: Serde<U>, U: 'static>(serde: S) -> Option<Arc<dyn Serde<T>>> {
            let erased: Box<dyn Any> = Box::new(Arc::new(serde) as Arc<dyn Serde<U>>);
            erased.downcast::<Arc<dyn Serde<T>>>().ok().map(|b| *b)
        }
        let id = TypeId::of::<T>();
        if id == TypeId::of::<String>() {
            typed::<T, _, String>(StringSerde)
        } else if id == TypeId::of::<i64>() {
            typed::<T, _, i64>(I64Serde)
        } else if id == TypeId::of::<i32>() {
            typed::<T, _, i32>(I32Serde)
        } else if id == TypeId::of::<i16>() {
            typed::<T, _, i16>(I16Serde)
        } else if id == TypeId::of::<u64>() {
            typed::<T, _, u64>(U64Serde)
        } else if id == TypeId::of::<u32>() {
            typed::<T, _, u32>(U32Serde)
        } else if id == TypeId::of::<u16>() {
            typed::<T, _, u16>(U16Serde)
        } else if id == TypeId::of::<f64>() {
            typed::<T, _, f64>(F64Serde)
        } else if id == TypeId::of::<f32>() {
            typed::<T, _, f32>(F32Serde)
        } else if id == TypeId::of::<bool>() {
            typed::<T, _, bool>(BoolSerde)
        } else if id == TypeId::of::<Bytes>() {
            typed::<T, _, Bytes>(BytesSerde)
        } else if id == TypeId::of::<Vec<u8>>() {
            typed::<T, _, Vec<u8>>(ByteVecSerde)
        } else {
            None
        }
    }
}

/// See [`Serdes::bytes`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Bytes> for BytesSerde {
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::Bytes
    }
    fn bytes_of<'v>(&self, value: &'v Bytes) -> Option<&'v [u8]> {
        Some(value)
    }
    fn serialize(&self, _topic: &str, value: &Bytes) -> Result<Bytes, SerdeError> {
        Ok(value.clone())
    }
    fn serialize_owned(&self, _topic: &str, value: Bytes) -> Result<Bytes, SerdeError> {
        Ok(value)
    }
    fn deserialize(&self, _topic: &str, bytes: &Bytes) -> Result<Bytes, SerdeError> {
        Ok(bytes.clone())
    }
}

/// See [`Serdes::byte_vec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ByteVecSerde;

impl Serde<Vec<u8>> for ByteVecSerde {
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::Bytes
    }
    fn bytes_of<'v>(&self, value: &'v Vec<u8>) -> Option<&'v [u8]> {
        Some(value)
    }
    fn serialize(&self, _topic: &str, value: &Vec<u8>) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(value))
    }
    fn serialize_owned(&self, _topic: &str, value: Vec<u8>) -> Result<Bytes, SerdeError> {
        Ok(Bytes::from(value))
    }
    fn deserialize(&self, _topic: &str, bytes: &Bytes) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }
    fn serialize_into(
        &self,
        _topic: &str,
        value: &Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(value);
        Ok(())
    }
    fn deserialize_slice(&self, _topic: &str, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }
}

/// See [`Serdes::string`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::String
    }
    fn bytes_of<'v>(&self, value: &'v String) -> Option<&'v [u8]> {
        Some(value.as_bytes())
    }
    fn serialize(&self, _topic: &str, value: &String) -> Result<Bytes, SerdeError> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }
    fn serialize_owned(&self, _topic: &str, value: String) -> Result<Bytes, SerdeError> {
        Ok(Bytes::from(value))
    }
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<String, SerdeError> {
        self.deserialize_slice(topic, bytes)
    }
    fn serialize_into(
        &self,
        _topic: &str,
        value: &String,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }
    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<String, SerdeError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| SerdeError::deserialize::<String>(topic, format!("invalid UTF-8: {e}")))
    }
}

macro_rules! fixed_width_serde {
    ($(#[$doc:meta] $name:ident, $ty:ty, $format:ident;)*) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$ty> for $name {
            fn serialize(&self, _topic: &str, value: &$ty) -> Result<Bytes, SerdeError> {
                Ok(Bytes::copy_from_slice(&value.to_be_bytes()))
            }
            fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<$ty, SerdeError> {
                self.deserialize_slice(topic, bytes)
            }
            fn serialize_into(&self, _topic: &str, value: &$ty, out: &mut Vec<u8>) -> Result<(), SerdeError> {
                out.extend_from_slice(&value.to_be_bytes());
                Ok(())
            }
            fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<$ty, SerdeError> {
                const WIDTH: usize = std::mem::size_of::<$ty>();
                let array: [u8; WIDTH] = bytes.try_into().map_err(|_| {
                    SerdeError::deserialize::<$ty>(
                        topic,
                        format!("expected {WIDTH} bytes, got {}", bytes.len()),
                    )
                })?;
                Ok(<$ty>::from_be_bytes(array))
            }
            fn serde_format(&self) -> SerdeFormat {
                SerdeFormat::$format
            }
        }
    )*};
}

fixed_width_serde! {
    /// See [`Serdes::i16`].
    I16Serde, i16, I16;
    /// See [`Serdes::i32`].
    I32Serde, i32, I32;
    /// See [`Serdes::i64`].
    I64Serde, i64, I64;
    /// See [`Serdes::u16`].
    U16Serde, u16, U16;
    /// See [`Serdes::u32`].
    U32Serde, u32, U32;
    /// See [`Serdes::u64`].
    U64Serde, u64, U64;
    /// See [`Serdes::f32`].
    F32Serde, f32, F32;
    /// See [`Serdes::f64`].
    F64Serde, f64, F64;
}

/// See [`Serdes::bool`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BoolSerde;

impl Serde<bool> for BoolSerde {
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::Bool
    }
    fn serialize(&self, _topic: &str, value: &bool) -> Result<Bytes, SerdeError> {
        Ok(Bytes::from_static(if *value { &[1] } else { &[0] }))
    }
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<bool, SerdeError> {
        match bytes.as_ref() {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(SerdeError::deserialize::<bool>(
                topic,
                format!("expected byte 0 or 1, got {b}"),
            )),
            other => Err(SerdeError::deserialize::<bool>(
                topic,
                format!("expected 1 byte, got {}", other.len()),
            )),
        }
    }
}

/// See [`Serdes::json`].
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::Json
    }
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes, SerdeError> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| SerdeError::serialize::<T>(topic, format!("JSON: {e}")))
    }
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<T, SerdeError> {
        self.deserialize_slice(topic, bytes)
    }
    fn serialize_into(&self, topic: &str, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        serde_json::to_writer(out, value)
            .map_err(|e| SerdeError::serialize::<T>(topic, format!("JSON: {e}")))
    }
    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        serde_json::from_slice(bytes)
            .map_err(|e| SerdeError::deserialize::<T>(topic, format!("JSON: {e}")))
    }
}

/// See [`Serdes::bincode`].
pub struct BincodeSerde<T>(PhantomData<fn() -> T>);

impl<T> fmt::Debug for BincodeSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BincodeSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T> Clone for BincodeSerde<T> {
    fn clone(&self) -> Self {
        Self(PhantomData)
    }
}

fn bincode_options() -> impl bincode::Options {
    use bincode::Options;
    // The same encoding as `bincode::serialize` (fixed-width little-endian
    // integers), but reading rejects trailing bytes.
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
}

impl<T> Serde<T> for BincodeSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes, SerdeError> {
        use bincode::Options;
        bincode_options()
            .serialize(value)
            .map(Bytes::from)
            .map_err(|e| SerdeError::serialize::<T>(topic, format!("bincode: {e}")))
    }
    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<T, SerdeError> {
        self.deserialize_slice(topic, bytes)
    }
    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<T, SerdeError> {
        use bincode::Options;
        // Reading from a slice bounds every allocation by the input length.
        bincode_options()
            .with_limit(bytes.len() as u64)
            .deserialize(bytes)
            .map_err(|e| SerdeError::deserialize::<T>(topic, format!("bincode: {e}")))
    }
}

/// A window: `start` and `end` in epoch milliseconds. Time windows are
/// half-open `[start, end)`, session windows closed `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// The start, epoch milliseconds.
    pub start: i64,
    /// The end, epoch milliseconds.
    pub end: i64,
}

impl Window {
    /// A window from `start` to `end`.
    pub fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }
}

/// A key and the window it belongs to, as Kafka's `Windowed<K>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// The window.
    pub window: Window,
}

impl<K> Windowed<K> {
    /// `key` in `window`.
    pub fn new(key: K, window: Window) -> Self {
        Self { key, window }
    }
}

impl<K: fmt::Display> fmt::Display for Windowed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}@{}/{}]",
            self.key, self.window.start, self.window.end
        )
    }
}

const TIMESTAMP_SIZE: usize = 8;

fn read_i64_be(bytes: &[u8]) -> i64 {
    let mut array = [0u8; TIMESTAMP_SIZE];
    array.copy_from_slice(&bytes[..TIMESTAMP_SIZE]);
    i64::from_be_bytes(array)
}

/// See [`Serdes::time_windowed`].
#[derive(Debug, Clone)]
pub struct TimeWindowedSerde<S> {
    inner: S,
    window_size_ms: i64,
}

impl<K, S: Serde<K>> Serde<Windowed<K>> for TimeWindowedSerde<S> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Bytes, SerdeError> {
        let key = self.inner.serialize(topic, &value.key)?;
        let mut buf = BytesMut::with_capacity(key.len() + TIMESTAMP_SIZE);
        buf.put_slice(&key);
        buf.put_i64(value.window.start);
        Ok(buf.freeze())
    }

    fn serialize_into(
        &self,
        topic: &str,
        value: &Windowed<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        self.inner.serialize_into(topic, &value.key, out)?;
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(())
    }

    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let (key, start) = self.split::<K>(topic, bytes)?;
        Ok(Windowed::new(
            self.inner.deserialize_slice(topic, key)?,
            self.window_at(start),
        ))
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<Windowed<K>, SerdeError> {
        let (key, start) = self.split::<K>(topic, bytes)?;
        let key = self.inner.deserialize(topic, &bytes.slice(..key.len()))?;
        Ok(Windowed::new(key, self.window_at(start)))
    }
}

impl<S> TimeWindowedSerde<S> {
    /// The window starting at `start` (its end saturates).
    fn window_at(&self, start: i64) -> Window {
        Window::new(start, start.saturating_add(self.window_size_ms))
    }

    /// The record key's bytes and the window start of a serialized
    /// time-windowed key (checked: long enough, a start not negative).
    fn split<'b, K>(&self, topic: &str, bytes: &'b [u8]) -> Result<(&'b [u8], i64), SerdeError> {
        let Some(key_len) = bytes.len().checked_sub(TIMESTAMP_SIZE) else {
            return Err(SerdeError::deserialize::<Windowed<K>>(
                topic,
                format!(
                    "a time-windowed key needs at least {TIMESTAMP_SIZE} bytes, got {}",
                    bytes.len()
                ),
            ));
        };
        let (key, start) = bytes.split_at(key_len);
        let start = read_i64_be(start);
        if start < 0 {
            return Err(SerdeError::deserialize::<Windowed<K>>(
                topic,
                format!("window start {start} is negative"),
            ));
        }
        Ok((key, start))
    }
}

/// See [`Serdes::session_windowed`].
#[derive(Debug, Clone)]
pub struct SessionWindowedSerde<S> {
    inner: S,
}

impl<K, S: Serde<K>> Serde<Windowed<K>> for SessionWindowedSerde<S> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Bytes, SerdeError> {
        let key = self.inner.serialize(topic, &value.key)?;
        let mut buf = BytesMut::with_capacity(key.len() + 2 * TIMESTAMP_SIZE);
        buf.put_slice(&key);
        buf.put_i64(value.window.end);
        buf.put_i64(value.window.start);
        Ok(buf.freeze())
    }

    fn serialize_into(
        &self,
        topic: &str,
        value: &Windowed<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        self.inner.serialize_into(topic, &value.key, out)?;
        out.extend_from_slice(&value.window.end.to_be_bytes());
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(())
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<Windowed<K>, SerdeError> {
        let (key, window) = split_session_key::<K>(topic, bytes)?;
        let key = self.inner.deserialize(topic, &bytes.slice(..key.len()))?;
        Ok(Windowed::new(key, window))
    }

    fn deserialize_slice(&self, topic: &str, bytes: &[u8]) -> Result<Windowed<K>, SerdeError> {
        let (key, window) = split_session_key::<K>(topic, bytes)?;
        Ok(Windowed::new(
            self.inner.deserialize_slice(topic, key)?,
            window,
        ))
    }
}

/// The record key's bytes and the session of a serialized session-windowed
/// key (checked: long enough, a valid session).
fn split_session_key<'b, K>(
    topic: &str,
    bytes: &'b [u8],
) -> Result<(&'b [u8], Window), SerdeError> {
    let Some(key_len) = bytes.len().checked_sub(2 * TIMESTAMP_SIZE) else {
        return Err(SerdeError::deserialize::<Windowed<K>>(
            topic,
            format!(
                "a session-windowed key needs at least {} bytes, got {}",
                2 * TIMESTAMP_SIZE,
                bytes.len()
            ),
        ));
    };
    let (key, suffix) = bytes.split_at(key_len);
    let end = read_i64_be(suffix);
    let start = read_i64_be(&suffix[TIMESTAMP_SIZE..]);
    if start < 0 || end < start {
        return Err(SerdeError::deserialize::<Windowed<K>>(
            topic,
            format!("invalid session window [{start}, {end}]"),
        ));
    }
    Ok((key, Window::new(start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_serde_is_not_wrapped_again() {
        let dsl: Arc<dyn Serde<String>> = Arc::new(Serdes::string());
        let node = shared(dsl.clone());
        assert!(Arc::ptr_eq(&dsl, &node), "the node calls the same serde");
        let plain = shared::<String, _>(Serdes::string());
        let mut out = Vec::new();
        plain
            .serialize_into("t", &"x".to_owned(), &mut out)
            .unwrap();
        assert_eq!(out, b"x");
    }
    use proptest::prelude::*;

    const T: &str = "t";

    fn round_trip<V, S>(serde: &S, value: &V) -> V
    where
        S: Serde<V>,
    {
        let bytes = serde.serialize(T, value).unwrap();
        // The buffer and slice forms agree with the `Bytes` ones.
        let mut appended = b"prefix".to_vec();
        serde.serialize_into(T, value, &mut appended).unwrap();
        assert_eq!(&appended[..6], b"prefix");
        assert_eq!(&appended[6..], &bytes[..]);
        let from_slice = serde.deserialize_slice(T, &bytes).unwrap();
        assert_eq!(serde.serialize(T, &from_slice).unwrap(), bytes);
        // A value that holds its bytes gives the serialized ones.
        if let Some(own) = serde.bytes_of(value) {
            assert_eq!(own, &bytes[..]);
        }
        serde.deserialize(T, &bytes).unwrap()
    }

    #[test]
    fn strings_and_byte_buffers_give_their_own_bytes() {
        let text = "héllo".to_owned();
        assert_eq!(Serdes::string().bytes_of(&text), Some(text.as_bytes()));
        let shared: Arc<dyn Serde<String>> = Arc::new(Serdes::string());
        assert_eq!(shared.bytes_of(&text), Some(text.as_bytes()));
        let bytes = Bytes::from_static(b"raw");
        assert_eq!(Serdes::bytes().bytes_of(&bytes), Some(&b"raw"[..]));
        assert_eq!(Serdes::byte_vec().bytes_of(&b"v".to_vec()), Some(&b"v"[..]));
        // Other serdes write bytes the value does not hold.
        assert_eq!(Serdes::i64().bytes_of(&7), None);
    }

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u64,
        customer: String,
        lines: Vec<(String, i32)>,
        note: Option<String>,
    }

    fn order() -> impl Strategy<Value = Order> {
        (
            any::<u64>(),
            ".*",
            prop::collection::vec((".{0,8}", any::<i32>()), 0..4),
            prop::option::of(".{0,8}"),
        )
            .prop_map(|(id, customer, lines, note)| Order {
                id,
                customer,
                lines,
                note,
            })
    }

    proptest! {
        #[test]
        fn bytes_round_trip(v in prop::collection::vec(any::<u8>(), 0..64)) {
            let b = Bytes::from(v.clone());
            prop_assert_eq!(round_trip(&Serdes::bytes(), &b), b);
            prop_assert_eq!(round_trip(&Serdes::byte_vec(), &v), v);
        }

        #[test]
        fn string_round_trip(s in ".*") {
            prop_assert_eq!(round_trip(&Serdes::string(), &s), s);
        }

        #[test]
        fn integers_round_trip_big_endian(
            a in any::<i16>(), b in any::<i32>(), c in any::<i64>(),
            d in any::<u16>(), e in any::<u32>(), f in any::<u64>(),
        ) {
            prop_assert_eq!(round_trip(&Serdes::i16(), &a), a);
            prop_assert_eq!(round_trip(&Serdes::i32(), &b), b);
            prop_assert_eq!(round_trip(&Serdes::i64(), &c), c);
            prop_assert_eq!(round_trip(&Serdes::u16(), &d), d);
            prop_assert_eq!(round_trip(&Serdes::u32(), &e), e);
            prop_assert_eq!(round_trip(&Serdes::u64(), &f), f);
            prop_assert_eq!(Serdes::i32().serialize(T, &b).unwrap().to_vec(), b.to_be_bytes().to_vec());
            prop_assert_eq!(Serdes::i64().serialize(T, &c).unwrap().to_vec(), c.to_be_bytes().to_vec());
        }

        #[test]
        fn floats_and_bools_round_trip(x in any::<f32>(), y in any::<f64>(), z in any::<bool>()) {
            prop_assert_eq!(round_trip(&Serdes::f32(), &x).to_bits(), x.to_bits());
            prop_assert_eq!(round_trip(&Serdes::f64(), &y).to_bits(), y.to_bits());
            prop_assert_eq!(round_trip(&Serdes::bool(), &z), z);
        }

        #[test]
        fn json_round_trip(o in order()) {
            prop_assert_eq!(round_trip(&Serdes::json::<Order>(), &o), o);
        }

        #[test]
        fn bincode_round_trip(o in order()) {
            let serde = Serdes::bincode::<Order>();
            let bytes = serde.serialize(T, &o).unwrap();
            // The same bytes as bincode's own default `serialize`.
            prop_assert_eq!(bytes.to_vec(), bincode::serialize(&o).unwrap());
            prop_assert_eq!(serde.deserialize(T, &bytes).unwrap(), o);
        }

        #[test]
        fn windowed_round_trip(key in ".*", start in 0i64..i64::MAX / 2, len in 0i64..1_000_000) {
            let time = Serdes::time_windowed(Serdes::string(), len);
            let w = Windowed::new(key.clone(), Window::new(start, start + len));
            let bytes = time.serialize(T, &w).unwrap();
            prop_assert_eq!(bytes.len(), key.len() + 8);
            prop_assert_eq!(&bytes[key.len()..], &start.to_be_bytes());
            prop_assert_eq!(time.deserialize(T, &bytes).unwrap(), w.clone());
            // The buffer and slice forms agree with the `Bytes` ones.
            let mut appended = b"p".to_vec();
            time.serialize_into(T, &w, &mut appended).unwrap();
            prop_assert_eq!(&appended[1..], &bytes[..]);
            prop_assert_eq!(time.deserialize_slice(T, &bytes).unwrap(), w.clone());

            let session = Serdes::session_windowed(Serdes::string());
            let bytes = session.serialize(T, &w).unwrap();
            prop_assert_eq!(bytes.len(), key.len() + 16);
            prop_assert_eq!(&bytes[key.len()..key.len() + 8], &(start + len).to_be_bytes());
            prop_assert_eq!(&bytes[key.len() + 8..], &start.to_be_bytes());
            prop_assert_eq!(session.deserialize(T, &bytes).unwrap(), w.clone());
            let mut appended = b"p".to_vec();
            session.serialize_into(T, &w, &mut appended).unwrap();
            prop_assert_eq!(&appended[1..], &bytes[..]);
            prop_assert_eq!(session.deserialize_slice(T, &bytes).unwrap(), w);
        }

        #[test]
        fn garbage_is_an_error_never_a_panic(v in prop::collection::vec(any::<u8>(), 0..48)) {
            let b = Bytes::from(v);
            let _ = Serdes::string().deserialize(T, &b);
            let _ = Serdes::i16().deserialize(T, &b);
            let _ = Serdes::i32().deserialize(T, &b);
            let _ = Serdes::i64().deserialize(T, &b);
            let _ = Serdes::u64().deserialize(T, &b);
            let _ = Serdes::f64().deserialize(T, &b);
            let _ = Serdes::bool().deserialize(T, &b);
            let _ = Serdes::json::<Order>().deserialize(T, &b);
            let _ = Serdes::bincode::<Order>().deserialize(T, &b);
            let _ = Serdes::bincode::<Vec<String>>().deserialize(T, &b);
            let _ = Serdes::time_windowed(Serdes::i64(), 10).deserialize(T, &b);
            let _ = Serdes::session_windowed(Serdes::string()).deserialize(T, &b);
            let _ = Serdes::time_windowed(Serdes::string(), 10).deserialize_slice(T, &b);
            let _ = Serdes::session_windowed(Serdes::string()).deserialize_slice(T, &b);
            if b.len() != 4 {
                prop_assert!(Serdes::i32().deserialize(T, &b).is_err());
            }
            if b.len() != 8 {
                prop_assert!(Serdes::i64().deserialize(T, &b).is_err());
            }
        }
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_topic() {
        let err = Serdes::string()
            .deserialize("lines", &Bytes::from_static(&[0x66, 0xff, 0x6f]))
            .unwrap_err();
        assert_eq!(err.topic, "lines");
        assert_eq!(err.operation, SerdeOperation::Deserialize);
        assert!(err.to_string().contains("invalid UTF-8"), "{err}");
        assert!(err.to_string().contains("topic 'lines'"), "{err}");
    }

    #[test]
    fn wrong_width_is_an_error() {
        let err = Serdes::i64()
            .deserialize("counts", &Bytes::from_static(&[0, 0, 1]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "deserializing i64 for topic 'counts' failed: expected 8 bytes, got 3"
        );
        assert!(Serdes::bool()
            .deserialize(T, &Bytes::from_static(&[2]))
            .is_err());
    }

    #[test]
    fn kafka_layouts() {
        assert_eq!(
            Serdes::i32().serialize(T, &1).unwrap().as_ref(),
            &[0, 0, 0, 1]
        );
        assert_eq!(
            Serdes::i64().serialize(T, &-2).unwrap().as_ref(),
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]
        );
        let w = Windowed::new("a".to_owned(), Window::new(1, 11));
        assert_eq!(
            Serdes::time_windowed(Serdes::string(), 10)
                .serialize(T, &w)
                .unwrap()
                .as_ref(),
            &[b'a', 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            Serdes::session_windowed(Serdes::string())
                .serialize(T, &w)
                .unwrap()
                .as_ref(),
            &[b'a', 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn windowed_garbage_is_rejected() {
        let time = Serdes::time_windowed(Serdes::string(), 10);
        assert!(time.deserialize(T, &Bytes::from_static(b"short")).is_err());
        assert!(time.deserialize_slice(T, b"short").is_err());
        // A negative start.
        let mut neg = b"k".to_vec();
        neg.extend_from_slice(&(-5i64).to_be_bytes());
        assert!(time.deserialize_slice(T, &neg).is_err());
        assert!(time.deserialize(T, &Bytes::from(neg)).is_err());
        // A session ending before it starts.
        let mut bad = b"k".to_vec();
        bad.extend_from_slice(&1i64.to_be_bytes());
        bad.extend_from_slice(&5i64.to_be_bytes());
        assert!(Serdes::session_windowed(Serdes::string())
            .deserialize_slice(T, &bad)
            .is_err());
        assert!(Serdes::session_windowed(Serdes::string())
            .deserialize(T, &Bytes::from(bad))
            .is_err());
        // A time window whose end would overflow saturates.
        let mut late = b"k".to_vec();
        late.extend_from_slice(&(i64::MAX - 1).to_be_bytes());
        let w = time.deserialize(T, &Bytes::from(late)).unwrap();
        assert_eq!(w.window.end, i64::MAX);
    }

    #[test]
    fn bincode_rejects_trailing_bytes_and_huge_lengths() {
        let serde = Serdes::bincode::<Vec<u8>>();
        let mut bytes = serde.serialize(T, &vec![1, 2, 3]).unwrap().to_vec();
        bytes.push(0);
        assert!(serde.deserialize(T, &Bytes::from(bytes)).is_err());
        // A length prefix of 2^62 with no data behind it.
        let huge = Bytes::from((1u64 << 62).to_le_bytes().to_vec());
        assert!(serde.deserialize(T, &huge).is_err());
        assert!(Serdes::bincode::<String>().deserialize(T, &huge).is_err());
    }
}

#[cfg(test)]
mod default_serde_tests {
    use super::*;

    #[test]
    fn built_in_types_have_a_default_serde_and_others_none() {
        let string = Serdes::default_for::<String>().unwrap();
        let bytes = string.serialize("t", &"héllo".to_owned()).unwrap();
        assert_eq!(string.deserialize("t", &bytes).unwrap(), "héllo");
        let long = Serdes::default_for::<i64>().unwrap();
        assert_eq!(
            long.serialize("t", &7).unwrap().as_ref(),
            7i64.to_be_bytes()
        );
        assert!(Serdes::default_for::<u8>().is_none());
        assert!(Serdes::default_for::<(String, i64)>().is_none());
    }
}
