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

    /// A file of `good` good rows, then a row with a bad field; and the words naming that
    /// line and field that its refusal must hold (e.g. `line 12, column 6 (price)`).
    fn bad_file(good: u32) -> (Vec<u8>, String);

    /// Asserts that nothing of the refused file at `key` was loaded, and that its people
    /// were told with `words` where the pipeline tells them.
    fn assert_nothing_loaded(&mut self, key: &str, words: &str)
        -> impl Future<Output = Result<()>>;

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

/// A file with a bad field goes to the DLQ at once (no retry can help), its reason naming the
/// file, the line and the field; nothing of it is loaded, and it stays where it landed.
pub async fn a_bad_line_is_dead_lettered_at_once_naming_it<P: FilePipelineUnderTest>() -> Result<()>
{
    let mut p = P::start().await?;
    let key = P::key("bad.csv");
    let (body, words) = P::bad_file(10);
    p.stack().put(P::BUCKET, &key, body).await?;
    let delivery = p.stack().deliver(P::FUNCTION).await?;
    assert!(
        delivery.received == 1 && delivery.failed.is_empty(),
        "permanent: dead-lettered, not retried: {delivery:?}"
    );
    let dead = p.stack().dead_letter_reasons(P::DLQ).await?;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].contains(&key) && dead[0].contains(&words),
        "{}",
        dead[0]
    );
    let bucket = p.stack().resource(P::BUCKET);
    assert_eq!(
        p.stack().keys(&bucket, &key).await?,
        vec![key.clone()],
        "the file stays where it landed"
    );
    p.assert_nothing_loaded(&key, &words).await
}
