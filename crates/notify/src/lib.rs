//! Plain-text email through SES v2.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use landfall_runtime::{Classify, Disposition};

#[derive(Debug, thiserror::Error)]
#[error("sending email to {to:?}: {message}")]
pub struct NotifyError {
    pub to: Vec<String>,
    pub disposition: Disposition,
    pub message: String,
}

impl Classify for NotifyError {
    fn disposition(&self) -> Disposition {
        self.disposition
    }
}

#[derive(Clone)]
pub struct Mailer {
    ses: aws_sdk_sesv2::Client,
    sender: String,
}

impl Mailer {
    pub fn new(ses: aws_sdk_sesv2::Client, sender: impl Into<String>) -> Self {
        Mailer {
            ses,
            sender: sender.into(),
        }
    }

    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), NotifyError> {
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
        self.ses
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
            .map_err(|err| {
                let (disposition, message) = landfall_aws::describe(&err);
                NotifyError {
                    to: to.to_vec(),
                    disposition,
                    message,
                }
            })?;
        Ok(())
    }
}
