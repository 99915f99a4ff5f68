//! [`AgentError`]: what can go wrong in an app of agents.

use streams_core::{BoxError, StreamsError};

/// An error of an app of agents, its tables or its topics.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// An agent returned an error; the app stops with it.
    #[error("agent '{agent}' failed: {source}")]
    AgentFailed {
        /// The agent's name.
        agent: String,
        /// What the agent returned.
        #[source]
        source: BoxError,
    },

    /// A table or a topic's `send` was used outside the body of an agent
    /// being driven (from a spawned task, a timer or another thread).
    #[error("{what} can only be used in an agent's own body (not from a spawned task, a timer or another thread)")]
    OutsideAgent {
        /// What was used, e.g. "table 'counts'".
        what: String,
    },

    /// A table was used with a key of another partition than the event
    /// the agent is processing.
    #[error(
        "table '{table}': the key belongs to partition {key_partition}, but agent '{agent}' is \
         processing partition {partition} of '{topic}'; a table is partitioned like the agent's \
         input, so group_by the stream by the table's key first"
    )]
    NotCoPartitioned {
        /// The table.
        table: String,
        /// The agent.
        agent: String,
        /// The topic the agent reads.
        topic: String,
        /// The partition being processed.
        partition: u32,
        /// The partition of the key used.
        key_partition: u32,
    },

    /// A name was declared twice.
    #[error("{kind} '{name}' is declared twice; names must be unique")]
    Duplicate {
        /// "agent", "table" or "topic".
        kind: &'static str,
        /// The name.
        name: String,
    },

    /// A table has no value for a key and no default.
    #[error(
        "table '{table}' has no value for the key and no default; give one with Table::default"
    )]
    NoDefault {
        /// The table.
        table: String,
    },

    /// The agent's task closed (its partition was revoked, or the app
    /// stopped) before an operation could complete.
    #[error("{what}: the agent's task closed before the operation completed")]
    TaskClosed {
        /// The operation.
        what: String,
    },

    /// An agent did not answer an [`crate::Agent::ask`] in time.
    #[error("agent '{agent}' did not answer within {timeout:?}")]
    AskTimedOut {
        /// The agent asked.
        agent: String,
        /// How long the asker waited.
        timeout: std::time::Duration,
    },

    /// The app stopped with an error of the runtime (which names the agent
    /// when an agent failed).
    #[error("the app stopped: {0}")]
    Stopped(String),

    /// A command-line argument is wrong.
    #[error("{0}")]
    Usage(String),

    /// An error of the streams runtime, its stores or its serdes.
    #[error(transparent)]
    Streams(Box<StreamsError>),

    /// An error of the embedded broker.
    #[error(transparent)]
    Broker(Box<broker_embedded::BrokerError>),
}

impl From<StreamsError> for AgentError {
    fn from(e: StreamsError) -> Self {
        Self::Streams(Box::new(e))
    }
}

impl From<broker_embedded::BrokerError> for AgentError {
    fn from(e: broker_embedded::BrokerError) -> Self {
        Self::Broker(Box::new(e))
    }
}

/// A result with [`AgentError`].
pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// What an agent returns: any error type converts with `?`.
pub type AgentResult = std::result::Result<(), BoxError>;
