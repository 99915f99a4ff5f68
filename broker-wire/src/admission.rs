//! `max.connections`: a slot per open connection, and refusals logged once per burst.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

/// The server's connection slots. A connection holds its slot (the permit) until it ends.
#[derive(Debug)]
pub(crate) struct ConnectionLimit {
    slots: Arc<Semaphore>,
    max: usize,
    /// Connections refused since the last one admitted.
    refused: u64,
}

impl ConnectionLimit {
    /// Room for `max` connections at once.
    pub(crate) fn new(max: usize) -> ConnectionLimit {
        let max = max.min(Semaphore::MAX_PERMITS);
        ConnectionLimit {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: 0,
        }
    }

    /// A slot for the connection from `peer`, or `None` when every slot is taken: the
    /// caller closes the connection. The first refusal of a burst is logged as a warning,
    /// and the count of refusals when a connection is admitted again.
    pub(crate) fn admit(&mut self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                if self.refused > 0 {
                    info!(
                        refused = self.refused,
                        max_connections = self.max,
                        "a connection slot is free again; connections refused meanwhile: {}",
                        self.refused
                    );
                    self.refused = 0;
                }
                Some(slot)
            }
            Err(_) => {
                if self.refused == 0 {
                    warn!(
                        max_connections = self.max,
                        %peer,
                        "max.connections reached: new connections are closed at once until \
                         one closes (logged once per burst)"
                    );
                }
                self.refused += 1;
                None
            }
        }
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_refused_and_freed() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut limit = ConnectionLimit::new(2);
        let a = limit.admit(peer).expect("a slot");
        let b = limit.admit(peer).expect("a slot");
        assert_eq!(limit.open(), 2);
        assert!(limit.admit(peer).is_none());
        assert!(limit.admit(peer).is_none());
        assert_eq!(limit.refused, 2);
        drop(a);
        assert_eq!(limit.open(), 1);
        let _c = limit.admit(peer).expect("the slot a freed");
        assert_eq!(limit.refused, 0, "the burst is over");
        drop(b);
        assert_eq!(limit.open(), 1);
    }

    /// Log lines written while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_burst_of_refusals_is_logged_once() {
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut limit = ConnectionLimit::new(1);
        let log = logged(|| {
            for _ in 0..2 {
                let slot = limit.admit(peer).expect("a slot");
                for _ in 0..100 {
                    assert!(limit.admit(peer).is_none());
                }
                drop(slot);
            }
            let _slot = limit.admit(peer).expect("a slot");
        });
        // Two bursts: a warning and an all-clear each, not a line per connection.
        assert_eq!(log.lines().count(), 4, "{log}");
        assert_eq!(log.matches("max.connections reached").count(), 2, "{log}");
        assert_eq!(
            log.matches("connections refused meanwhile: 100").count(),
            2,
            "{log}"
        );
    }

    #[test]
    fn kafkas_unbounded_default_fits() {
        let mut limit = ConnectionLimit::new(i32::MAX as usize);
        assert!(limit.admit("127.0.0.1:1".parse().unwrap()).is_some());
    }
}
