//! [`Agent`]: a handle on an agent of an app, to send to it and ask it.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use broker_embedded::Producer;
use streams_core::Serde;

use crate::ask::Replies;
use crate::error::{AgentError, Result};
use crate::topic::{producer_record, Topic};

/// A handle on an agent of an [`crate::App`]: its name and topic, and sending to
/// it (Faust's `agent.send`).
pub struct Agent<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) topic: Topic<K, V>,
    pub(crate) description: Arc<Mutex<String>>,
    /// The app's replies to asks, once it runs.
    pub(crate) replies: Arc<OnceLock<Arc<Replies>>>,
    /// The app's reply topic.
    pub(crate) reply_topic: Arc<str>,
}

impl<K, V> fmt::Debug for Agent<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .finish()
    }
}

impl<K, V> Agent<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
{
    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic it reads.
    pub fn topic(&self) -> &Topic<K, V> {
        &self.topic
    }

    /// Sets the description `myapp agents` prints (Faust prints the
    /// agent's docstring).
    pub fn describe(self, description: impl Into<String>) -> Self {
        *self
            .description
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = description.into();
        self
    }

    /// Sends a record to the agent's topic from another agent's body
    /// (Faust's `agent.send(key=.., value=..)`); see [`Topic::send`].
    pub async fn send(&self, key: impl Into<Option<K>>, value: V) -> Result<()> {
        self.topic.send(key, value).await
    }

    /// Sends `value` to the agent as a request and waits up to `timeout`
    /// for its answer (Faust's `agent.ask`): the record carries the app's
    /// reply topic and a correlation id in its headers
    /// ([`crate::ask::REPLY_TO_HEADER`], [`crate::ask::CORRELATION_ID_HEADER`]),
    /// the agent answers with [`crate::Event::reply`], and the answer is
    /// read with `reply_serde`. Ask from outside the agents (a timer, a
    /// handler, `main`): an agent that asked would hold its partitions
    /// while it waits.
    ///
    /// # Errors
    ///
    /// [`AgentError::AskTimedOut`] when no answer came in time;
    /// [`AgentError::Usage`] from an agent's body;
    /// [`AgentError::OutsideAgent`] before the app has started; a serde or
    /// broker error.
    pub async fn ask<R: 'static>(
        &self,
        key: impl Into<Option<K>>,
        value: V,
        reply_serde: &dyn Serde<R>,
        timeout: Duration,
    ) -> Result<R> {
        if crate::current::polling() {
            return Err(AgentError::Usage(format!(
                "agent '{}' asked from an agent's body: the asking agent would hold its partitions while it waits; ask from outside the agents",
                self.name
            )));
        }
        let (Some(replies), Some(broker)) = (self.replies.get(), self.topic.broker.get()) else {
            return Err(crate::ask::not_running(&self.name));
        };
        let key = key.into();
        let (key, value) = self.topic.encode(key.as_ref(), Some(&value))?;
        let correlation = crate::ask::correlation_id();
        let answer = replies.wait_for(&correlation);
        let record = producer_record(&self.topic.name, key, value)
            .header(
                crate::ask::REPLY_TO_HEADER,
                self.reply_topic.as_bytes().to_vec(),
            )
            .header(
                crate::ask::CORRELATION_ID_HEADER,
                correlation.clone().into_bytes(),
            );
        if let Err(e) = Producer::new(broker).send(record).await {
            replies.forget(&correlation);
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Some(bytes))) => Ok(reply_serde
                .deserialize(&self.reply_topic, &bytes)
                .map_err(streams_core::StreamsError::from)?),
            Ok(Ok(None)) => Err(AgentError::Usage(format!(
                "agent '{}' answered with no value",
                self.name
            ))),
            Ok(Err(_)) => Err(AgentError::TaskClosed {
                what: format!("asking agent '{}'", self.name),
            }),
            Err(_) => {
                replies.forget(&correlation);
                Err(AgentError::AskTimedOut {
                    agent: self.name.to_string(),
                    timeout,
                })
            }
        }
    }
}
