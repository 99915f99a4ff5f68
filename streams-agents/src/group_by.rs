//! What the app learns of an agent's `group_by` before it runs, and the
//! repartition topic's source and driver it adds for it.

use std::any::Any;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt as _;
use streams_core::{Serde, Topology};
use tokio::runtime::Handle;

use crate::driver::{AgentDriver, AgentFn, StartFn};
use crate::error::Result;
use crate::stream::{repartition_topic, AgentStream, StreamSetup};

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

/// A `group_by` of an agent, its new key type erased.
pub(crate) trait GroupDef<K, V>: Send {
    /// The name given to `group_by`.
    fn name(&self) -> &str;

    /// Adds the source of the repartition topic and the driver of the
    /// agent instances that run for it; returns the driver's name.
    fn add_to(
        &self,
        topology: &mut Topology,
        agent: &Arc<str>,
        make: &AgentFn<K, V>,
        setup: &Arc<StreamSetup<V>>,
        runtime: &Handle,
    ) -> Result<String>;
}

/// A `group_by` to keys `KR`.
pub(crate) struct Group<KR> {
    name: Arc<str>,
    key_serde: Arc<dyn Serde<KR>>,
}

impl<KR> Group<KR> {
    pub(crate) fn new(name: Arc<str>, key_serde: Arc<dyn Serde<KR>>) -> Self {
        Self { name, key_serde }
    }
}

impl<K, V, KR> GroupDef<K, V> for Group<KR>
where
    K: Send + 'static,
    V: Clone + Send + Sync + 'static,
    KR: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn add_to(
        &self,
        topology: &mut Topology,
        agent: &Arc<str>,
        make: &AgentFn<K, V>,
        setup: &Arc<StreamSetup<V>>,
        runtime: &Handle,
    ) -> Result<String> {
        let topic = repartition_topic(&setup.application_id, &self.name);
        let source = format!("{topic}-source");
        topology.add_source(
            &source,
            self.key_serde.clone(),
            setup.value_serde.clone(),
            &[&topic],
        )?;
        let driver = format!("{agent}-{}", self.name);
        let (make, setup, name) = (make.clone(), setup.clone(), self.name.clone());
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
