//! The bounded channels between stages: a send that waits while the next stage is behind and a
//! receive that waits for work, each counting its waits in the stage's [`StageTimes`].
//!
//! Every source and stage moves its batches through these two, so a full channel (a slow stage
//! after it) is where backpressure shows, and a cancel ends any wait at once.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::metrics::StageTimes;

/// Receives the next message, or `None` once the channel is closed and empty or `cancel` fires.
/// Time spent waiting on an empty channel counts as the stage's idle time.
///
/// # Cancel safety
/// Safe: a message is either returned or left in the channel.
pub async fn recv<T>(
    rx: &async_channel::Receiver<T>,
    cancel: &CancellationToken,
    times: &StageTimes,
) -> Option<T> {
    if cancel.is_cancelled() {
        return None;
    }
    match rx.try_recv() {
        Ok(msg) => return Some(msg),
        Err(async_channel::TryRecvError::Closed) => return None,
        Err(async_channel::TryRecvError::Empty) => {}
    }
    let waiting = Instant::now();
    let msg = tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        msg = rx.recv() => msg.ok(),
    };
    times.idle(waiting.elapsed());
    msg
}

/// Sends `msg`, waiting while the channel is full; false when the receiver is gone or on cancel.
/// Time spent waiting on a full channel counts as the stage's blocked time.
pub async fn send<T>(
    tx: &async_channel::Sender<T>,
    msg: T,
    cancel: &CancellationToken,
    times: &StageTimes,
) -> bool {
    let msg = match tx.try_send(msg) {
        Ok(()) => {
            times.queued(tx.len());
            return true;
        }
        Err(async_channel::TrySendError::Closed(_)) => return false,
        Err(async_channel::TrySendError::Full(msg)) => msg,
    };
    let waiting = Instant::now();
    let sent = tokio::select! {
        biased;
        () = cancel.cancelled() => false,
        sent = tx.send(msg) => sent.is_ok(),
    };
    times.blocked(waiting.elapsed());
    times.queued(tx.len());
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original design's backpressure test: with room for 4, a consumer taking 50 ms an item
    /// holds the sender back. Of 10 sends, 4 fill the channel, 1 is taken at once, and each of
    /// the other 5 waits for the consumer: at least 250 ms. (A lower bound: a slow machine only
    /// makes it longer.)
    #[tokio::test]
    async fn a_full_channel_suspends_the_sender() {
        let (tx, rx) = async_channel::bounded(4);
        let consumer = tokio::spawn(async move {
            while rx.recv().await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        });
        let cancel = CancellationToken::new();
        let started = Instant::now();
        let times = StageTimes::default();
        for i in 0..10 {
            assert!(send(&tx, i, &cancel, &times).await);
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_millis(250),
            "10 sends took only {elapsed:?}"
        );
        drop(tx);
        consumer.await.unwrap();
    }
}
