//! The DynamoDB side: starting an import with the dataset's key schema, billing and indexes,
//! reading its progress, and deleting and retiring tables.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, ImportStatus, InputCompressionType,
    InputFormat, KeySchemaElement, KeyType, Projection, ProjectionType, ProvisionedThroughput,
    S3BucketSource, ScalarAttributeType, TableCreationParameters, Tag,
};
use landfall_aws::{AwsError, SdkResultExt};
use landfall_dynamodb_datasets::{Billing, Dataset, Ident};
use std::time::Duration;

/// The tag that marks a table as replaced, with the unix second it was.
pub const RETIRED_TAG: &str = "landfall:retired-at";

/// What DescribeImport says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub status: Status,
    pub imported: i64,
    pub errors: i64,
    pub processed_bytes: i64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// Unix seconds.
    pub started: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Completed,
    /// Failed or cancelled.
    Ended(&'static str),
}

/// Starts importing every object under `prefix` into a new table `table`.
pub async fn start_import(
    dynamodb: &aws_sdk_dynamodb::Client,
    dataset: &Dataset,
    table: &str,
    bucket: &str,
    prefix: &str,
    client_token: &str,
) -> Result<String, AwsError> {
    let started = dynamodb
        .import_table()
        .client_token(client_token)
        .s3_bucket_source(
            S3BucketSource::builder()
                .s3_bucket(bucket)
                .s3_key_prefix(prefix)
                .build()
                .map_err(build_error)?,
        )
        .input_format(InputFormat::DynamodbJson)
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(creation_parameters(dataset, table)?)
        .send()
        .await
        .map_err(|err| {
            // Too many imports or table operations at once: they clear as those finish (a
            // modeled error, which may come without the code the generic rules go by).
            let limited = err
                .as_service_error()
                .is_some_and(|e| e.is_limit_exceeded_exception());
            let err = AwsError::new("DynamoDB", "ImportTable", err);
            if limited {
                err.with_disposition(landfall_failure::Disposition::Retryable)
            } else {
                err
            }
        })?;
    Ok(started
        .import_table_description()
        .and_then(|d| d.import_arn())
        .unwrap_or_default()
        .to_owned())
}

/// A request the SDK refuses to build is a bug in this crate, never the service's answer.
fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> AwsError {
    AwsError::invalid_request("DynamoDB", "ImportTable", err)
}

fn creation_parameters(
    dataset: &Dataset,
    table: &str,
) -> Result<TableCreationParameters, AwsError> {
    let key = |name: &Ident, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name.as_str())
            .key_type(kind)
            .build()
            .map_err(build_error)
    };
    let mut defined: Vec<&Ident> = vec![&dataset.key_attribute];
    let mut indexes = Vec::new();
    for index in &dataset.indexes {
        let mut schema = vec![key(&index.partition, KeyType::Hash)?];
        defined.push(&index.partition);
        if let Some(sort) = &index.sort {
            schema.push(key(sort, KeyType::Range)?);
            defined.push(sort);
        }
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(index.name.as_str())
            .set_key_schema(Some(schema))
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            );
        if let Billing::Provisioned { read, write } = dataset.billing {
            gsi = gsi.provisioned_throughput(throughput(read, write)?);
        }
        indexes.push(gsi.build().map_err(build_error)?);
    }
    defined.sort();
    defined.dedup();
    let definitions = defined
        .into_iter()
        .map(|name| {
            let kind = match dataset.attribute_type(name) {
                Some("N") => ScalarAttributeType::N,
                _ => ScalarAttributeType::S,
            };
            AttributeDefinition::builder()
                .attribute_name(name.as_str())
                .attribute_type(kind)
                .build()
                .map_err(build_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut parameters = TableCreationParameters::builder()
        .table_name(table)
        .set_attribute_definitions(Some(definitions))
        .key_schema(key(&dataset.key_attribute, KeyType::Hash)?)
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes));
    parameters = match dataset.billing {
        Billing::PayPerRequest => parameters.billing_mode(BillingMode::PayPerRequest),
        Billing::Provisioned { read, write } => parameters
            .billing_mode(BillingMode::Provisioned)
            .provisioned_throughput(throughput(read, write)?),
    };
    parameters.build().map_err(build_error)
}

fn throughput(read: i64, write: i64) -> Result<ProvisionedThroughput, AwsError> {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .map_err(build_error)
}

pub async fn describe_import(
    dynamodb: &aws_sdk_dynamodb::Client,
    arn: &str,
) -> Result<Progress, AwsError> {
    let described = dynamodb
        .describe_import()
        .import_arn(arn)
        .send()
        .await
        .or_aws("DynamoDB", "DescribeImport")?;
    let Some(d) = described.import_table_description() else {
        return Ok(Progress {
            status: Status::Running,
            imported: 0,
            errors: 0,
            processed_bytes: 0,
            failure_code: None,
            failure_message: None,
            started: None,
        });
    };
    let status = match d.import_status() {
        Some(ImportStatus::Completed) => Status::Completed,
        Some(ImportStatus::Failed) => Status::Ended("FAILED"),
        Some(ImportStatus::Cancelled) => Status::Ended("CANCELLED"),
        // IN_PROGRESS, CANCELLING, and statuses newer than this SDK
        _ => Status::Running,
    };
    Ok(Progress {
        status,
        imported: d.imported_item_count(),
        errors: d.error_count(),
        processed_bytes: d.processed_size_bytes().unwrap_or(0),
        failure_code: d.failure_code().map(str::to_owned),
        failure_message: d.failure_message().map(str::to_owned),
        started: d.start_time().map(|t| t.secs()),
    })
}

/// Deletes `table` and waits until it is gone (at most `wait`); a table that is not there
/// is already deleted. A table still being created cannot be deleted yet: retried.
pub async fn delete_table(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    wait: Duration,
) -> Result<(), AwsError> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match dynamodb.delete_table().table_name(table).send().await {
            Ok(_) => break,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(())
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception())
                    && tokio::time::Instant::now() < until =>
            {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => return Err(AwsError::new("DynamoDB", "DeleteTable", err)),
        }
    }
    while tokio::time::Instant::now() < until {
        match dynamodb.describe_table().table_name(table).send().await {
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(())
            }
            Err(err) => return Err(AwsError::new("DynamoDB", "DescribeTable", err)),
            Ok(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    Ok(())
}

/// The table's ARN, or None when it does not exist.
pub async fn table_arn(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Option<String>, AwsError> {
    match dynamodb.describe_table().table_name(table).send().await {
        Ok(out) => Ok(out.table().and_then(|t| t.table_arn()).map(str::to_owned)),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(err) => Err(AwsError::new("DynamoDB", "DescribeTable", err)),
    }
}

/// Marks `table` replaced as of `now` (unix seconds); no table, nothing to mark.
pub async fn mark_retired(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    now: i64,
) -> Result<(), AwsError> {
    let Some(arn) = table_arn(dynamodb, table).await? else {
        return Ok(());
    };
    let tag = Tag::builder()
        .key(RETIRED_TAG)
        .value(now.to_string())
        .build()
        .map_err(|e| AwsError::invalid_request("DynamoDB", "TagResource", e))?;
    dynamodb
        .tag_resource()
        .resource_arn(arn)
        .tags(tag)
        .send()
        .await
        .or_aws("DynamoDB", "TagResource")?;
    Ok(())
}

/// When `table` was marked replaced, if it was.
pub async fn retired_at(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Option<i64>, AwsError> {
    let Some(arn) = table_arn(dynamodb, table).await? else {
        return Ok(None);
    };
    let tags = dynamodb
        .list_tags_of_resource()
        .resource_arn(arn)
        .send()
        .await
        .or_aws("DynamoDB", "ListTagsOfResource")?;
    Ok(tags
        .tags()
        .iter()
        .find(|t| t.key() == RETIRED_TAG)
        .and_then(|t| t.value().parse().ok()))
}

/// Every table whose name starts with `prefix`.
pub async fn tables_named(
    dynamodb: &aws_sdk_dynamodb::Client,
    prefix: &str,
) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = dynamodb
            .list_tables()
            .set_exclusive_start_table_name(start.take())
            .send()
            .await
            .or_aws("DynamoDB", "ListTables")?;
        names.extend(
            page.table_names()
                .iter()
                .filter(|n| n.starts_with(prefix))
                .cloned(),
        );
        match page.last_evaluated_table_name() {
            Some(last) => start = Some(last.to_owned()),
            None => return Ok(names),
        }
    }
}
