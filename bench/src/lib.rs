//! What the benchmark drivers share.

/// This process's peak resident set (VmHWM) in MB; NaN where /proc is not available.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// totesys's tables in dependency order: the rows a table refers to come first, as a first
/// load meets them.
pub const SOURCES_IN_LOAD_ORDER: [&str; 11] = [
    "address",
    "department",
    "currency",
    "design",
    "payment_type",
    "counterparty",
    "staff",
    "transaction",
    "sales_order",
    "purchase_order",
    "payment",
];

/// A bucket in moto (in the client's region, as S3 requires outside us-east-1), versioned
/// when asked, as the template's buckets are.
pub async fn create_bucket(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    versioned: bool,
) -> Result<(), aws_sdk_s3::Error> {
    let region = s3.config().region().map(ToString::to_string);
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .set_location_constraint(region.as_deref().map(Into::into))
                .build(),
        )
        .send()
        .await?;
    if versioned {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
    }
    Ok(())
}
