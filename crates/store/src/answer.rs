//! A query read's answer as a gRPC response stream: messages made on the
//! blocking pool ([`Chunks`]) and handed to the response ([`Answer`]).
//!
//! The response waits a moment ([`FIRST_WAIT`]) for the first message, and
//! the last message is flagged, so a small answer — one message, the usual
//! case for an aggregate over a few series — leaves with its headers and
//! trailers at once (and the gateway wakes once for it); a slow one gets its
//! headers after the wait, well inside the caller's deadline for them.

use std::pin::Pin;
use std::task::{Context, Poll};

use sundial_common::ErrorClass;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::Status;

use crate::service::status;

/// How long the response waits for the first message before its headers go.
const FIRST_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// A message and whether it is the answer's last.
type Item<R> = Result<(R, bool), Status>;

/// A streamed answer's messages batched into responses of about `limit` units
/// (values, windows), each sent once full; the channel is small, so the
/// reader waits for the gateway instead of buffering.
pub(crate) struct Chunks<M, R> {
    tx: mpsc::Sender<Item<R>>,
    pending: Vec<M>,
    units: usize,
    limit: usize,
    wrap: fn(Vec<M>, u64) -> R,
}

impl<M, R> Chunks<M, R> {
    /// Chunks sending to a new channel, and the [`Answer`] reading it.
    pub(crate) fn new(limit: usize, wrap: fn(Vec<M>, u64) -> R) -> (Self, mpsc::Receiver<Item<R>>) {
        let (tx, rx) = mpsc::channel(2);
        let chunks = Chunks {
            tx,
            pending: Vec::new(),
            units: 0,
            limit,
            wrap,
        };
        (chunks, rx)
    }

    /// False once the gateway went away.
    pub(crate) fn push(&mut self, m: M, units: usize) -> bool {
        self.pending.push(m);
        self.units += units;
        self.units < self.limit || self.flush()
    }

    fn flush(&mut self) -> bool {
        self.units = 0;
        if self.pending.is_empty() {
            return true;
        }
        let r = (self.wrap)(std::mem::take(&mut self.pending), 0);
        self.tx.blocking_send(Ok((r, false))).is_ok()
    }

    /// The last message, always sent: what is pending and the shard's schema
    /// stamp (read once the read is done).
    pub(crate) fn finish(mut self, stamp: u64) {
        let r = (self.wrap)(std::mem::take(&mut self.pending), stamp);
        let _ = self.tx.blocking_send(Ok((r, true)));
    }

    pub(crate) fn fail(self, s: Status) {
        let _ = self.tx.blocking_send(Err(s));
    }
}

/// The response stream of an answer [`Chunks`] sends: ends after the last
/// message (or an error) without waiting for the sender to go.
#[derive(Debug)]
pub struct Answer<R> {
    /// The first message, when it came within [`FIRST_WAIT`].
    head: Option<Result<R, Status>>,
    rx: mpsc::Receiver<Item<R>>,
    done: bool,
}

impl<R> Answer<R> {
    /// Waits a moment for the answer's first message.
    pub(crate) async fn first(mut rx: mpsc::Receiver<Item<R>>) -> Self {
        let (head, done) = match tokio::time::timeout(FIRST_WAIT, rx.recv()).await {
            Err(_) => (None, false),
            Ok(Some(Ok((r, last)))) => (Some(Ok(r)), last),
            Ok(Some(Err(s))) => (Some(Err(s)), true),
            Ok(None) => (Some(Err(ended())), true),
        };
        Answer { head, rx, done }
    }
}

/// The reading task ended without its last message (it panicked).
fn ended() -> Status {
    status(ErrorClass::Internal, "the read ended without an answer")
}

// Nothing in an answer is pinned in place (messages are moved out whole).
impl<R> Unpin for Answer<R> {}

impl<R> Stream for Answer<R> {
    type Item = Result<R, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(h) = self.head.take() {
            return Poll::Ready(Some(h));
        }
        if self.done {
            return Poll::Ready(None);
        }
        let next = match self.rx.poll_recv(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(n) => n,
        };
        self.done = !matches!(next, Some(Ok((_, false))));
        Poll::Ready(Some(match next {
            Some(Ok((r, _))) => Ok(r),
            Some(Err(s)) => Err(s),
            None => Err(ended()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    fn wrap(v: Vec<u32>, stamp: u64) -> (Vec<u32>, u64) {
        (v, stamp)
    }

    /// Messages come in order; the stream ends after the last one although
    /// its sender is still alive.
    #[tokio::test]
    async fn an_answer_ends_after_its_last_message() {
        let (mut out, rx) = Chunks::new(2, wrap);
        let keep = out.tx.clone();
        let task = tokio::task::spawn_blocking(move || {
            for i in 0..5 {
                assert!(out.push(i, 1));
            }
            out.finish(7);
        });
        let answer = Answer::first(rx).await;
        let got: Vec<_> = answer.map(|r| r.map_err(|s| s.code())).collect().await;
        assert_eq!(
            got,
            vec![Ok((vec![0, 1], 0)), Ok((vec![2, 3], 0)), Ok((vec![4], 7))]
        );
        task.await.ok();
        drop(keep);
    }

    /// A slow first message: the answer starts without it and still has it.
    #[tokio::test]
    async fn a_slow_first_message_still_comes() {
        let (out, rx) = Chunks::new(2, wrap);
        let task = tokio::task::spawn_blocking(move || {
            std::thread::sleep(FIRST_WAIT * 5);
            out.finish(3);
        });
        let answer = Answer::first(rx).await;
        assert!(answer.head.is_none());
        let got: Vec<_> = answer.map(|r| r.map_err(|s| s.code())).collect().await;
        assert_eq!(got, vec![Ok((Vec::<u32>::new(), 3))]);
        task.await.ok();
    }

    /// A reader that stops without finishing gives an error, not a short answer.
    #[tokio::test]
    async fn a_read_that_ends_early_is_an_error() {
        let (out, rx) = Chunks::<u32, _>::new(2, wrap);
        drop(out);
        let got: Vec<_> = Answer::first(rx).await.collect().await;
        assert_eq!(got.len(), 1);
        assert!(matches!(&got[0], Err(s) if s.code() == tonic::Code::Internal));
    }
}
