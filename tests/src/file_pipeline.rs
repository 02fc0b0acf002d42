//! What every file pipeline (P1, P2, P3) owes its users, written once: each pipeline's
//! end-to-end file implements [`FilePipelineUnderTest`] for its own stack and runs these
//! scenarios, so a new file pipeline gets the whole contract by one impl.

use crate::LocalStack;
use anyhow::Result;
use std::future::Future;

/// A file pipeline as the shared scenarios drive it.
pub trait FilePipelineUnderTest: Sized {
    /// The function consuming the pipeline's queue.
    const FUNCTION: &'static str;
    /// Its queue and dead-letter queue (template logical ids).
    const QUEUE: &'static str;
    /// The dead-letter queue of `QUEUE`.
    const DLQ: &'static str;
    /// The bucket its files land in (a template logical id).
    const BUCKET: &'static str;

    /// The pipeline's stack, ready for a file: the S3 test event consumed.
    fn start() -> impl Future<Output = Result<Self>>;

    /// Its local stack.
    fn stack(&mut self) -> &mut LocalStack;

    /// The key of a file called `name` that the pipeline takes.
    fn key(name: &str) -> String;

    /// A good file of `rows` rows.
    fn file(rows: u32) -> Vec<u8>;

    /// Asserts that the file at `key` (version `version`, `rows` rows) was loaded exactly
    /// once, with all the pipeline does around a load (ledger, archive, audit, email).
    fn assert_loaded_once(
        &mut self,
        key: &str,
        version: &str,
        rows: u32,
    ) -> impl Future<Output = Result<()>>;
}

/// One notification delivered twice at the same time, in two execution environments, then
/// once more after both finished: one load, every delivery done, nothing dead-lettered.
pub async fn delivered_twice_at_once_and_again_later<P: FilePipelineUnderTest>() -> Result<()> {
    let mut p = P::start().await?;
    let key = P::key("twice.csv");
    let version = p.stack().put(P::BUCKET, &key, P::file(6)).await?;
    let queue = p.stack().resource(P::QUEUE);
    let notification = p.stack().peek(&queue).await?[0]
        .body()
        .unwrap_or_default()
        .to_owned();
    p.stack()
        .deliver_twice_at_once(P::FUNCTION, P::QUEUE, "twice.csv")
        .await?;
    p.stack().send(&queue, &notification).await?;
    let later = p.stack().deliver(P::FUNCTION).await?;
    assert_eq!((later.received, later.deleted), (1, 1), "{later:?}");
    p.assert_loaded_once(&key, &version, 6).await?;
    let dead = p.stack().dead_letter_reasons(P::DLQ).await?;
    assert!(
        dead.is_empty(),
        "{dead:?}\n{}",
        p.stack().function_log(P::FUNCTION)
    );
    Ok(())
}
