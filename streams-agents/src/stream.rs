//! [`AgentStream`]: the events of an agent's partition, as a
//! `futures::Stream`.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt as _, Stream, StreamExt as _};
use streams_core::{Serde, Serdes, Topology};
use tokio::runtime::Handle;

use crate::driver::{AgentDriver, StartFn};
use crate::error::{AgentError, AgentResult, Result};
use crate::event::Event;
use crate::mailbox::Mailbox;
use crate::topic::Topic;

/// Makes an agent's future from its stream.
pub(crate) type AgentFn<K, V> =
    Arc<dyn Fn(AgentStream<K, V>) -> BoxFuture<'static, AgentResult> + Send + Sync>;

/// What an agent instance runs for.
enum Phase<K, V> {
    /// The agent's own topic: its events come through this mailbox.
    Source(Arc<Mailbox<K, V>>),
    /// The repartition topic of the agent's `group_by(.., name)`: the
    /// events of the agent's own topic do not come here; `group_by` yields
    /// the repartitioned events, from this mailbox (of the new key type).
    Repartitioned {
        name: Arc<str>,
        mailbox: Arc<dyn Any + Send + Sync>,
    },
    /// The app learning the agent's `group_by` before it runs: every
    /// stream is empty.
    Probe(Arc<Probe<K, V>>),
}

/// What an agent's streams know of their app.
pub(crate) struct StreamSetup<V> {
    /// The application id: repartition topics are
    /// `<application.id>-<name>-repartition`.
    pub(crate) application_id: Arc<str>,
    /// The serde of the values of the agent's topic.
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    /// The partition count of the agent's topic, and so of its repartition
    /// topics.
    pub(crate) partitions: u32,
}

/// The repartition topic of `group_by(.., name)` in app `application_id`.
pub(crate) fn repartition_topic(application_id: &str, name: &str) -> String {
    format!("{application_id}-{name}-repartition")
}

/// The events of one partition of an agent's topic, in offset order, as a
/// [`futures::Stream`]: every `StreamExt` combinator works on it
/// (`filter`, `map`, `enumerate`, `chunks`, ...). An event is done with
/// (its offset may be committed) when the agent asks for the next one.
///
/// The stream never ends while the app runs; it is dropped with the agent
/// when its partition is revoked or the app stops.
pub struct AgentStream<K, V> {
    phase: Phase<K, V>,
    setup: Arc<StreamSetup<V>>,
}

impl<K, V> fmt::Debug for AgentStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentStream").finish_non_exhaustive()
    }
}

impl<K, V> AgentStream<K, V> {
    /// The stream of the agent's own topic.
    pub(crate) fn source(mailbox: Arc<Mailbox<K, V>>, setup: Arc<StreamSetup<V>>) -> Self {
        Self {
            phase: Phase::Source(mailbox),
            setup,
        }
    }

    /// The stream of an agent instance that runs for the repartition topic
    /// of its `group_by(.., name)`.
    pub(crate) fn repartitioned(
        name: Arc<str>,
        mailbox: Arc<dyn Any + Send + Sync>,
        setup: Arc<StreamSetup<V>>,
    ) -> Self {
        Self {
            phase: Phase::Repartitioned { name, mailbox },
            setup,
        }
    }

    /// The empty stream of an agent probed for its `group_by`.
    pub(crate) fn probe(probe: Arc<Probe<K, V>>, setup: Arc<StreamSetup<V>>) -> Self {
        Self {
            phase: Phase::Probe(probe),
            setup,
        }
    }
}

impl<K, V> Stream for AgentStream<K, V> {
    type Item = Result<Event<K, V>>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &self.phase {
            // No waker to keep: the driver polls the agent again when it
            // puts the next event in.
            Phase::Source(mailbox) => mailbox.poll_event(),
            // This instance gets no event of the agent's own topic.
            Phase::Repartitioned { .. } => Poll::Pending,
            Phase::Probe(_) => Poll::Ready(None),
        }
    }
}

/// The events of an agent's stream after `group_by`, under their new key
/// ([`AgentStream::group_by`]): a [`futures::Stream`], with `take` too.
pub struct GroupedStream<K, V> {
    inner: BoxStream<'static, Result<Event<K, V>>>,
}

impl<K, V> fmt::Debug for GroupedStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupedStream").finish_non_exhaustive()
    }
}

impl<K, V> Stream for GroupedStream<K, V> {
    type Item = Result<Event<K, V>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<K: Send + 'static, V: Send + 'static> GroupedStream<K, V> {
    fn new(inner: BoxStream<'static, Result<Event<K, V>>>) -> Self {
        Self { inner }
    }

    /// The events in batches of up to `max`, or fewer once `within` has
    /// passed since a batch's first event (Faust's `take`); see
    /// [`AgentStream::take`].
    pub fn take(
        self,
        max: usize,
        within: Duration,
    ) -> BoxStream<'static, Result<Vec<Event<K, V>>>> {
        crate::take::take(self, max, within)
    }
}

/// The events of a mailbox, as a stream: a repartitioned agent's.
struct MailboxStream<K, V>(Arc<Mailbox<K, V>>);

impl<K, V> Stream for MailboxStream<K, V> {
    type Item = Result<Event<K, V>>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_event()
    }
}

impl<K, V> AgentStream<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Repartitions the stream by a new key (Faust's
    /// `stream.group_by(Ride.vendor_id, name=..)`): each event goes to the
    /// topic `<application.id>-<name>-repartition` (as many partitions as
    /// the agent's topic) under `key(&event)`, and the agent continues on
    /// the events of that topic, in the task that owns the new key's
    /// partition, where the tables' keys are the new keys. The new key's
    /// serde is its built-in one ([`Serdes::default_for`]; see
    /// [`AgentStream::group_by_with`]).
    ///
    /// Call it before the agent's first `await`: the app learns an agent's
    /// `group_by` by calling the agent once with empty streams before it
    /// runs. One `group_by` per agent.
    pub fn group_by<KR, F>(self, key: F, name: &str) -> GroupedStream<KR, V>
    where
        KR: Clone + Send + Sync + 'static,
        F: Fn(&Event<K, V>) -> KR + Send + 'static,
    {
        match Serdes::default_for::<KR>() {
            Some(serde) => self.group_by_with(key, name, serde),
            None => {
                let error = AgentError::Usage(format!(
                    "group_by '{name}': {} has no built-in serde; use group_by_with",
                    std::any::type_name::<KR>()
                ));
                GroupedStream::new(futures::stream::once(async move { Err(error) }).boxed())
            }
        }
    }

    /// [`AgentStream::group_by`] with the new key's serde.
    pub fn group_by_with<KR, F>(
        self,
        key: F,
        name: &str,
        key_serde: impl Serde<KR>,
    ) -> GroupedStream<KR, V>
    where
        KR: Clone + Send + Sync + 'static,
        F: Fn(&Event<K, V>) -> KR + Send + 'static,
    {
        let topic = repartition_topic(&self.setup.application_id, name);
        let what = format!("group_by '{name}'");
        self.redirect(what, Arc::from(topic), Arc::new(key_serde), move |event| {
            Some(key(event))
        })
    }

    /// Sends every event on to `topic`, one of the app's topics, and
    /// continues on the events of that topic (Faust's `stream.through`), in
    /// the task that owns each one's partition there. Like `group_by`, call
    /// it before the agent's first `await`, once per agent (`through` and
    /// `group_by` together count as two).
    pub fn through(self, topic: &Topic<K, V>) -> GroupedStream<K, V> {
        let what = format!("through '{}'", topic.name);
        let name = topic.name.clone();
        self.redirect(what, name, topic.key_serde.clone(), |event| {
            event.key.clone()
        })
    }

    /// Sends every event to `topic` under `key(event)` and continues on the
    /// events of that topic (see [`AgentStream::group_by`]).
    fn redirect<KR, F>(
        self,
        what: String,
        topic: Arc<str>,
        key_serde: Arc<dyn Serde<KR>>,
        key: F,
    ) -> GroupedStream<KR, V>
    where
        KR: Clone + Send + Sync + 'static,
        F: Fn(&Event<K, V>) -> Option<KR> + Send + 'static,
    {
        let failed = |error: AgentError| {
            GroupedStream::new(futures::stream::once(async move { Err(error) }).boxed())
        };
        match self.phase {
            Phase::Probe(probe) => {
                probe.push(Group::new(topic, key_serde));
                GroupedStream::new(futures::stream::empty().boxed())
            }
            Phase::Repartitioned {
                name: running,
                mailbox,
            } => {
                if running != topic {
                    return failed(AgentError::Usage(format!(
                        "{what} in an agent that continues on '{running}': one group_by or through per agent"
                    )));
                }
                match mailbox.downcast::<Mailbox<KR, V>>() {
                    Ok(mailbox) => GroupedStream::new(MailboxStream(mailbox).boxed()),
                    Err(_) => failed(AgentError::Usage(format!(
                        "{what}: the key type {} is not the one the app learned when it started",
                        std::any::type_name::<KR>()
                    ))),
                }
            }
            Phase::Source(_) => {
                let setup = self.setup.clone();
                let topic = Topic {
                    name: topic,
                    key_serde,
                    value_serde: setup.value_serde.clone(),
                    partitions: setup.partitions,
                    // Sent from the agent's body only.
                    broker: Arc::default(),
                };
                let mut events = self;
                let forwarded = async_stream::stream! {
                    // Every event goes to the topic; none comes out here:
                    // the agent continues where its partition is there.
                    while let Some(event) = events.next().await {
                        let sent = match event {
                            Ok(event) => topic.send_record(key(&event), event.value).await,
                            Err(e) => Err(e),
                        };
                        if let Err(e) = sent {
                            yield Err(e);
                        }
                    }
                }
                .boxed();
                GroupedStream::new(forwarded)
            }
        }
    }

    /// The events in batches of up to `max`, or fewer once `within` has
    /// passed since a batch's first event (Faust's `stream.take(max_,
    /// within=..)`). A batch's events are committed only once the agent
    /// asks for the next batch: until then the batch holds its partition's
    /// commits at its first event, so a crash before the batch is
    /// processed reads its events again.
    pub fn take(
        self,
        max: usize,
        within: Duration,
    ) -> BoxStream<'static, Result<Vec<Event<K, V>>>> {
        crate::take::take(self, max, within)
    }

    /// The events' values, as Faust's `async for value in stream`; a
    /// record without a value (a tombstone) is passed over, logged at
    /// debug.
    pub fn values(self) -> impl Stream<Item = Result<V>> + Send {
        async_stream::stream! {
            let mut events = self;
            while let Some(event) = futures::StreamExt::next(&mut events).await {
                match event {
                    Ok(Event { value: Some(value), .. }) => yield Ok(value),
                    Ok(event) => tracing::debug!(
                        topic = %event.topic,
                        partition = event.partition,
                        offset = event.offset,
                        "passing over a record without a value"
                    ),
                    Err(e) => yield Err(e),
                }
            }
        }
    }

    /// Sends every event on to `topic` as it is (Faust's `stream.echo`),
    /// then yields it.
    pub fn echo(self, topic: &Topic<K, V>) -> impl Stream<Item = Result<Event<K, V>>> + Send {
        let topic = topic.clone();
        async_stream::stream! {
            let mut events = self;
            while let Some(event) = futures::StreamExt::next(&mut events).await {
                match event {
                    Ok(event) => {
                        match topic.send_record(event.key.clone(), event.value.clone()).await {
                            Ok(()) => yield Ok(event),
                            Err(e) => yield Err(e),
                        }
                    }
                    Err(e) => yield Err(e),
                }
            }
        }
    }
}

/// The `group_by` calls of an agent of keys `K` and values `V`, as the app
/// learns them before it runs (each agent is called once with empty
/// streams).
pub(crate) struct Probe<K, V> {
    groups: Mutex<Vec<Box<dyn GroupDef<K, V>>>>,
}

impl<K, V> Default for Probe<K, V> {
    fn default() -> Self {
        Self {
            groups: Mutex::new(Vec::new()),
        }
    }
}

impl<K, V> Probe<K, V> {
    pub(crate) fn push(&self, group: impl GroupDef<K, V> + 'static) {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(group));
    }

    /// The `group_by` calls seen.
    pub(crate) fn take(&self) -> Vec<Box<dyn GroupDef<K, V>>> {
        std::mem::take(&mut *self.groups.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A `group_by` or `through` of an agent, its new key type erased.
pub(crate) trait GroupDef<K, V>: Send {
    /// The topic the agent continues on.
    fn topic(&self) -> &str;

    /// Adds the source of the topic (unless `sources` has one) and the
    /// driver of the agent instances that run for it; returns the driver's
    /// name.
    fn add_to(
        &self,
        topology: &mut Topology,
        sources: &mut BTreeMap<String, String>,
        agent: &Arc<str>,
        make: &AgentFn<K, V>,
        setup: &Arc<StreamSetup<V>>,
        runtime: &Handle,
    ) -> Result<String>;
}

/// A `group_by` or `through` to topic `topic`, keys `KR`.
pub(crate) struct Group<KR> {
    topic: Arc<str>,
    key_serde: Arc<dyn Serde<KR>>,
}

impl<KR> Group<KR> {
    pub(crate) fn new(topic: Arc<str>, key_serde: Arc<dyn Serde<KR>>) -> Self {
        Self { topic, key_serde }
    }
}

impl<K, V, KR> GroupDef<K, V> for Group<KR>
where
    K: Send + 'static,
    V: Clone + Send + Sync + 'static,
    KR: Clone + Send + Sync + 'static,
{
    fn topic(&self) -> &str {
        &self.topic
    }

    fn add_to(
        &self,
        topology: &mut Topology,
        sources: &mut BTreeMap<String, String>,
        agent: &Arc<str>,
        make: &AgentFn<K, V>,
        setup: &Arc<StreamSetup<V>>,
        runtime: &Handle,
    ) -> Result<String> {
        let topic = self.topic.to_string();
        let source = match sources.get(&topic) {
            Some(source) => source.clone(),
            None => {
                let source = format!("{topic}-source");
                topology.add_source(
                    &source,
                    self.key_serde.clone(),
                    setup.value_serde.clone(),
                    &[&topic],
                )?;
                sources.insert(topic.clone(), source.clone());
                source
            }
        };
        let driver = format!("{agent}-{topic}");
        let (make, setup, name) = (make.clone(), setup.clone(), self.topic.clone());
        let start: StartFn<KR, V> = Arc::new(move |mailbox| {
            let mailbox: Arc<dyn Any + Send + Sync> = mailbox;
            make(AgentStream::repartitioned(
                name.clone(),
                mailbox,
                setup.clone(),
            ))
            .boxed()
        });
        let (agent, topic, runtime) = (agent.clone(), Arc::<str>::from(topic), runtime.clone());
        topology.add_processor(
            &driver,
            move || AgentDriver::new(agent.clone(), topic.clone(), start.clone(), runtime.clone()),
            &[&source],
        )?;
        Ok(driver)
    }
}
