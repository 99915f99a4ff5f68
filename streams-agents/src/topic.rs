//! [`Topic`]: a typed topic of an app, and sending to it from an agent.

use std::fmt;
use std::sync::Arc;

use streams_core::{Headers, Serde, StreamsError};

use crate::current::request;
use crate::error::Result;

/// A topic of an [`crate::App`], with the serdes of its keys and values
/// (Faust's `app.topic(name, key_type=.., value_type=..)`), made by
/// [`crate::App::topic`]. Agents read topics; an agent's body sends to them
/// with [`Topic::send`].
pub struct Topic<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) partitions: u32,
}

impl<K, V> Clone for Topic<K, V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            partitions: self.partitions,
        }
    }
}

impl<K, V> fmt::Debug for Topic<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> Topic<K, V> {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many partitions the app creates it with (if it does not exist).
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The bytes of `key` and `value` as this topic holds them.
    pub(crate) fn encode(
        &self,
        key: Option<&K>,
        value: Option<&V>,
    ) -> std::result::Result<(Option<bytes::Bytes>, Option<bytes::Bytes>), StreamsError> {
        let key = key
            .map(|k| self.key_serde.serialize(&self.name, k))
            .transpose()?;
        let value = value
            .map(|v| self.value_serde.serialize(&self.name, v))
            .transpose()?;
        Ok((key, value))
    }
}

impl<K, V> Topic<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
{
    /// Sends a record to this topic from an agent's body (Faust's
    /// `topic.send(key=.., value=..)`): it goes out with the task's other
    /// output when the agent asks for its next event, partitioned by its
    /// key, with the timestamp of the event being processed; under
    /// `exactly_once_v2` it is part of the task's transaction. `key` is a
    /// key or `None`.
    ///
    /// # Errors
    ///
    /// [`crate::AgentError::OutsideAgent`] when called outside an agent's
    /// own body; a serde error.
    pub async fn send(&self, key: impl Into<Option<K>>, value: V) -> Result<()> {
        self.send_record(key.into(), Some(value)).await
    }

    /// [`Topic::send`] of a record that may have no value (a tombstone).
    pub async fn send_record(&self, key: Option<K>, value: Option<V>) -> Result<()> {
        let (key, value) = self.encode(key.as_ref(), value.as_ref())?;
        let topic = self.name.clone();
        let what = || format!("sending to topic '{}'", self.name);
        request(what, move |_, ctx| {
            let timestamp = ctx
                .record_metadata()
                .map_or_else(|| ctx.wall_clock_time(), |m| m.timestamp);
            ctx.send_bytes(&topic, key, value, timestamp, Headers::default());
            Ok(())
        })
        .await
    }
}
