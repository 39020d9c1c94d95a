//! Group commit: one task takes the writes waiting in its queue, up to a batch's worth, and
//! hands them to a function that writes them all in one transaction, then answers each caller.
//!
//! Committing every write alone makes throughput the inverse of one transaction's latency, and on
//! small machines that latency is dominated not by fsync but by the round trips between the async
//! runtime and the database (a thread hop per statement for SQLite, a network hop for
//! PostgreSQL). A batch pays those once. Under light load a batch is a single write and nothing
//! waits for company. Used for change submissions ([`crate::submissions`]) and model version
//! registrations ([`crate::inventory`]).

use crate::StoreError;
use std::future::Future;
use tokio::sync::{mpsc, oneshot};

/// A write waiting for its batch, with where its answer goes.
pub(crate) struct Job<T, R> {
    pub(crate) item: T,
    pub(crate) reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<T, R> Job<T, R> {
    pub(crate) fn answer(self, result: Result<R, StoreError>) {
        // The caller may have gone (its request was cancelled); the write stands regardless.
        let _ = self.reply.send(result);
    }
}

/// The queue in front of one batch writer; cheap to clone.
pub(crate) struct Batcher<T, R> {
    queue: mpsc::Sender<Job<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Batcher {
            queue: self.queue.clone(),
        }
    }
}

impl<T, R> std::fmt::Debug for Batcher<T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the writer task: `write` gets up to `max` jobs at a time and must answer each. The
    /// task ends when the last handle is dropped.
    pub(crate) fn start<F, Fut>(max: usize, mut write: F) -> Batcher<T, R>
    where
        F: FnMut(Vec<Job<T, R>>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let (queue, mut jobs) = mpsc::channel::<Job<T, R>>(4 * max);
        tokio::spawn(async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < max {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                write(batch).await;
            }
        });
        Batcher { queue }
    }

    /// Queues `item` and waits until its batch is written (or failed).
    pub(crate) async fn call(&self, item: T) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Config("the store is shutting down".into());
        self.queue
            .send(Job { item, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
