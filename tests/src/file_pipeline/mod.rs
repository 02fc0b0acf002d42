//! What every file pipeline (P1, P2, P3) owes its users, written once. Each pipeline
//! implements [`FilePipelineUnderTest`] once, in its module here: its end-to-end file runs
//! these scenarios with it, and the soak (`crate::soak`) drives and checks it by the same
//! impl — so a new file pipeline gets the whole contract, and its place in the soak, by one
//! impl (and one line in the soak's list).

pub mod dynamodb;
pub mod mysql;
pub mod orders;
pub mod price_index;

use crate::soak::{Input, Report, Rig};
use crate::LocalStack;
use anyhow::Result;
use std::collections::BTreeSet;
use std::future::Future;
use std::ops::Range;
use std::time::Duration;

/// A file pipeline as the shared scenarios and the soak drive it.
pub trait FilePipelineUnderTest: Sized {
    /// The function consuming the pipeline's queue.
    const FUNCTION: &'static str;
    /// Its queue and dead-letter queue (template logical ids).
    const QUEUE: &'static str;
    /// The dead-letter queue of `QUEUE`.
    const DLQ: &'static str;
    /// The bucket its files land in (a template logical id).
    const BUCKET: &'static str;
    /// A well-formed line with a bad field (ending in a newline): nothing of a file holding
    /// it may load.
    const BAD_LINE: &'static str;
    /// How the soak names it and shapes its files.
    const SOAK: Soak;

    /// The pipeline's stack, ready for a file: the S3 test event consumed.
    fn start() -> impl Future<Output = Result<Self>>;

    /// Its local stack.
    fn stack(&mut self) -> &mut LocalStack;

    /// The key of a file called `name` that the pipeline takes.
    fn key(name: &str) -> String;

    /// A good file, with a header, of the rows numbered `rows` (each number names one row
    /// of the target, so files with disjoint numbers load disjoint rows).
    fn rows(rows: Range<u32>) -> String;

    /// The words naming `BAD_LINE` as line `line` of a file, which its refusal must hold
    /// (e.g. `line 12, column 6 (price)`).
    fn bad_words(line: u32) -> String;

    /// A file of `rows` rows with other values than [`FilePipelineUnderTest::file`]'s, as a
    /// corrected upload has.
    fn changed_file(rows: u32) -> Vec<u8>;

    /// Keys under the pipeline's notification that none of its datasets owns, each with words
    /// of the reason its refusal must give.
    fn unknown_keys() -> Vec<(String, &'static str)>;

    /// Does what a first delivery of the file at `key` (version `version`) did before it died
    /// between its load and its end: the load committed; the archive, audit and email not done.
    fn loaded_by_a_delivery_that_died(
        &mut self,
        key: &str,
        version: &str,
    ) -> impl Future<Output = Result<()>>;

    /// Asserts that what the pipeline serves of `key` is version `version`, the
    /// [`FilePipelineUnderTest::changed_file`] of `rows` rows.
    fn assert_serves(
        &mut self,
        key: &str,
        version: &str,
        rows: u32,
    ) -> impl Future<Output = Result<()>>;

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

    /// The soak's `n`-th file: the folder it lands in and the dataset it is for; None when
    /// the pipeline takes no more files.
    fn soak_place(n: u32) -> Option<(String, String)>;

    /// The names of the soak's `pending` inputs (the pipeline's own) that its target now
    /// shows complete.
    fn soak_completed(
        rig: &Rig,
        pending: &[&Input],
    ) -> impl Future<Output = Result<BTreeSet<String>>> + Send;

    /// The soak's target read back against its `inputs` (the pipeline's own): a line for
    /// the report, and what was lost, duplicated or stray tallied.
    fn soak_reconcile(
        rig: &Rig,
        inputs: &[&Input],
        report: &mut Report,
    ) -> impl Future<Output = Result<()>> + Send;

    /// A good file of `rows` rows (numbered from 0).
    fn file(rows: u32) -> Vec<u8> {
        Self::rows(0..rows).into_bytes()
    }

    /// A file of `good` good rows, then `BAD_LINE`; and the words its refusal must hold.
    fn bad_file(good: u32) -> (Vec<u8>, String) {
        let text = Self::rows(0..good) + Self::BAD_LINE;
        (text.into_bytes(), Self::bad_words(good + 2))
    }
}

/// How the soak names a file pipeline and shapes its files.
pub struct Soak {
    /// Its name in the report ("P1 MySQL").
    pub name: &'static str,
    /// The start of its file names ("p1"), which tells its inputs apart in the run.
    pub tag: &'static str,
    /// A file lands every this long.
    pub every: Duration,
    /// Sizes in rows, picked at random.
    pub sizes: &'static [u32],
    /// Every n-th file is bad, every m-th good one is uploaded twice.
    pub bad_every: u32,
    pub twice_every: u32,
    /// Whether its good files leave landing for the archive bucket, one copy per upload.
    pub archives: bool,
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
    assert_nothing_dead_lettered(&mut p).await
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

/// A good file: loaded once, with all the pipeline does around a load, and nothing
/// dead-lettered. Gives the pipeline for its own further checks of the file `key("good.csv")`
/// of 20 rows.
pub async fn a_good_file_loads_once<P: FilePipelineUnderTest>() -> Result<P> {
    let mut p = P::start().await?;
    let key = P::key("good.csv");
    let version = p.stack().put(P::BUCKET, &key, P::file(20)).await?;
    deliver_all(&mut p).await?;
    p.assert_loaded_once(&key, &version, 20).await?;
    assert_nothing_dead_lettered(&mut p).await?;
    Ok(p)
}

/// Keys no dataset owns: each dead-lettered at once with its reason, left where it landed,
/// and operations told why (the dataset's people are unknown: there is no dataset).
pub async fn an_unknown_key_is_refused_and_operations_told<P: FilePipelineUnderTest>() -> Result<()>
{
    let mut p = P::start().await?;
    let unknown = P::unknown_keys();
    assert!(!unknown.is_empty(), "the scenario needs a key to refuse");
    for (key, _) in &unknown {
        p.stack().put(P::BUCKET, key, P::file(1)).await?;
    }
    deliver_all(&mut p).await?;
    let dead = p.stack().dead_letter_reasons(P::DLQ).await?;
    assert_eq!(dead.len(), unknown.len(), "{dead:?}");
    let emails = p.stack().sent_emails().await?;
    let bucket = p.stack().resource(P::BUCKET);
    for (key, why) in &unknown {
        assert!(
            dead.iter().any(|reason| reason.contains(key.as_str())),
            "{key}: {dead:?}"
        );
        let (to, _, body) = emails
            .iter()
            .find(|(_, subject, _)| subject.contains(&format!("REFUSED {key}")))
            .ok_or_else(|| anyhow::anyhow!("no refusal email for {key}: {emails:?}"))?;
        assert_eq!(to, &["ops@example.com".to_owned()]);
        assert!(
            body.contains(why) && body.contains("stays in landing"),
            "{body}"
        );
        assert_eq!(p.stack().keys(&bucket, key).await?, vec![key.clone()]);
    }
    assert_eq!(emails.len(), unknown.len(), "{emails:?}");
    Ok(())
}

/// A corrected upload lands while the first upload's notification is away being retried; that
/// notification comes back after the correction was loaded. Every delivery is done, nothing
/// is dead-lettered, and what the pipeline serves of the key is the correction.
pub async fn a_newer_version_wins_over_an_older_one_delivered_late<P: FilePipelineUnderTest>(
) -> Result<()> {
    let mut p = P::start().await?;
    let key = P::key("corrected.csv");
    let queue = p.stack().resource(P::QUEUE);
    p.stack().put(P::BUCKET, &key, P::file(4)).await?;
    let late = p.stack().take(&queue).await?;
    assert_eq!(late.len(), 1, "{late:?}");
    let newer = p.stack().put(P::BUCKET, &key, P::changed_file(6)).await?;
    deliver_all(&mut p).await?;
    p.stack().send(&queue, &late[0]).await?;
    deliver_all(&mut p).await?;
    p.assert_serves(&key, &newer, 6).await?;
    assert_nothing_dead_lettered(&mut p).await
}

/// A delivery loaded the file and died before it finished; SQS delivers the message again:
/// the load is not repeated, and the rest is done once.
pub async fn a_redelivery_after_a_load_that_died_completes_it_once<P: FilePipelineUnderTest>(
) -> Result<P> {
    let mut p = P::start().await?;
    let key = P::key("died.csv");
    let version = p.stack().put(P::BUCKET, &key, P::file(8)).await?;
    p.loaded_by_a_delivery_that_died(&key, &version).await?;
    deliver_all(&mut p).await?;
    p.assert_loaded_once(&key, &version, 8).await?;
    assert_nothing_dead_lettered(&mut p).await?;
    Ok(p)
}

/// Delivers until the queue is empty; no delivery may leave a record to be retried.
async fn deliver_all<P: FilePipelineUnderTest>(p: &mut P) -> Result<()> {
    loop {
        let delivery = p.stack().deliver(P::FUNCTION).await?;
        assert!(
            delivery.failed.is_empty() && delivery.function_error.is_none(),
            "{delivery:?}\n{}",
            p.stack().function_log(P::FUNCTION)
        );
        if delivery.received == 0 {
            return Ok(());
        }
    }
}

async fn assert_nothing_dead_lettered<P: FilePipelineUnderTest>(p: &mut P) -> Result<()> {
    let dead = p.stack().dead_letter_reasons(P::DLQ).await?;
    assert!(
        dead.is_empty(),
        "{dead:?}\n{}",
        p.stack().function_log(P::FUNCTION)
    );
    Ok(())
}
