//! DescribeProducers: the idempotent and transactional producers with state in each
//! partition asked for (what `kafka-transactions.sh describe-producers` prints).

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::super::errors::response_error;
use crate::context::Context;

pub(crate) async fn respond(
    context: &Context,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.0.as_str().to_owned();
        let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
        for index in topic.partition_indexes {
            let response = PartitionResponse::default().with_partition_index(index);
            let Ok(partition) = u32::try_from(index) else {
                partitions
                    .push(response.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            partitions.push(
                match context.broker.describe_producers(&name, partition).await {
                    Ok(active) => response.with_active_producers(
                        active
                            .into_iter()
                            .map(|p| {
                                ProducerState::default()
                                    .with_producer_id(ProducerId(p.producer_id))
                                    .with_producer_epoch(i32::from(p.epoch))
                                    .with_last_sequence(p.last_sequence)
                                    .with_last_timestamp(p.last_timestamp)
                                    .with_coordinator_epoch(-1)
                                    .with_current_txn_start_offset(
                                        p.txn_start_offset.map_or(-1, |o| o as i64),
                                    )
                            })
                            .collect(),
                    ),
                    Err(e) => response
                        .with_error_code(response_error(&e).code())
                        .with_error_message(Some(StrBytes::from_string(e.to_string()))),
                },
            );
        }
        topics.push(
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
