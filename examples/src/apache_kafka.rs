//! Apache Kafka itself, as a reference for benchmarks and tests: one node in KRaft combined
//! mode (broker and controller in one JVM) on loopback, in a fresh data dir, with Kafka's
//! defaults except what one node needs (the replication factors and minimum in-sync
//! replicas of its internal topics, transactions' included) and no initial rebalance delay
//! for groups (as Kafka's own `config/server.properties` sets for development).
//!
//! The jars (the version of `examples/benches/kafka-broker/pom.xml`) come from Maven Central
//! through `scripts/kafka-broker.sh`, which fetches them once into a folder under the target
//! dir; this needs Java 17 or later, and Maven and the network on the first run.
//!
//! ```no_run
//! let kafka = examples::apache_kafka::ApacheKafka::start()?;
//! kafka.create_topic("text-lines", 3)?;
//! println!("Apache Kafka at {}, pid {}", kafka.bootstrap(), kafka.pid());
//! kafka.stop()?; // or drop it
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::ClientConfig;

use crate::process::{classpath_from_script, tail, terminate, workspace_dir};

/// Kafka's start script's heap (`kafka-server-start.sh`).
const HEAP: [&str; 2] = ["-Xmx1G", "-Xms1G"];
/// Kafka's start script's JVM options (`kafka-run-class.sh`, `KAFKA_JVM_PERFORMANCE_OPTS`).
const JVM_PERFORMANCE_OPTIONS: [&str; 6] = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];
/// Any valid cluster id: the data dir is new at every start.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";
/// How long the JVM may take to answer its first Metadata request.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a SIGTERM'd broker may take to shut down before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a created topic may take to have a leader for each partition.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// The version of Kafka that `scripts/kafka-broker.sh` fetches (the `kafka.version` of
/// `examples/benches/kafka-broker/pom.xml`), `"?"` if the pom cannot be read.
pub fn kafka_version() -> String {
    pom_kafka_version("examples/benches/kafka-broker/pom.xml")
}

/// The `kafka.version` of the pom at `path` (from the workspace's root), `"?"` if it
/// cannot be read.
pub(crate) fn pom_kafka_version(path: &str) -> String {
    std::fs::read_to_string(workspace_dir().join(path))
        .ok()
        .and_then(|text| {
            let start = text.find("<kafka.version>")? + "<kafka.version>".len();
            let end = start + text[start..].find("</kafka.version>")?;
            Some(text[start..end].trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The broker's Java classpath, from `scripts/kafka-broker.sh`, which fetches the jars into
/// `cache` the first time (`None`: its default, `$CARGO_TARGET_DIR/tmp/kafka-broker` or
/// `target/tmp/kafka-broker`). The error says why there is none (no Java, no Maven, no
/// network).
pub fn broker_classpath(cache: Option<&Path>) -> anyhow::Result<String> {
    classpath_from_script("scripts/kafka-broker.sh", cache)
}

/// How [`ApacheKafka::start_with`] starts the node. The default is Kafka as its start
/// script runs it: `-Xmx1G -Xms1G` and its JVM options, in a data dir under the system's
/// temporary dir, with the jars of [`broker_classpath`]`(None)`.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// The broker's classpath; `None`: [`broker_classpath`]`(None)`.
    pub classpath: Option<String>,
    /// The folder in which the node's own temporary dir (data, configuration, logs) is
    /// made; `None`: the system's temporary dir.
    pub parent_dir: Option<PathBuf>,
    /// The JVM's options (heap, garbage collector).
    pub jvm_options: Vec<String>,
    /// More broker settings (`server.properties` names and values), after the fixture's
    /// own: a name given here overrides the fixture's value.
    pub properties: Vec<(String, String)>,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        KafkaOptions {
            classpath: None,
            parent_dir: None,
            jvm_options: HEAP
                .iter()
                .chain(&JVM_PERFORMANCE_OPTIONS)
                .map(|o| (*o).to_owned())
                .collect(),
            properties: Vec::new(),
        }
    }
}

/// A running single-node Apache Kafka on loopback. Dropping it stops it as
/// [`ApacheKafka::stop`] does (SIGTERM, then SIGKILL after a minute) and removes its
/// data dir.
#[derive(Debug)]
pub struct ApacheKafka {
    child: Child,
    bootstrap: String,
    // Dropped after `child` is stopped (see `Drop`), which removes the folder.
    dir: tempfile::TempDir,
}

/// A free loopback port (free when asked; the JVM binds it soon after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ApacheKafka {
    /// Starts a node with [`KafkaOptions::default`]: see [`ApacheKafka::start_with`].
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(KafkaOptions::default())
    }

    /// Starts a node: fetches the jars unless `options` names a classpath, makes a fresh
    /// data dir, formats its storage, starts the JVM on free loopback ports and waits
    /// until it answers a Metadata request naming itself (two minutes at most). Fails, with
    /// the end of the node's log, if it exits or does not answer in time.
    pub fn start_with(options: KafkaOptions) -> anyhow::Result<Self> {
        let classpath = match options.classpath {
            Some(classpath) => classpath,
            None => broker_classpath(None)?,
        };
        let dir = match &options.parent_dir {
            Some(parent) => {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
                tempfile::Builder::new()
                    .prefix("apache-kafka-")
                    .tempdir_in(parent)?
            }
            None => tempfile::Builder::new().prefix("apache-kafka-").tempdir()?,
        };
        let (port, controller) = (free_port()?, free_port()?);
        let bootstrap = format!("127.0.0.1:{port}");
        let properties = dir.path().join("server.properties");
        let mut settings = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://{bootstrap},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://{bootstrap},CONTROLLER://127.0.0.1:{controller}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={}\n\
             offsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n",
            dir.path().join("data").display()
        );
        // java.util.Properties keeps the last value of a name given twice.
        for (name, value) in &options.properties {
            settings.push_str(&format!("{name}={value}\n"));
        }
        std::fs::write(&properties, settings)?;
        // Kafka's default logging (INFO), into a file of the node's dir.
        let log4j = dir.path().join("log4j2.properties");
        std::fs::write(
            &log4j,
            format!(
                "rootLogger.level=INFO\n\
                 rootLogger.appenderRef.file.ref=file\n\
                 appender.file.type=File\n\
                 appender.file.name=file\n\
                 appender.file.fileName={}\n\
                 appender.file.layout.type=PatternLayout\n\
                 appender.file.layout.pattern=[%d] %p %m (%c)%n\n",
                dir.path().join("server.log").display()
            ),
        )?;
        let log4j_option = format!("-Dlog4j2.configurationFile={}", log4j.display());

        let format = Command::new("java")
            .arg(&log4j_option)
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
            .args(["-t", CLUSTER_ID, "--standalone", "-c"])
            .arg(&properties)
            .stdin(Stdio::null())
            .output()
            .context("cannot run java")?;
        anyhow::ensure!(
            format.status.success(),
            "formatting Kafka's storage failed: {}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );

        let child = Command::new("java")
            .args(&options.jvm_options)
            .arg(&log4j_option)
            .args(["-cp", &classpath, "kafka.Kafka"])
            .arg(&properties)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.txt"))?)
            .stderr(std::fs::File::create(dir.path().join("stderr.txt"))?)
            .spawn()
            .context("cannot run java")?;
        let mut kafka = ApacheKafka {
            child,
            bootstrap,
            dir,
        };
        kafka.wait_until_up()?;
        Ok(kafka)
    }

    /// Waits for the listener, then for a Metadata answer naming one broker.
    fn wait_until_up(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        // Connect first: librdkafka would log every refused connection.
        while TcpStream::connect(&self.bootstrap).is_err() {
            self.ensure_running()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "Apache Kafka did not listen on {} within {} s",
                self.bootstrap,
                START_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()?;
        loop {
            self.ensure_running()?;
            match client.fetch_metadata(None, Duration::from_secs(1)) {
                Ok(metadata) if !metadata.brokers().is_empty() => return Ok(()),
                Ok(_) | Err(_) if Instant::now() < deadline => {}
                Ok(_) => anyhow::bail!("Apache Kafka named no broker"),
                Err(e) => anyhow::bail!("Apache Kafka did not answer Metadata: {e}"),
            }
        }
    }

    /// Fails, with the end of its logs, if the JVM has exited.
    fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "Apache Kafka exited ({status}):\n{}\n{}",
                tail(&self.dir.path().join("stderr.txt"), 20),
                tail(&self.dir.path().join("server.log"), 20)
            );
        }
        Ok(())
    }

    /// The `host:port` of its PLAINTEXT listener, for a client's `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// The JVM's process id (for [`crate::process::cpu_seconds`] and
    /// [`crate::process::peak_rss_kib`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's dir: `server.properties`, `server.log` (Kafka's log), the data under
    /// `data/`. Removed when the node is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1, the broker's
    /// topic defaults) and waits until each partition has a leader.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let results = runtime.block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT)),
        ))?;
        for result in results {
            if let Err((name, code)) = result {
                anyhow::bail!("creating {name} on Apache Kafka failed: {code}");
            }
        }
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()?;
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        loop {
            let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(5))?;
            let ready = metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions().iter().all(|p| p.leader() >= 0)
            });
            if ready {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{topic} has no leader on Apache Kafka after {} s",
                TOPIC_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the node as its stop script does (SIGTERM) and waits for the JVM to exit;
    /// kills it, and fails, if it has not within a minute. The data dir is removed.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let (_, killed) = terminate(&mut self.child, STOP_TIMEOUT)?;
        anyhow::ensure!(
            !killed,
            "Apache Kafka did not stop within {} s of SIGTERM: killed",
            STOP_TIMEOUT.as_secs()
        );
        Ok(())
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        // After `stop` the child has been reaped and this does nothing; the data dir is
        // removed when `dir` is dropped, after this.
        if let Err(e) = terminate(&mut self.child, STOP_TIMEOUT) {
            tracing::warn!("cannot stop Apache Kafka (pid {}): {e:#}", self.child.id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_pom() {
        let version = kafka_version();
        assert!(
            version.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{version}"
        );
        assert_eq!(pom_kafka_version("no/such/pom.xml"), "?");
    }

    #[test]
    fn options_default_to_kafkas_start_script() {
        let options = KafkaOptions::default();
        assert_eq!(&options.jvm_options[..2], ["-Xmx1G", "-Xms1G"]);
        assert!(options.jvm_options.iter().any(|o| o == "-XX:+UseG1GC"));
        assert!(options.classpath.is_none() && options.properties.is_empty());
    }
}
