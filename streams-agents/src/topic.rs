//! [`Topic`]: a typed topic of an app, and sending to it from an agent.

use std::fmt;
use std::sync::{Arc, OnceLock};

use broker_embedded::{Broker, Producer, ProducerRecord};

use streams_core::{Headers, Serde, StreamsError};

use crate::current::{polling, submit};
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
    /// The app's broker, once it has one: sends from outside an agent
    /// (a timer, a loader) go through one of its producers.
    pub(crate) broker: Arc<OnceLock<Broker>>,
}

impl<K, V> Clone for Topic<K, V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            partitions: self.partitions,
            broker: self.broker.clone(),
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

/// A record for a producer of the embedded broker; no value is a
/// tombstone.
pub(crate) fn producer_record(
    topic: &Arc<str>,
    key: Option<bytes::Bytes>,
    value: Option<bytes::Bytes>,
) -> ProducerRecord {
    let mut record = match value {
        Some(value) => ProducerRecord::new(topic.clone(), value),
        None => ProducerRecord::new(topic.clone(), bytes::Bytes::new()).tombstone(),
    };
    if let Some(key) = key {
        record = record.key(key);
    }
    record
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
    /// Sends a record to this topic (Faust's `topic.send(key=..,
    /// value=..)`), partitioned by its key (`None`: no key).
    ///
    /// From an agent's body it goes out with the task's other output when
    /// the agent asks for its next event, with the timestamp of the event
    /// being processed; under `exactly_once_v2` it is part of the task's
    /// transaction. From anywhere else (a timer, a loader) it goes through
    /// a producer of the app's broker, at least once, once the app has
    /// started.
    ///
    /// # Errors
    ///
    /// [`crate::AgentError::OutsideAgent`] outside an agent before the app
    /// has a broker; a serde or broker error.
    pub async fn send(&self, key: impl Into<Option<K>>, value: V) -> Result<()> {
        self.send_record(key.into(), Some(value)).await
    }

    /// [`Topic::send`] of a record that may have no value (a tombstone).
    pub async fn send_record(&self, key: Option<K>, value: Option<V>) -> Result<()> {
        let (key, value) = self.encode(key.as_ref(), value.as_ref())?;
        if !polling() {
            let Some(broker) = self.broker.get() else {
                return Err(crate::AgentError::OutsideAgent {
                    what: format!(
                        "sending to topic '{}' before the app has started",
                        self.name
                    ),
                });
            };
            Producer::new(broker)
                .send(producer_record(&self.name, key, value))
                .await?;
            return Ok(());
        }
        let topic = self.name.clone();
        // No answer to wait for: the driver sends it with the task's output
        // before the agent's next event.
        submit(
            || format!("sending to topic '{}'", self.name),
            move |ctx| {
                let timestamp = ctx
                    .record_metadata()
                    .map_or_else(|| ctx.wall_clock_time(), |m| m.timestamp);
                ctx.send_bytes(&topic, key, value, timestamp, Headers::default());
            },
        )
    }
}
