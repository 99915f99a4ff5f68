//! The transaction coordinator's API for clients that speak Kafka's protocol: the requests
//! of Kafka's transactional producer (`InitProducerId`, `AddPartitionsToTxn`, `EndTxn`), and
//! the check every transactional produce passes.

use crate::broker::Broker;
use crate::error::Result;
use crate::TopicPartition;

impl Broker {
    /// `Ok` when a transactional batch of `producer_id` at `epoch` may be appended to `tp`:
    /// the producer holds `transactional_id` and added the partition to its open
    /// transaction. Otherwise `ProducerFenced` (a newer producer took the id),
    /// `InvalidTxnState` (the partition is not in the transaction) or the coordinator's
    /// error.
    pub async fn check_transactional_append(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &TopicPartition,
    ) -> Result<()> {
        self.inner
            .transactions
            .check_append(self, transactional_id, producer_id, epoch, tp)
    }
}
