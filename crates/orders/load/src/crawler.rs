//! The Glue crawler over the transformed area, started once per batch so Athena sees the
//! partitions the batch's files added.

use landfall_aws::{AwsError, SdkResultExt};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    Started,
    /// A run is already under way; it, or the next batch's, picks the new files up.
    AlreadyRunning,
}

#[derive(Debug, Clone)]
pub struct Crawler {
    pub client: aws_sdk_glue::Client,
    pub name: String,
}

impl Crawler {
    pub async fn start(&self) -> Result<Started, AwsError> {
        match self.client.start_crawler().name(&self.name).send().await {
            Ok(_) => Ok(Started::Started),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_crawler_running_exception()) =>
            {
                Ok(Started::AlreadyRunning)
            }
            Err(err) => Err(err).or_aws("Glue", "StartCrawler"),
        }
    }
}
