//! Plain-text email through SES v2.
#![warn(missing_docs)]

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};

/// An email SES did not take.
#[derive(Debug, thiserror::Error)]
#[error("sending email to {to:?}")]
pub struct EmailError {
    /// The recipients.
    pub to: Vec<String>,
    /// The SES error.
    #[source]
    pub source: AwsError,
}

impl Classify for EmailError {
    fn disposition(&self) -> Disposition {
        self.source.disposition()
    }
}

/// Sends plain-text email from one verified sender.
#[derive(Clone)]
pub struct Mailer {
    ses: aws_sdk_sesv2::Client,
    sender: String,
}

impl Mailer {
    /// A mailer sending as `sender`.
    pub fn new(ses: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Self {
        Mailer {
            ses,
            sender: sender.into(),
        }
    }

    /// Sends one email to `to` (nothing when `to` is empty).
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), EmailError> {
        if to.is_empty() {
            return Ok(());
        }
        let text = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .expect("data is set")
        };
        let sent = self
            .ses
            .send_email()
            .from_email_address(&self.sender)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .content(
                EmailContent::builder()
                    .simple(
                        Message::builder()
                            .subject(text(subject))
                            .body(Body::builder().text(text(body)).build())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|err| EmailError {
                to: to.to_vec(),
                source: AwsError::new("SES", "SendEmail", err),
            })?;
        // The line an operator (and make smoke, through CloudWatch Logs) finds a sent email by.
        tracing::info!(
            subject,
            recipients = to.len(),
            message_id = sent.message_id().unwrap_or_default(),
            "email sent"
        );
        Ok(())
    }

    /// An outcome email: one that cannot be sent is logged, not retried — the data is
    /// loaded either way, and retrying the work for an email would repeat it.
    pub async fn notify(&self, to: &[String], subject: &str, body: &str) {
        if let Err(err) = self.send(to, subject, body).await {
            tracing::error!(error = %landfall_failure::error_chain(&err), subject, "could not email the outcome");
            // A lost email is otherwise silent: EmailsFailedAlarm (template.yaml) watches this.
            metrics::counter!("EmailsFailed").increment(1);
        }
    }
}
