//! Appends of batches a client encoded: a Kafka producer's record batch, checked and stored
//! as it was sent, with only the broker's fields (base offset, leader epoch, and the append
//! time under `LogAppendTime`) written into it, and recompressed only when the topic's
//! `compression.type` names another codec than the producer's.

use super::{AppendInfo, Log};
use crate::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use crate::config::TimestampType;
use crate::error::{BrokerError, Result};
use crate::record::ProducerFields;

impl Log {
    /// Appends one record batch (v2) as a producer sent it and returns where it went.
    ///
    /// The batch is checked whole first, as Kafka's log validator does: CRC, every record,
    /// offset deltas `0..count`, no control bit (markers are the broker's), a key on every
    /// record of a compacted topic, `max.message.bytes`, and the producer's epoch and
    /// sequence when it has a producer id (a duplicate of one of its last 5 batches is
    /// acknowledged with the original offsets and not written again). Then its base offset is
    /// set to the log end offset, its leader epoch to 0 and, under `LogAppendTime`, its max
    /// timestamp to now; nothing else of the producer's bytes changes.
    pub(crate) fn append_batch(&mut self, sent: &[u8]) -> Result<AppendInfo> {
        self.check_writable()?;
        if sent.len() < BATCH_HEADER_LEN {
            return Err(self.corrupt_record(format!(
                "a record batch of {} bytes is shorter than its {BATCH_HEADER_LEN}-byte header",
                sent.len()
            )));
        }
        let mut buf = std::mem::take(&mut self.encode_buf);
        buf.clear();
        buf.extend_from_slice(sent);
        let result = self.append_batch_in(&mut buf);
        self.encode_buf = buf;
        result
    }

    fn append_batch_in(&mut self, buf: &mut Vec<u8>) -> Result<AppendInfo> {
        // The fields a producer leaves to the broker, outside the CRC.
        batch::set_base_offset(buf, 0);
        batch::reset_leader_epoch(buf);
        let header = batch::validate_batch(buf).map_err(|e| self.corrupt_record(e.to_string()))?;
        if header.size() != buf.len() {
            return Err(self.invalid_record(format!(
                "{} bytes after the record batch: a produce request carries exactly one batch \
                 per partition",
                buf.len() - header.size()
            )));
        }
        if header.is_control() {
            return Err(self.invalid_record(
                "a control batch: transaction markers are written by the broker only".into(),
            ));
        }
        if header.record_count < 1 || header.last_offset_delta != header.record_count - 1 {
            return Err(self.invalid_record(format!(
                "a batch of {} records with last offset delta {}: a producer's batch numbers \
                 its records 0 to count - 1",
                header.record_count, header.last_offset_delta
            )));
        }
        // A topic whose `compression.type` names a codec stores every batch with it.
        let target = self.config.compression_type.target(header.compression());
        let header = if target == header.compression() {
            header
        } else {
            *buf =
                batch::recompress(buf, target).map_err(|e| self.invalid_record(e.to_string()))?;
            BatchHeader::parse(buf).map_err(|e| self.corrupt_record(e.to_string()))?
        };
        let size = buf.len() as u64;
        if size > self.config.max_message_bytes {
            return Err(BrokerError::RecordTooLarge {
                topic: self.topic.clone(),
                size,
                max: self.config.max_message_bytes,
            });
        }
        if self.config.cleanup_policy.compact {
            let (decoded, _) = batch::decode_batch(&bytes::Bytes::copy_from_slice(buf))
                .map_err(|e| self.corrupt_record(e.to_string()))?;
            if decoded.records.iter().any(|r| r.key.is_none()) {
                return Err(self.invalid_record("compacted topic requires a key".into()));
            }
        }
        let producer = ProducerFields {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            transactional: header.is_transactional(),
            control: false,
        };
        let count = header.record_count as u32;
        if producer.producer_id >= 0 {
            if let Some(duplicate) = self.check_producer(producer, count)? {
                return Ok(duplicate);
            }
        }
        let now = self.time.now_ms();
        let log_append_time = match self.config.message_timestamp_type {
            TimestampType::LogAppendTime => {
                batch::stamp_log_append_time(buf, &header, now);
                Some(now)
            }
            TimestampType::CreateTime => None,
        };
        let base_offset = self.log_end_offset();
        batch::set_base_offset(buf, base_offset);
        let header = BatchHeader {
            base_offset,
            max_timestamp: log_append_time.unwrap_or(header.max_timestamp),
            ..header
        };
        self.write_batch(buf, &header, now)?;
        let info = AppendInfo {
            base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
            log_append_time,
        };
        if producer.producer_id >= 0 {
            self.producers.on_batch(
                producer.producer_id,
                producer.producer_epoch,
                producer.base_sequence,
                count,
                producer.transactional,
                info.base_offset,
                info.last_offset,
                info.timestamp,
            );
        }
        Ok(info)
    }

    fn corrupt_record(&self, reason: String) -> BrokerError {
        BrokerError::CorruptRecord {
            topic: self.topic.clone(),
            reason,
        }
    }
}
