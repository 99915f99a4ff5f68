//! [`Backend`]: the broker an app is handed to run on.

use std::sync::Arc;

use broker_embedded::Broker;

use crate::client::embedded::EmbeddedClients;
use crate::client::ClientSupplier;

mod sealed {
    use std::sync::Arc;

    use crate::client::ClientSupplier;

    /// The clients a backend makes; users cannot name it.
    #[derive(Debug)]
    pub struct Clients(pub(crate) Arc<dyn ClientSupplier>);

    /// What [`super::Backend`] requires, beyond the users' reach.
    pub trait IntoClients {
        /// The clients of an app on this backend.
        fn into_clients(self) -> Clients;
    }
}

/// A broker an app can be handed to run on, as [`crate::StreamsApp::new`]
/// takes it (Kafka Streams' `KafkaClientSupplier`, for the brokers that run
/// in the app's process): today the embedded [`Broker`], whose clients are
/// in-process calls. A Kafka cluster is reached by address instead, with
/// [`crate::StreamsApp::connect`] and `bootstrap.servers`.
///
/// The trait is sealed: the runtime's client roles (consumer, restore
/// consumer, producer, admin) stay inside `streams-core`.
pub trait Backend: sealed::IntoClients {}

impl sealed::IntoClients for Broker {
    fn into_clients(self) -> sealed::Clients {
        let clients: Arc<dyn ClientSupplier> = Arc::new(EmbeddedClients::new(self));
        sealed::Clients(clients)
    }
}

impl Backend for Broker {}

/// The clients of an app on `backend`.
pub(crate) fn clients_of(backend: impl Backend) -> Arc<dyn ClientSupplier> {
    backend.into_clients().0
}
