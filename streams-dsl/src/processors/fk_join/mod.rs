//! The foreign-key table–table join (Kafka's `foreignkeyjoin` package):
//! the left table subscribes each of its rows to the right-table row of
//! its foreign key through a subscription topic keyed (and so partitioned)
//! by the foreign key; the right side keeps the subscriptions, answers
//! each one, and answers again every subscriber when its row changes,
//! through a response topic keyed by the left row's key; the left side
//! joins a response with its current row, unless the row changed since the
//! subscription (told by a hash of the value).

pub(crate) mod foreign_table_join;
pub(crate) mod response_join;
pub(crate) mod subscription_receive;
pub(crate) mod subscription_send;
mod wrappers;

pub(crate) use wrappers::{
    combined_key, foreign_key_prefix, value_hash, Instruction, ResponseWrapper,
    ResponseWrapperSerde, SubscriptionWrapper, SubscriptionWrapperSerde,
};
