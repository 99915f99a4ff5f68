//! The HTTP endpoint of a running streams app: interactive queries over
//! its state stores (Kafka's `KafkaStreams#store`, `queryMetadataForKey`
//! and `streamsMetadataForStore`), as JSON.
//!
//! Set `application.server = host:port` in the app's configuration, start
//! the app, then serve it:
//!
//! ```no_run
//! # async fn run(topology: streams_core::Topology) -> Result<(), Box<dyn std::error::Error>> {
//! use broker_embedded::Broker;
//! use streams_core::{StreamsApp, StreamsConfig};
//! use streams_http::HttpServer;
//!
//! let broker = Broker::in_memory().await?;
//! let config = StreamsConfig::new("word-count").with_application_server("127.0.0.1:8080");
//! let mut app = StreamsApp::new(topology, config, broker);
//! app.start().await?;
//! let http = HttpServer::start(&app).await?;
//! // curl http://127.0.0.1:8080/stores/word-counts/keys/the
//! http.shutdown().await;
//! app.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Routes (every answer is JSON; errors are `{"error": "...", "status": N}`):
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /stores` | every store: name, kind, key and value formats, the tasks of this instance that hold it, approximate entries |
//! | `GET /stores/{store}/keys/{key}` | the value of a key; forwarded to the instance that owns it |
//! | `GET /stores/{store}?from=&to=&limit=&cursor=` | a page of this instance's entries, `next_cursor` continues |
//! | `GET /stores/{store}/keys/{key}/windows?from=&to=` | the windows or sessions of a key (window and session stores) |
//! | `GET /stores/{store}/keys/{key}/metadata` | the partition and the instance that own a key |
//! | `GET /stores/{store}/instances`, `GET /instances` | which instance hosts what |
//!
//! Keys and values are rendered through the stores' serdes
//! ([`streams_core::SerdeFormat`]): JSON as it is, strings, numbers,
//! bytes as base64. Unknown store or key: 404; a key the key serde cannot
//! read, bad parameters, bad UTF-8 in the path: 400; a store restoring
//! from its changelog: 503 with the progress; a request target over 4 KiB:
//! 414; with `http.auth.token` set, a request without
//! `Authorization: Bearer <token>`: 401. `docs/operations.md` has the
//! details.

mod api_error;
mod cursor;
mod error;
mod proxy;
mod render;
mod routes;
mod server;
mod state;
mod stores;

pub use error::{HttpError, Result};
pub use proxy::FORWARDED_HEADER;
pub use server::{HttpServer, HttpServerBuilder};
