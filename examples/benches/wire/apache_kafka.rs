//! Apache Kafka as the wire benchmark's reference: a single node in KRaft combined mode
//! (broker and controller in one JVM) on loopback, with Kafka's defaults except what one
//! node needs (the replication factors of its internal topics), the heap of Kafka's start
//! script (`-Xmx1G -Xms1G`) and its JVM options.
//!
//! The jars come from Maven Central through `scripts/kafka-broker.sh`, which caches them
//! under the target dir.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::ClientConfig;

/// Kafka's start script's heap (`kafka-server-start.sh`).
const HEAP: [&str; 2] = ["-Xmx1G", "-Xms1G"];
/// Kafka's start script's JVM options (`kafka-run-class.sh`, `KAFKA_JVM_PERFORMANCE_OPTS`).
const JVM_OPTIONS: [&str; 6] = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
];
/// Any valid cluster id: the data dir is new at every run.
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";
/// How long the JVM may take to answer its first Metadata request.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a SIGTERM'd broker may take to shut down before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The version of Kafka that `scripts/kafka-broker.sh` fetches (its pom's `kafka.version`).
pub(crate) fn version(pom: &Path) -> String {
    std::fs::read_to_string(pom)
        .ok()
        .and_then(|text| {
            let start = text.find("<kafka.version>")? + "<kafka.version>".len();
            let end = start + text[start..].find("</kafka.version>")?;
            Some(text[start..end].trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

/// The broker's classpath, from `script` (which fetches the jars into `cache` the first
/// time); the error says why there is none (no Java, no Maven, no network).
pub(crate) fn classpath(script: &Path, cache: &Path) -> anyhow::Result<String> {
    let out = Command::new("bash")
        .arg(script)
        .arg(cache)
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let classpath = stdout.lines().last().unwrap_or_default().trim();
    if out.status.success() && !classpath.is_empty() {
        return Ok(classpath.to_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    anyhow::bail!("{} failed: {reason}", script.display())
}

/// A free loopback port (free when asked; the JVM binds it soon after).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a file, to explain a failure.
fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A running Apache Kafka node; killed when dropped, stopped cleanly by [`ApacheKafka::stop`].
pub(crate) struct ApacheKafka {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl ApacheKafka {
    /// Formats a data dir under `dir`, starts the node with `classpath` and waits until it
    /// answers a Metadata request.
    pub(crate) fn start(classpath: &str, dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let (port, controller) = (free_port()?, free_port()?);
        let addr = format!("127.0.0.1:{port}");
        let properties = dir.join("server.properties");
        std::fs::write(
            &properties,
            format!(
                "process.roles=broker,controller\n\
                 node.id=1\n\
                 controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://{addr},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://{addr},CONTROLLER://127.0.0.1:{controller}\n\
                 controller.listener.names=CONTROLLER\n\
                 inter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
                 log.dirs={}\n\
                 offsets.topic.replication.factor=1\n\
                 share.coordinator.state.topic.replication.factor=1\n\
                 share.coordinator.state.topic.min.isr=1\n\
                 transaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\n",
                dir.join("data").display()
            ),
        )?;
        // Kafka's default logging (INFO), into a file of the scratch dir.
        let log4j = dir.join("log4j2.properties");
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
                dir.join("server.log").display()
            ),
        )?;
        let log4j_option = format!("-Dlog4j2.configurationFile={}", log4j.display());

        let format = Command::new("java")
            .arg(&log4j_option)
            .args(["-cp", classpath, "kafka.tools.StorageTool", "format"])
            .args(["-t", CLUSTER_ID, "--standalone", "-c"])
            .arg(&properties)
            .stdin(Stdio::null())
            .output()?;
        anyhow::ensure!(
            format.status.success(),
            "formatting Kafka's storage failed: {}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );

        let child = Command::new("java")
            .args(HEAP)
            .args(JVM_OPTIONS)
            .arg(&log4j_option)
            .args(["-cp", classpath, "kafka.Kafka"])
            .arg(&properties)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.txt"))?)
            .stderr(std::fs::File::create(dir.join("stderr.txt"))?)
            .spawn()?;
        let mut kafka = ApacheKafka {
            child,
            addr,
            dir: dir.to_owned(),
        };
        kafka.wait_until_up()?;
        Ok(kafka)
    }

    /// Waits for the listener, then for a Metadata answer naming one broker.
    fn wait_until_up(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        // Connect first: librdkafka would log every refused connection.
        while TcpStream::connect(&self.addr).is_err() {
            self.ensure_running()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "Apache Kafka did not listen on {} within {} s",
                self.addr,
                START_TIMEOUT.as_secs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
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

    /// Fails, with the end of its log, if the JVM has exited.
    fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "Apache Kafka exited ({status}):\n{}\n{}",
                tail(&self.dir.join("stderr.txt"), 20),
                tail(&self.dir.join("server.log"), 20)
            );
        }
        Ok(())
    }

    /// The `host:port` of its PLAINTEXT listener.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The JVM's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1, the topic
    /// defaults of the broker) and waits until its partitions have a leader.
    pub(crate) fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .create()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let results = runtime.block_on(admin.create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))?;
        for result in results {
            if let Err((name, code)) = result {
                anyhow::bail!("creating {name} on Apache Kafka failed: {code}");
            }
        }
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .create()?;
        let deadline = Instant::now() + Duration::from_secs(30);
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
                "{topic} has no leader on Apache Kafka after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the node as its stop script does (SIGTERM), and waits for the JVM to exit;
    /// kills it if it has not within [`STOP_TIMEOUT`].
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                anyhow::bail!(
                    "Apache Kafka did not stop within {} s of SIGTERM: killed",
                    STOP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for ApacheKafka {
    fn drop(&mut self) {
        // After `stop` the child has been reaped and this does nothing.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
