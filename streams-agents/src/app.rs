//! [`App`]: declares an app's topics, agents and tables, and runs them on
//! the streams runtime.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use broker_embedded::{Broker, BrokerConfig, NewTopic, Producer};
use futures::FutureExt as _;
use streams_core::{Serde, Serdes, StoreBackend, StreamsApp, StreamsConfig, Topology};
use tokio::runtime::Handle;

use crate::agent::Agent;
use crate::ask::{read_replies, Replies};
use crate::definitions::{AgentDef, AgentSpec, GlobalDef, Setup, TableDef, TopicDef};
use crate::error::{AgentError, AgentResult, Result};
use crate::global_table::GlobalTable;
use crate::running::RunningApp;
use crate::stream::{AgentFn, AgentStream};
use crate::table::Table;
use crate::timer::{Schedule, TimerFn, TimerSpec};
use crate::topic::{producer_record, Topic};

/// Faust's default partition count of the topics an app creates.
pub const DEFAULT_TOPIC_PARTITIONS: u32 = 8;

/// An app of agents and tables (Faust's `faust.App`), on the embedded
/// broker.
///
/// Declare topics ([`App::topic`]), tables ([`App::table`]) and agents
/// ([`App::agent`]), then [`App::run`] it (or [`App::main`], which gives
/// the binary Faust's commands). The app runs on the streams runtime: each
/// partition of an agent's topic is a task with its own instance of the
/// agent, its events in offset order; tables are state stores with
/// compacted changelogs; commits follow `processing.guarantee` (see
/// `docs/agents.md`).
///
/// ```no_run
/// use streams_agents::App;
/// use streams_core::{Serdes, StreamsConfig};
/// use futures::StreamExt;
///
/// # async fn example() -> streams_agents::Result<()> {
/// let mut app = App::new(StreamsConfig::new("faust-stream"));
/// let rides = app.topic::<String, String>("rides", Serdes::string(), Serdes::string())?;
/// let counts = app.table::<String, i64>("vendor_rides")?.default(|| 0);
/// app.agent("count", &rides, move |rides| {
///     let counts = counts.clone();
///     async move {
///         let mut rides = rides;
///         while let Some(ride) = rides.next().await {
///             if let Some(vendor) = ride?.key {
///                 counts.update(&vendor, |n| n + 1).await?;
///             }
///         }
///         Ok(())
///     }
/// })?;
/// app.run().await
/// # }
/// ```
pub struct App {
    config: StreamsConfig,
    broker: Option<Broker>,
    /// The broker once the app has one, shared with its topics.
    broker_cell: Arc<OnceLock<Broker>>,
    /// The replies to asks once the app runs, shared with its agents.
    replies: Arc<OnceLock<Arc<Replies>>>,
    timers: Vec<TimerSpec>,
    topic_partitions: u32,
    topics: BTreeMap<String, Box<dyn TopicDef>>,
    agents: Vec<Box<dyn AgentDef>>,
    tables: Vec<Box<dyn TableDef>>,
    globals: Vec<Box<dyn GlobalDef>>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("application_id", &self.config.application_id())
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .field(
                "agents",
                &self.agents.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .field(
                "tables",
                &self.tables.iter().map(|t| t.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl App {
    /// An app with `config` (its `application.id` names the app, its
    /// consumer group and its tables' changelogs). It runs on the embedded
    /// broker given with [`App::with_broker`], else on one kept in
    /// `<state.dir>/<application.id>-broker`.
    pub fn new(config: StreamsConfig) -> Self {
        Self {
            config,
            broker: None,
            broker_cell: Arc::new(OnceLock::new()),
            replies: Arc::new(OnceLock::new()),
            timers: Vec::new(),
            topic_partitions: DEFAULT_TOPIC_PARTITIONS,
            topics: BTreeMap::new(),
            agents: Vec::new(),
            tables: Vec::new(),
            globals: Vec::new(),
        }
    }

    /// Runs on `broker`.
    pub fn with_broker(mut self, broker: Broker) -> Self {
        self.broker = Some(broker);
        self
    }

    /// How many partitions the topics declared from here on are created
    /// with when they do not exist (default
    /// [`DEFAULT_TOPIC_PARTITIONS`], Faust's `topic_partitions`).
    pub fn with_topic_partitions(mut self, partitions: u32) -> Self {
        self.topic_partitions = partitions.max(1);
        self
    }

    /// Runs the agents on `n` stream threads (Faust's `concurrency`, for
    /// the whole app): each partition, and so each agent instance, belongs
    /// to one of them, so `n` partitions are processed at once. The
    /// default is `num.stream.threads` of the configuration (1).
    pub fn with_concurrency(mut self, n: u32) -> Self {
        self.config = self.config.with_num_stream_threads(n.max(1));
        self
    }

    /// The app's configuration.
    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    /// The topic the answers to asks go to: `<application.id>-replies`.
    fn reply_topic(&self) -> String {
        format!("{}-replies", self.config.application_id())
    }

    /// Where the embedded broker lives when none is given.
    fn broker_dir(&self) -> PathBuf {
        self.config
            .state_dir()
            .join(format!("{}-broker", self.config.application_id()))
    }

    /// The broker the app runs on, opened if it was not given.
    pub async fn broker(&mut self) -> Result<Broker> {
        let broker = match &self.broker {
            Some(broker) => broker.clone(),
            None => {
                let broker = Broker::open(self.broker_dir(), BrokerConfig::default()).await?;
                self.broker = Some(broker.clone());
                broker
            }
        };
        let _ = self.broker_cell.set(broker.clone());
        Ok(broker)
    }

    /// Declares topic `name` with the serdes of its keys and values
    /// (Faust's `app.topic(name, key_type=.., value_type=..)`); the app
    /// creates it when it runs, if it does not exist.
    ///
    /// # Errors
    ///
    /// [`AgentError::Duplicate`] when the name is declared already.
    pub fn topic<K: Send + Sync + 'static, V: Send + Sync + 'static>(
        &mut self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Topic<K, V>> {
        if self.topics.contains_key(name) {
            return Err(AgentError::Duplicate {
                kind: "topic",
                name: name.to_owned(),
            });
        }
        let topic = Topic {
            name: Arc::from(name),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            partitions: self.topic_partitions,
            broker: self.broker_cell.clone(),
        };
        self.topics.insert(name.to_owned(), Box::new(topic.clone()));
        Ok(topic)
    }

    /// Refuses a table name that a table or a global table has already.
    fn check_new_table(&self, name: &str) -> Result<()> {
        if self.tables.iter().any(|t| t.name() == name)
            || self.globals.iter().any(|g| g.name() == name)
        {
            return Err(AgentError::Duplicate {
                kind: "table",
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Declares table `name` of keys `K` and values `V` with their built-in
    /// serdes ([`Serdes::default_for`]: strings, integers, floats, bools,
    /// bytes); [`App::table_with`] takes serdes. Give it a default with
    /// [`Table::default`].
    ///
    /// # Errors
    ///
    /// [`AgentError::Duplicate`] when the name is declared already;
    /// [`AgentError::Usage`] when `K` or `V` has no built-in serde.
    pub fn table<K, V>(&mut self, name: &str) -> Result<Table<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let (key_serde, value_serde) = built_in_serdes::<K, V>("table", name, "App::table_with")?;
        self.table_with(name, key_serde, value_serde)
    }

    /// Declares table `name` with the serdes of its keys and values (in its
    /// store and its changelog).
    ///
    /// # Errors
    ///
    /// [`AgentError::Duplicate`] when the name is declared already.
    pub fn table_with<K, V>(
        &mut self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<Table<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.check_new_table(name)?;
        let table = Table {
            name: Arc::from(name),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            default: None,
            backend: None,
            partitions: Arc::new(OnceLock::new()),
            windows: Arc::new(OnceLock::new()),
        };
        self.tables.push(Box::new(table.clone()));
        Ok(table)
    }

    /// Declares table `name` on `backend` (in memory, sled or redb; the
    /// default is [`StoreBackend::default`]).
    ///
    /// # Errors
    ///
    /// As [`App::table`].
    pub fn table_on<K, V>(&mut self, name: &str, backend: StoreBackend) -> Result<Table<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let mut table = self.table::<K, V>(name)?;
        table.backend = Some(backend);
        if let Some(def) = self.tables.last_mut() {
            *def = Box::new(table.clone());
        }
        Ok(table)
    }

    /// Declares global table `name` of keys `K` and values `V` with their
    /// built-in serdes (Faust's `app.GlobalTable(name)`): the latest value
    /// per key of the compacted topic `<application.id>-<name>-changelog`,
    /// held whole by every instance; see [`GlobalTable`].
    ///
    /// # Errors
    ///
    /// As [`App::table`].
    pub fn global_table<K, V>(&mut self, name: &str) -> Result<GlobalTable<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let (key_serde, value_serde) =
            built_in_serdes::<K, V>("global table", name, "App::global_table_with")?;
        self.global_table_with(name, key_serde, value_serde)
    }

    /// [`App::global_table`] with the serdes of its keys and values.
    ///
    /// # Errors
    ///
    /// [`AgentError::Duplicate`] when the name is declared already.
    pub fn global_table_with<K, V>(
        &mut self,
        name: &str,
        key_serde: impl Serde<K>,
        value_serde: impl Serde<V>,
    ) -> Result<GlobalTable<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        self.check_new_table(name)?;
        let topic = Topic {
            name: Arc::from(format!("{}-{name}-changelog", self.config.application_id())),
            key_serde: Arc::new(key_serde),
            value_serde: Arc::new(value_serde),
            partitions: self.topic_partitions,
            broker: self.broker_cell.clone(),
        };
        let table = GlobalTable {
            name: Arc::from(name),
            topic,
            default: None,
        };
        self.globals.push(Box::new(table.clone()));
        Ok(table)
    }

    /// Declares agent `name` over `topic` (Faust's `@app.agent(topic)`):
    /// `agent` receives the events of one partition as an
    /// [`AgentStream`] and returns the future that processes them. Each
    /// partition has its own instance of the agent. An agent that returns
    /// an error stops the app with the agent's name in the error.
    ///
    /// # Errors
    ///
    /// [`AgentError::Duplicate`] when the name is declared already.
    pub fn agent<K, V, F, Fut>(
        &mut self,
        name: &str,
        topic: &Topic<K, V>,
        agent: F,
    ) -> Result<Agent<K, V>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Fn(AgentStream<K, V>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AgentResult> + Send + 'static,
    {
        if self.agents.iter().any(|a| a.name() == name) || self.topics.contains_key(name) {
            return Err(AgentError::Duplicate {
                kind: "agent",
                name: name.to_owned(),
            });
        }
        let make: AgentFn<K, V> = Arc::new(move |stream| agent(stream).boxed());
        let description = Arc::new(Mutex::new(String::new()));
        self.agents.push(Box::new(AgentSpec {
            name: Arc::from(name),
            topic: topic.clone(),
            make,
            description: description.clone(),
        }));
        Ok(Agent {
            name: Arc::from(name),
            topic: topic.clone(),
            description,
            replies: self.replies.clone(),
            reply_topic: Arc::from(self.reply_topic()),
        })
    }

    /// Declares timer `name` (Faust's `@app.timer(interval)`): `run` is
    /// called every `interval` on each running instance of the app, the
    /// first time one interval after it starts. A topic's `send` from a
    /// timer goes through a producer of the broker, at least once. A timer
    /// that returns an error stops the app, with its name in the error.
    ///
    /// # Errors
    ///
    /// [`AgentError::Duplicate`] when the name is declared already;
    /// [`AgentError::Usage`] for a zero interval.
    pub fn timer<F, Fut>(&mut self, name: &str, interval: Duration, run: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AgentResult> + Send + 'static,
    {
        if interval.is_zero() {
            return Err(AgentError::Usage(format!(
                "timer '{name}': the interval must be more than zero"
            )));
        }
        self.add_timer(
            name,
            Schedule::Every(interval),
            Arc::new(move || run().boxed()),
        )
    }

    /// Declares timer `name` run at each time the cron expression matches,
    /// in UTC (Faust's `@app.crontab("0 * * * *")`): five fields (minute,
    /// hour, day of month, month, day of week) or six (seconds first); see
    /// [`App::crontab_in`] for another time zone.
    ///
    /// # Errors
    ///
    /// As [`App::timer`]; [`AgentError::Usage`] naming the expression when
    /// it does not parse.
    pub fn crontab<F, Fut>(&mut self, name: &str, cron: &str, run: F) -> Result<()>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AgentResult> + Send + 'static,
    {
        self.crontab_in(name, cron, chrono::Utc, run)
    }

    /// [`App::crontab`] in time zone `zone` (`chrono::Local`, a
    /// `chrono::FixedOffset`, or any `chrono::TimeZone`).
    ///
    /// # Errors
    ///
    /// As [`App::crontab`].
    pub fn crontab_in<Tz, F, Fut>(&mut self, name: &str, cron: &str, zone: Tz, run: F) -> Result<()>
    where
        Tz: chrono::TimeZone + Send + Sync + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = AgentResult> + Send + 'static,
    {
        let schedule = Schedule::cron(cron, zone)?;
        self.add_timer(name, schedule, Arc::new(move || run().boxed()))
    }

    fn add_timer(&mut self, name: &str, schedule: Schedule, run: TimerFn) -> Result<()> {
        if self.timers.iter().any(|t| t.name == name)
            || self.agents.iter().any(|a| a.name() == name)
        {
            return Err(AgentError::Duplicate {
                kind: "timer",
                name: name.to_owned(),
            });
        }
        self.timers.push(TimerSpec {
            name: name.to_owned(),
            schedule,
            run,
        });
        Ok(())
    }

    /// The agents: (name, topic, description), in declaration order.
    pub fn agents(&self) -> Vec<(String, String, String)> {
        self.agents
            .iter()
            .map(|a| (a.name().to_owned(), a.topic().to_owned(), a.description()))
            .collect()
    }

    /// The tables: (name, changelog topic, key and value types); global
    /// tables last, their types marked `(global)`.
    pub fn tables(&self) -> Vec<(String, String, String)> {
        let app = self.config.application_id();
        let mut tables: Vec<_> = self
            .tables
            .iter()
            .map(|t| {
                (
                    t.name().to_owned(),
                    format!("{app}-{}-changelog", t.name()),
                    t.describe(),
                )
            })
            .collect();
        tables.extend(self.globals.iter().map(|g| {
            (
                g.name().to_owned(),
                g.topic().to_owned(),
                "(global)".to_owned(),
            )
        }));
        tables
    }

    /// The topology the app runs: a source per topic read, a processor per
    /// agent, a store per table connected to every agent.
    fn topology(
        &self,
        runtime: &Handle,
        partitions: &BTreeMap<String, u32>,
    ) -> Result<(Topology, Vec<(String, u32)>)> {
        let mut topology = Topology::new();
        let mut sources = BTreeMap::new();
        let mut drivers = Vec::new();
        let mut repartitions = Vec::new();
        for agent in &self.agents {
            let count = partitions.get(agent.topic()).copied().unwrap_or(1);
            let setup = Setup {
                application_id: self.config.application_id(),
                partitions: count,
            };
            let added = agent.add_to(&mut topology, &mut sources, runtime, setup)?;
            drivers.extend(added.drivers);
            repartitions.extend(added.repartition_topics.into_iter().map(|t| (t, count)));
        }
        let drivers: Vec<&str> = drivers.iter().map(String::as_str).collect();
        for table in &self.tables {
            topology.add_state_store(table.store_builder(), &drivers)?;
        }
        for global in &self.globals {
            global.add_to(&mut topology)?;
        }
        for topic in self.topics.keys() {
            if !sources.contains_key(topic) {
                topology.add_output_topic(topic)?;
            }
        }
        topology.add_output_topic(&self.reply_topic())?;
        Ok((topology, repartitions))
    }

    /// Creates the topics, then starts the agents; returns the running app.
    ///
    /// # Errors
    ///
    /// A broker error creating the topics; the runtime's error starting
    /// (a co-partitioning error when tables are shared by agents whose
    /// topics have different partition counts).
    pub async fn start(mut self) -> Result<RunningApp> {
        let broker = self.broker().await?;
        let mut partitions = BTreeMap::new();
        for (name, topic) in &self.topics {
            broker
                .ensure_topic(NewTopic::new(name.clone(), topic.partitions()))
                .await?;
            partitions.insert(name.clone(), broker.partition_count(name).await?);
        }
        for global in &self.globals {
            broker
                .ensure_topic(
                    NewTopic::new(global.topic().to_owned(), global.partitions())
                        .config("cleanup.policy", "compact"),
                )
                .await?;
        }
        if let Some(agent) = self.agents.first() {
            let count = partitions.get(agent.topic()).copied().unwrap_or(1);
            for table in &self.tables {
                table.set_partitions(count);
            }
        }
        let (topology, repartitions) = self.topology(&Handle::current(), &partitions)?;
        let reply_topic = self.reply_topic();
        broker
            .ensure_topic(NewTopic::new(reply_topic.clone(), 1))
            .await?;
        let replies = Arc::new(Replies::default());
        let reply_reader = read_replies(broker.clone(), reply_topic, replies.clone()).await?;
        let _ = self.replies.set(replies);
        let mut repartition_names = Vec::new();
        for (topic, count) in repartitions {
            broker
                .ensure_topic(NewTopic::new(topic.clone(), count))
                .await?;
            repartition_names.push(topic);
        }
        let mut app = StreamsApp::new(topology, self.config.clone(), broker.clone());
        app.start().await?;
        tracing::info!(
            app = %self.config.application_id(),
            agents = self.agents.len(),
            tables = self.tables.len(),
            "agents started"
        );
        let mut input_topics: Vec<String> =
            self.agents.iter().map(|a| a.topic().to_owned()).collect();
        input_topics.extend(repartition_names);
        input_topics.sort();
        input_topics.dedup();
        let timer_failed = Arc::new(Mutex::new(None));
        let mut timers: Vec<_> = self
            .timers
            .iter()
            .map(|timer| crate::timer::spawn(timer, timer_failed.clone()))
            .collect();
        timers.push(reply_reader);
        Ok(RunningApp {
            app,
            broker,
            input_topics,
            timers,
            timer_failed,
        })
    }

    /// Runs the app until Ctrl-C, or until an agent fails.
    ///
    /// # Errors
    ///
    /// As [`App::start`], and [`AgentError::Stopped`] with the runtime's
    /// error (naming the agent) when an agent fails.
    pub async fn run(self) -> Result<()> {
        let running = self.start().await?;
        let stopped = tokio::select! {
            stopped = running.wait() => stopped,
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted; stopping");
                Ok(())
            }
        };
        let closed = running.stop().await;
        stopped.and(closed)
    }

    /// Sends a record given as text to topic `name` (`myapp send`).
    pub(crate) async fn send_text(
        &mut self,
        name: &str,
        key: Option<&str>,
        value: &str,
    ) -> Result<()> {
        let Some(topic) = self.topics.get(name) else {
            return Err(AgentError::Usage(format!(
                "no topic '{name}' in this app; its topics: {}",
                self.topics.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let (key, value) = topic.text_record(key, value)?;
        let partitions = topic.partitions();
        let broker = self.broker().await?;
        broker
            .ensure_topic(NewTopic::new(name.to_owned(), partitions))
            .await?;
        let record = producer_record(&Arc::from(name), key, Some(value));
        Producer::new(&broker).send(record).await?;
        Ok(())
    }

    /// Sends a record to `topic` from outside the agents (a loader, a
    /// command line), through a producer of the broker.
    ///
    /// # Errors
    ///
    /// A serde or broker error.
    pub async fn send<K: 'static, V: 'static>(
        &mut self,
        topic: &Topic<K, V>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<()> {
        let broker = self.broker().await?;
        broker
            .ensure_topic(NewTopic::new(topic.name().to_owned(), topic.partitions))
            .await?;
        let (key, value) = topic.encode(key, value)?;
        Producer::new(&broker)
            .send(producer_record(&topic.name, key, value))
            .await?;
        Ok(())
    }
}

/// The serdes of a table's keys and values.
type SerdePair<K, V> = (Arc<dyn Serde<K>>, Arc<dyn Serde<V>>);

/// The built-in serdes of `K` and `V` ([`Serdes::default_for`]) for the
/// `kind` named `name`; without one, an error that points to `instead`.
fn built_in_serdes<K: 'static, V: 'static>(
    kind: &str,
    name: &str,
    instead: &str,
) -> Result<SerdePair<K, V>> {
    match (Serdes::default_for::<K>(), Serdes::default_for::<V>()) {
        (Some(key_serde), Some(value_serde)) => Ok((key_serde, value_serde)),
        _ => Err(AgentError::Usage(format!(
            "{kind} '{name}': {} or {} has no built-in serde; declare it with {instead}",
            std::any::type_name::<K>(),
            std::any::type_name::<V>()
        ))),
    }
}
