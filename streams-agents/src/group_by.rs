//! What the app learns of an agent's `group_by` before it runs, and the
//! repartition topic's source and driver it adds for it.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use streams_core::{Serde, Topology};
use tokio::runtime::Handle;

use crate::driver::{AgentDriver, AgentFn, StartFn};
use crate::error::Result;
use crate::stream::{AgentStream, StreamSetup};

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
