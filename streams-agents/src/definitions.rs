//! What an [`crate::App`] keeps of its agents, topics, tables and global
//! tables, their types erased, and how each adds itself to the topology.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use streams_core::{StoreBuilder, Topology};
use tokio::runtime::Handle;

use crate::driver::{AgentDriver, StartFn};
use crate::error::{AgentError, Result};
use crate::global_table::GlobalTable;
use crate::stream::{AgentFn, AgentStream, GroupDef, Probe, StreamSetup};
use crate::table::Table;
use crate::topic::Topic;

/// An agent as the app keeps it, its types erased.
pub(crate) trait AgentDef: Send + Sync {
    fn name(&self) -> &str;
    fn topic(&self) -> &str;
    fn description(&self) -> String;
    /// Adds the agent's source (once per topic), its driver, and the
    /// source and driver of its `group_by`'s repartition topic to
    /// `topology`.
    fn add_to(
        &self,
        topology: &mut Topology,
        sources: &mut BTreeMap<String, String>,
        runtime: &Handle,
        setup: Setup<'_>,
    ) -> Result<Added>;
}

/// What the app knows of an agent's topic when it builds the topology.
#[derive(Clone, Copy)]
pub(crate) struct Setup<'a> {
    pub(crate) application_id: &'a str,
    /// The partition count of the agent's topic.
    pub(crate) partitions: u32,
}

/// What [`AgentDef::add_to`] added.
pub(crate) struct Added {
    /// The agent's drivers: the tables are connected to them.
    pub(crate) drivers: Vec<String>,
    /// The repartition topics of its `group_by`.
    pub(crate) repartition_topics: Vec<String>,
}

pub(crate) struct AgentSpec<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) topic: Topic<K, V>,
    pub(crate) make: AgentFn<K, V>,
    pub(crate) description: Arc<Mutex<String>>,
}

impl<K, V> AgentDef for AgentSpec<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn topic(&self) -> &str {
        &self.topic.name
    }

    fn description(&self) -> String {
        self.description
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn add_to(
        &self,
        topology: &mut Topology,
        sources: &mut BTreeMap<String, String>,
        runtime: &Handle,
        setup: Setup<'_>,
    ) -> Result<Added> {
        let setup = Arc::new(StreamSetup {
            application_id: Arc::from(setup.application_id),
            value_serde: self.topic.value_serde.clone(),
            partitions: setup.partitions,
        });
        let topic = self.topic.name.to_string();
        let source = match sources.get(&topic) {
            Some(source) => source.clone(),
            None => {
                let source = format!("{topic}-source");
                topology.add_source(
                    &source,
                    self.topic.key_serde.clone(),
                    self.topic.value_serde.clone(),
                    &[&topic],
                )?;
                sources.insert(topic, source.clone());
                source
            }
        };
        let (make, for_start) = (self.make.clone(), setup.clone());
        let start: StartFn<K, V> =
            Arc::new(move |mailbox| make(AgentStream::source(mailbox, for_start.clone())));
        let (name, topic, for_driver) =
            (self.name.clone(), self.topic.name.clone(), runtime.clone());
        topology.add_processor(
            &self.name,
            move || {
                AgentDriver::new(
                    name.clone(),
                    topic.clone(),
                    start.clone(),
                    for_driver.clone(),
                )
            },
            &[&source],
        )?;
        let mut added = Added {
            drivers: vec![self.name.to_string()],
            repartition_topics: Vec::new(),
        };
        let groups = self.probe(&setup, runtime);
        if groups.len() > 1 {
            return Err(AgentError::Usage(format!(
                "agent '{}' calls group_by or through {} times; one per agent",
                self.name,
                groups.len()
            )));
        }
        for group in groups {
            added
                .drivers
                .push(group.add_to(topology, sources, &self.name, &self.make, &setup, runtime)?);
            added.repartition_topics.push(group.topic().to_owned());
        }
        Ok(added)
    }
}

/// A topic as the app keeps it, its types erased.
pub(crate) trait TopicDef: Send + Sync {
    fn partitions(&self) -> u32;
    /// The bytes of a record given as text: the text's UTF-8 bytes, checked
    /// by reading them with the topic's serdes.
    fn text_record(&self, key: Option<&str>, value: &str) -> Result<(Option<Bytes>, Bytes)>;
}

impl<K: Send + Sync + 'static, V: Send + Sync + 'static> TopicDef for Topic<K, V> {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn text_record(&self, key: Option<&str>, value: &str) -> Result<(Option<Bytes>, Bytes)> {
        let check = |what: &str, text: &str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(AgentError::Usage(format!(
                    "{what} {text:?} is not a valid {} for topic '{}'",
                    if what == "key" {
                        std::any::type_name::<K>()
                    } else {
                        std::any::type_name::<V>()
                    },
                    self.name
                )))
            }
        };
        let key = key
            .map(|k| {
                let bytes = Bytes::copy_from_slice(k.as_bytes());
                check(
                    "key",
                    k,
                    self.key_serde.deserialize(&self.name, &bytes).is_ok(),
                )
                .map(|()| bytes)
            })
            .transpose()?;
        let bytes = Bytes::copy_from_slice(value.as_bytes());
        check(
            "value",
            value,
            self.value_serde.deserialize(&self.name, &bytes).is_ok(),
        )?;
        Ok((key, bytes))
    }
}

impl<K, V> AgentSpec<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Calls the agent once with empty streams, polls it once, and returns
    /// the `group_by` calls it made. Whatever else it does fails or waits
    /// (a table or a send outside a running agent is an error) and is
    /// dropped.
    fn probe(&self, setup: &Arc<StreamSetup<V>>, runtime: &Handle) -> Vec<Box<dyn GroupDef<K, V>>> {
        let probe = Arc::new(Probe::default());
        let _runtime = runtime.enter();
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut future = (self.make)(AgentStream::probe(probe.clone(), setup.clone()));
            let waker = futures::task::noop_waker();
            let _ = future
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
        }));
        if polled.is_err() {
            tracing::warn!(agent = %self.name, "the agent panicked when called with an empty stream to learn its group_by");
        }
        probe.take()
    }
}

/// A table as the app keeps it, its types erased.
pub(crate) trait TableDef: Send + Sync {
    fn name(&self) -> &str;
    fn store_builder(&self) -> StoreBuilder;
    fn set_partitions(&self, partitions: u32);
    fn describe(&self) -> String;
}

impl<K, V> TableDef for Table<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn store_builder(&self) -> StoreBuilder {
        Table::store_builder(self)
    }

    fn set_partitions(&self, partitions: u32) {
        let _ = self.partitions.set(partitions);
    }

    fn describe(&self) -> String {
        format!("{} -> {}", short_type_name::<K>(), short_type_name::<V>())
    }
}

/// The name of `T` without module paths: `Vec<String>`, not
/// `alloc::vec::Vec<alloc::string::String>`.
pub(crate) fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

/// A global table as the app keeps it, its types erased.
pub(crate) trait GlobalDef: Send + Sync {
    fn name(&self) -> &str;
    fn topic(&self) -> &str;
    fn partitions(&self) -> u32;
    fn add_to(&self, topology: &mut Topology) -> Result<()>;
}

impl<K, V> GlobalDef for GlobalTable<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn topic(&self) -> &str {
        self.topic.name()
    }

    fn partitions(&self) -> u32 {
        self.topic.partitions
    }

    fn add_to(&self, topology: &mut Topology) -> Result<()> {
        topology.add_global_table(
            &self.name,
            &format!("{}-global-source", self.name),
            self.topic.name(),
            &format!("{}-global", self.name),
            self.topic.key_serde.clone(),
            self.topic.value_serde.clone(),
        )?;
        Ok(())
    }
}
