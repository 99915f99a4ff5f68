//! [`RunningApp`]: an app whose agents run.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use broker_embedded::{Broker, Producer};
use streams_core::{AppState, StreamsApp};

use crate::error::{AgentError, Result};
use crate::table::Table;
use crate::topic::{producer_record, Topic};

/// An app whose agents run; see [`crate::App::start`].
pub struct RunningApp {
    pub(crate) app: StreamsApp,
    pub(crate) broker: Broker,
    pub(crate) input_topics: Vec<String>,
    pub(crate) timers: Vec<tokio::task::JoinHandle<()>>,
    /// The error of the first timer that failed.
    pub(crate) timer_failed: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningApp")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl RunningApp {
    /// The broker it runs on.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The streams app the agents run in (its metrics, its state
    /// listener, its stores).
    pub fn streams_app(&self) -> &StreamsApp {
        &self.app
    }

    /// The topics the agents read: their topics and the repartition topics
    /// of their `group_by`, sorted.
    pub fn input_topics(&self) -> &[String] {
        &self.input_topics
    }

    /// The runtime's state.
    pub fn state(&self) -> AppState {
        self.app.state()
    }

    /// Waits until the app stops: `Ok` when it was stopped, the error
    /// when an agent (or the runtime) failed (then [`RunningApp::stop`]
    /// it).
    ///
    /// # Errors
    ///
    /// [`AgentError::Stopped`] with the runtime's error.
    pub async fn wait(&self) -> Result<()> {
        loop {
            let timer_failed = self
                .timer_failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(error) = timer_failed {
                return Err(AgentError::Stopped(error));
            }
            match self.app.state() {
                AppState::Error => {
                    let error = self
                        .app
                        .error()
                        .unwrap_or_else(|| "unknown error".to_owned());
                    return Err(AgentError::Stopped(error));
                }
                AppState::NotRunning => return Ok(()),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The entries of `table` in the partitions this app owns (read while
    /// it runs, as Kafka's interactive queries).
    ///
    /// # Errors
    ///
    /// A store error.
    pub fn table_entries<K, V>(&self, table: &Table<K, V>) -> Result<Vec<(K, V)>>
    where
        K: Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        Ok(self.app.store::<K, V>(table.name())?.all()?)
    }

    /// Sends a record to `topic` from outside the agents.
    ///
    /// # Errors
    ///
    /// A serde or broker error.
    pub async fn send<K: 'static, V: 'static>(
        &self,
        topic: &Topic<K, V>,
        key: Option<&K>,
        value: Option<&V>,
    ) -> Result<()> {
        let (key, value) = topic.encode(key, value)?;
        Producer::new(&self.broker)
            .send(producer_record(&topic.name, key, value))
            .await?;
        Ok(())
    }

    /// Stops the agents, committing what they finished.
    ///
    /// # Errors
    ///
    /// The runtime's error closing.
    pub async fn stop(mut self) -> Result<()> {
        for timer in &self.timers {
            timer.abort();
        }
        self.app.close().await?;
        Ok(())
    }
}
