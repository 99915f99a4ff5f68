//! `take(n, within)`: an agent's events in batches (Faust's
//! `stream.take(max_, within=..)`).

use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _};

use crate::current::request;
use crate::error::Result;
use crate::event::Event;

/// Holds (`Some(offset)`) or releases (`None`) the commits of the events'
/// partition while a batch is being gathered or processed.
async fn hold(topic: &str, partition: u32, offset: Option<u64>) -> Result<()> {
    let topic = topic.to_owned();
    request(
        || "take".to_owned(),
        move |_, ctx| {
            ctx.hold_commit(&topic, partition, offset);
            Ok(())
        },
    )
    .await
}

/// The batches of `events`: up to `max` events each, or fewer when
/// `within` has passed since the first event of the batch. A batch's
/// events are not committed before the agent asks for the next batch: the
/// batch holds its partition's commits at its first event's offset, so a
/// crash before it is processed reads its events again.
pub(crate) fn take<S, K, V>(
    events: S,
    max: usize,
    within: Duration,
) -> BoxStream<'static, Result<Vec<Event<K, V>>>>
where
    S: Stream<Item = Result<Event<K, V>>> + Send + Unpin + 'static,
    K: Send + 'static,
    V: Send + 'static,
{
    let max = max.max(1);
    async_stream::stream! {
        let mut events = events;
        loop {
            let mut batch: Vec<Event<K, V>> = Vec::new();
            let mut deadline = None;
            let mut ended = false;
            while batch.len() < max {
                let next = match deadline.as_mut() {
                    None => events.next().await,
                    Some(sleep) => tokio::select! {
                        next = events.next() => next,
                        () = sleep => break,
                    },
                };
                match next {
                    None => {
                        ended = true;
                        break;
                    }
                    Some(Err(e)) => {
                        yield Err(e);
                    }
                    Some(Ok(event)) => {
                        if batch.is_empty() {
                            if let Err(e) = hold(&event.topic, event.partition, Some(event.offset)).await {
                                yield Err(e);
                            }
                            deadline = Some(Box::pin(tokio::time::sleep(within)));
                        }
                        batch.push(event);
                    }
                }
            }
            let held = batch.first().map(|e| (e.topic.clone(), e.partition));
            if !batch.is_empty() {
                yield Ok(batch);
            }
            // The agent asked for the next batch: this one is done.
            if let Some((topic, partition)) = held {
                if let Err(e) = hold(&topic, partition, None).await {
                    yield Err(e);
                }
            }
            if ended {
                return;
            }
        }
    }
    .boxed()
}
