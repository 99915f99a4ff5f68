//! Request and reply (Faust's `agent.ask`): a record with a reply address
//! goes to an agent's topic, the agent answers it with
//! [`Event::reply`], and the asker waits for the answer on the app's
//! reply topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, IsolationLevel, TopicPartition,
};
use bytes::Bytes;
use futures::channel::oneshot;
use streams_core::{Headers, Serde};

use crate::current::request;
use crate::error::{AgentError, Result};
use crate::event::Event;

/// The header naming the topic a reply goes to.
pub const REPLY_TO_HEADER: &str = "reply-to";
/// The header holding the request's correlation id, the reply's key.
pub const CORRELATION_ID_HEADER: &str = "correlation-id";

/// The replies an app's askers wait for, by correlation id.
#[derive(Default)]
pub(crate) struct Replies {
    waiting: Mutex<HashMap<String, oneshot::Sender<Option<Bytes>>>>,
}

impl Replies {
    /// Registers a request; its reply comes through the receiver.
    pub(crate) fn wait_for(&self, correlation: &str) -> oneshot::Receiver<Option<Bytes>> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(correlation.to_owned(), tx);
        rx
    }

    /// Forgets a request (answered, or given up on).
    pub(crate) fn forget(&self, correlation: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(correlation);
    }

    fn answer(&self, correlation: &str, value: Option<Bytes>) {
        let waiter = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(correlation);
        if let Some(tx) = waiter {
            let _ = tx.send(value);
        }
    }
}

/// Reads the reply topic from its end (committed replies only) and hands
/// each reply to its asker, until aborted.
pub(crate) async fn read_replies(
    broker: Broker,
    topic: String,
    replies: Arc<Replies>,
) -> Result<tokio::task::JoinHandle<()>> {
    let mut consumer = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Latest,
            isolation_level: IsolationLevel::ReadCommitted,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(&topic).await?;
    for partition in 0..broker.partition_count(&topic).await? {
        consumer
            .seek_to_end(&TopicPartition::new(topic.clone(), partition))
            .await?;
    }
    Ok(tokio::spawn(async move {
        loop {
            match consumer.poll_up_to(1_000, Duration::from_millis(200)).await {
                Ok(records) => {
                    for record in records {
                        let Some(key) = record.key else { continue };
                        match std::str::from_utf8(&key) {
                            Ok(correlation) => replies.answer(correlation, record.value),
                            Err(_) => tracing::warn!(
                                topic = %record.topic,
                                offset = record.offset,
                                "a reply whose correlation id is not UTF-8; passed over"
                            ),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "reading replies failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }))
}

/// A new correlation id: unique within the process and across restarts.
pub(crate) fn correlation_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{now:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl<K, V> Event<K, V> {
    /// The topic and correlation id of the request this event is, if it
    /// is one ([`crate::Agent::ask`]).
    pub fn reply_address(&self) -> Option<(String, String)> {
        let text = |name: &str| {
            self.headers
                .last(name)
                .and_then(|h| h.value.as_ref())
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        };
        Some((text(REPLY_TO_HEADER)?, text(CORRELATION_ID_HEADER)?))
    }

    /// Answers the request this event is (Faust's agent that `yield`s a
    /// value for `agent.ask`), with `value` written by `serde`: it goes out
    /// with the task's other output (in its transaction under
    /// `exactly_once_v2`). An event that is no request is not answered.
    ///
    /// # Errors
    ///
    /// A serde error; [`AgentError::OutsideAgent`] outside an agent's body.
    pub async fn reply<R: 'static>(&self, value: &R, serde: &dyn Serde<R>) -> Result<bool> {
        let Some((topic, correlation)) = self.reply_address() else {
            return Ok(false);
        };
        let bytes = serde
            .serialize(&topic, value)
            .map_err(streams_core::StreamsError::from)?;
        request(
            || "reply".to_owned(),
            move |_, ctx| {
                let timestamp = ctx
                    .record_metadata()
                    .map_or_else(|| ctx.wall_clock_time(), |m| m.timestamp);
                ctx.send_bytes(
                    &topic,
                    Some(Bytes::from(correlation.into_bytes())),
                    Some(bytes),
                    timestamp,
                    Headers::new(),
                );
                Ok(())
            },
        )
        .await?;
        Ok(true)
    }
}

/// The error of an ask the app could not carry.
pub(crate) fn not_running(agent: &str) -> AgentError {
    AgentError::OutsideAgent {
        what: format!("asking agent '{agent}' before the app has started"),
    }
}
