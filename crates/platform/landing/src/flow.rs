//! The one way a file pipeline handles a landing file: route the key (a key no one knows is
//! refused, operations are told, the message is dead-lettered), find the version to load (or
//! "already done" when it is gone), do the pipeline's work, archive the file, finish, and
//! email the outcome — on success once per file version, on failure when no retry is left.
//!
//! A pipeline plugs in by implementing [`FilePipeline`]; the loop lives here, once.

use crate::{archive_today, first_notice, to_load, LandingError, ObjectVersion};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_email::Mailer;
use landfall_failure::{Deadline, Disposition, FunctionError};
use landfall_s3_events::ObjectChange;
use landfall_sqs_batch::{process_created_objects, DeadLetters};
use std::future::Future;
use std::time::{Duration, Instant};

/// A pipeline that loads landing files: its rules, without the loop around them.
pub trait FilePipeline: Sync {
    /// What a key routes to: a dataset's data file, or another kind of file the pipeline
    /// knows (borrowing the pipeline's configuration).
    type File<'a>: Send + Sync
    where
        Self: 'a;
    /// What the work left before the file was archived.
    type Loaded: Send;
    /// What the outcome email says about a file that got through.
    type Done: Summary + Send;

    /// The metric counted once per file that got through, e.g. `FilesLoaded`.
    const DONE_METRIC: &'static str;

    /// What the key is, or why the pipeline refuses it (for good).
    fn route(&self, key: &str) -> Result<Self::File<'_>, LandingError>;

    /// The file's name in emails, who hears of it, and its archive folder.
    fn about<'a>(&'a self, file: &Self::File<'a>) -> About<'a>;

    /// The pipeline's work on exactly `object`, within the delivery's time. An error is
    /// returned to the queue as it is (retryable or permanent, or still running).
    fn load(
        &self,
        file: &Self::File<'_>,
        object: &ObjectVersion,
        size: u64,
        delivery: &Delivery<'_>,
    ) -> impl Future<Output = Result<Self::Loaded, FunctionError>> + Send;

    /// What follows once the file is loaded and archived. It cannot fail the file: a
    /// redelivery would find nothing to do, so a failure here is told in the email.
    fn finish(
        &self,
        file: &Self::File<'_>,
        object: &ObjectVersion,
        loaded: Self::Loaded,
        archived_to: String,
        delivery: &Delivery<'_>,
    ) -> impl Future<Output = Self::Done> + Send;
}

/// How a file is named and told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About<'a> {
    /// In subjects: the dataset's name, or e.g. `database init`.
    pub name: String,
    /// The first line of every email about it, e.g. `Dataset: price_index`; empty for none.
    pub heading: String,
    /// Who hears about its outcome.
    pub notify: &'a [String],
    /// Where it is archived, under the archive bucket (and where its notice is claimed).
    pub folder: String,
    /// What a failure means for the data, e.g. `not imported; the current table is
    /// unchanged`.
    pub not_done: &'a str,
    /// What was done to a file that got through, e.g. `imported` (for the log).
    pub done: &'a str,
}

/// The outcome of a file that got through, as its email says it.
pub trait Summary {
    /// The subject after `[landfall] `.
    fn subject(&self, object: &ObjectVersion) -> String;
    /// The `Result:` line.
    fn result(&self) -> String;
    /// The lines between `Result:` and `Duration:`, each ending in a newline.
    fn details(&self) -> String;
}

/// One delivery of one file.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Unique per invocation: names one attempt at the file.
    pub request_id: &'a str,
    /// When the invocation ends.
    pub deadline: &'a Deadline,
    /// 1 on the first delivery.
    pub receive_count: u32,
    /// When the notification says the object was created (ISO 8601), if it says.
    pub event_time: Option<&'a str>,
}

/// What the loop needs besides the pipeline.
pub struct Landing {
    /// Reads landing files, archives them, claims notices.
    pub s3: aws_sdk_s3::Client,
    /// Where loaded files are archived and notices claimed.
    pub archive_bucket: String,
    /// Sends the outcome emails.
    pub mailer: Mailer,
    /// Who hears of files refused by their key.
    pub operations_notify: Vec<String>,
    /// The queue's maxReceiveCount: a retryable failure is emailed on the last attempt.
    pub max_receive_count: u32,
    /// Where a permanent failure goes at once (`DeadLetters::from_env`).
    pub dead_letters: Option<DeadLetters>,
}

/// Where a file that did not get through stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    Loading,
    /// Loaded, then not archived: a redelivery archives it without loading it again.
    Archiving,
}

impl Landing {
    /// A batch of the pipeline's queue: each object created, one record at a time, through
    /// [`Landing::file`]; the records that failed, for SQS to deliver again (or dead-letter).
    pub async fn consume<P: FilePipeline>(
        &self,
        pipeline: &P,
        event: &SqsEvent,
        request_id: &str,
        deadline: &Deadline,
    ) -> Result<SqsBatchResponse, FunctionError> {
        process_created_objects(
            event,
            self.dead_letters.as_ref(),
            |change, attempt| async move {
                Box::pin(self.file(pipeline, &change, attempt, request_id, deadline)).await
            },
        )
        .await
    }

    /// One created landing object, through `pipeline`, to the end: `receive_count` is the
    /// delivery's (1 on the first), `request_id` names this attempt.
    pub async fn file<P: FilePipeline>(
        &self,
        pipeline: &P,
        change: &ObjectChange,
        receive_count: u32,
        request_id: &str,
        deadline: &Deadline,
    ) -> Result<(), FunctionError> {
        let started = Instant::now();
        let delivery = &Delivery {
            request_id,
            deadline,
            receive_count,
            event_time: change.event_time.as_deref(),
        };
        let file = match pipeline.route(&change.key) {
            Ok(file) => file,
            Err(refused) => {
                // No dataset's people know this file: tell operations, then dead-letter it.
                let err = FunctionError::from_error(&refused);
                let (subject, body) = refusal_notice(&change.bucket, &change.key, &err.message);
                self.mailer
                    .notify(&self.operations_notify, &subject, &body)
                    .await;
                return Err(err);
            }
        };
        let about = pipeline.about(&file);
        let Some((object, size)) = to_load(&self.s3, &change.version())
            .await
            .map_err(|e| FunctionError::from_error(&e))?
        else {
            let done = about.done;
            tracing::info!(
                key = change.key,
                "no longer in landing: already {done} and archived"
            );
            return Ok(());
        };
        let outcome = match pipeline.load(&file, &object, size, delivery).await {
            Err(error) => Err((error, Stopped::Loading)),
            Ok(loaded) => match self.archive(&object, &about, delivery.deadline).await {
                Err(error) => Err((error, Stopped::Archiving)),
                Ok(archived_to) => Ok(pipeline
                    .finish(&file, &object, loaded, archived_to, delivery)
                    .await),
            },
        };
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(done) => {
                let result = done.result();
                tracing::info!(key = object.key, seconds, result, "file {}", about.done);
                metrics::counter!(P::DONE_METRIC).increment(1);
                let bucket = &self.archive_bucket;
                if first_notice(&self.s3, bucket, &about.folder, &object).await {
                    let (subject, body) = success_notice(&about, &object, &done, seconds);
                    self.mailer.notify(about.notify, &subject, &body).await;
                }
                Ok(())
            }
            Err((error, stopped)) => {
                if is_last_attempt(&error, delivery.receive_count, self.max_receive_count) {
                    let (subject, body) =
                        failure_notice(&about, &object, &error, stopped, delivery, seconds);
                    self.mailer.notify(about.notify, &subject, &body).await;
                } else if error.still_running {
                    tracing::info!(key = object.key, message = error.message, "still running");
                }
                Err(error)
            }
        }
    }

    async fn archive(
        &self,
        object: &ObjectVersion,
        about: &About<'_>,
        deadline: &Deadline,
    ) -> Result<String, FunctionError> {
        deadline.ensure("archiving the file", Duration::ZERO)?;
        archive_today(&self.s3, object, &self.archive_bucket, &about.folder)
            .await
            .map_err(|e| FunctionError::from_error(&e))
    }
}

/// Whether no retry is left after `error`: it is permanent, or this was the queue's last
/// receive. Work still running elsewhere is sent again, never received, so it is never last.
pub fn is_last_attempt(error: &FunctionError, receive_count: u32, max_receive_count: u32) -> bool {
    error.disposition == Disposition::Permanent
        || (!error.still_running && receive_count >= max_receive_count)
}

/// `s3://bucket/key (version v)`
fn file_line(object: &ObjectVersion) -> String {
    format!("{} (version {})", object.url(), object.version)
}

fn heading(about: &About<'_>) -> String {
    if about.heading.is_empty() {
        String::new()
    } else {
        format!("{}\n", about.heading)
    }
}

/// The email about a file that got through (subject, body).
pub fn success_notice(
    about: &About<'_>,
    object: &ObjectVersion,
    done: &impl Summary,
    seconds: f64,
) -> (String, String) {
    (
        format!("[landfall] {}", done.subject(object)),
        format!(
            "{}File: {}\nResult: {}\n{}Duration: {seconds:.1} s\n",
            heading(about),
            file_line(object),
            done.result(),
            done.details(),
        ),
    )
}

/// The one failure email every file pipeline sends (subject, body).
fn failure_notice(
    about: &About<'_>,
    object: &ObjectVersion,
    error: &FunctionError,
    stopped: Stopped,
    delivery: &Delivery<'_>,
    seconds: f64,
) -> (String, String) {
    let (subject, result) = match stopped {
        Stopped::Loading => (
            format!("[landfall] FAILED {}: {}", about.name, object.key),
            about.not_done,
        ),
        Stopped::Archiving => (
            format!(
                "[landfall] {}: {} loaded, NOT ARCHIVED",
                about.name, object.key
            ),
            "loaded; archiving failed, so the file stays in landing (a redelivery archives it \
             without loading it again)",
        ),
    };
    (
        subject,
        format!(
            "{}File: {}\nResult: {result}\nError ({}): {}\nAttempt: {}\nDuration: {seconds:.1} s\n{DEAD_LETTERED}",
            heading(about),
            file_line(object),
            error.disposition,
            error.message,
            delivery.receive_count,
        ),
    )
}

const DEAD_LETTERED: &str =
    "The message is in the dead-letter queue; see the runbook in README.md.\n";

/// The email to operations about a landing file no pipeline knows (subject, body).
pub fn refusal_notice(bucket: &str, key: &str, reason: &str) -> (String, String) {
    (
        format!("[landfall] REFUSED {key}"),
        format!(
            "File: s3://{bucket}/{key}\nResult: refused by its key: nothing was done with it, and it stays in landing\nReason: {reason}\n{DEAD_LETTERED}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    struct Imported;

    impl Summary for Imported {
        fn subject(&self, object: &ObjectVersion) -> String {
            format!("price_index: 3 items imported from {}", object.key)
        }
        fn result(&self) -> String {
            "imported".into()
        }
        fn details(&self) -> String {
            "Items: 3\n".into()
        }
    }

    fn object() -> ObjectVersion {
        ObjectVersion {
            bucket: "landing".into(),
            key: "dynamodb/price_index/a.csv".into(),
            version: Version::Id("v1".into()),
        }
    }

    fn about(notify: &[String]) -> About<'_> {
        About {
            name: "price_index".into(),
            heading: "Dataset: price_index".into(),
            notify,
            folder: "dynamodb/price_index".into(),
            not_done: "not imported; the current table is unchanged",
            done: "imported",
        }
    }

    #[test]
    fn a_success_email_names_the_file_version_its_result_and_its_details() {
        let (subject, body) = success_notice(&about(&[]), &object(), &Imported, 2.04);
        assert_eq!(
            subject,
            "[landfall] price_index: 3 items imported from dynamodb/price_index/a.csv"
        );
        assert_eq!(
            body,
            "Dataset: price_index\nFile: s3://landing/dynamodb/price_index/a.csv (version v1)\n\
             Result: imported\nItems: 3\nDuration: 2.0 s\n"
        );
    }

    #[test]
    fn a_failure_email_says_what_happened_to_the_data_and_where_the_message_is() {
        let deadline = Deadline::at(std::time::SystemTime::now());
        let delivery = Delivery {
            request_id: "r",
            deadline: &deadline,
            receive_count: 5,
            event_time: None,
        };
        let error = FunctionError::permanent("line 3, column 2 (geo): missing key value");
        let (subject, body) = failure_notice(
            &about(&[]),
            &object(),
            &error,
            Stopped::Loading,
            &delivery,
            1.0,
        );
        assert_eq!(
            subject,
            "[landfall] FAILED price_index: dynamodb/price_index/a.csv"
        );
        assert_eq!(
            body,
            "Dataset: price_index\nFile: s3://landing/dynamodb/price_index/a.csv (version v1)\n\
             Result: not imported; the current table is unchanged\n\
             Error (Permanent): line 3, column 2 (geo): missing key value\nAttempt: 5\n\
             Duration: 1.0 s\nThe message is in the dead-letter queue; see the runbook in README.md.\n"
        );
        let (subject, body) = failure_notice(
            &about(&[]),
            &object(),
            &FunctionError::retryable("S3 DeleteObject: SlowDown"),
            Stopped::Archiving,
            &delivery,
            1.0,
        );
        assert!(subject.ends_with("a.csv loaded, NOT ARCHIVED"), "{subject}");
        assert!(
            body.contains("Result: loaded; archiving failed") && !body.contains("not imported"),
            "{body}"
        );
    }

    #[test]
    fn a_refusal_email_says_the_file_stays_in_landing() {
        let (subject, body) = refusal_notice("landing", "mysql/x.csv", "not under dynamodb/");
        assert_eq!(subject, "[landfall] REFUSED mysql/x.csv");
        assert!(
            body.contains("Reason: not under dynamodb/") && body.contains("stays in landing"),
            "{body}"
        );
    }

    #[test]
    fn the_last_attempt_is_a_permanent_failure_or_the_last_receive_never_a_follow_up() {
        let retryable = FunctionError::retryable("timeout");
        assert!(!is_last_attempt(&retryable, 4, 5));
        assert!(is_last_attempt(&retryable, 5, 5));
        assert!(is_last_attempt(&FunctionError::permanent("bad line"), 1, 5));
        let running = FunctionError::still_running("import running", Duration::from_secs(60));
        assert!(!is_last_attempt(&running, 9, 5));
    }
}
