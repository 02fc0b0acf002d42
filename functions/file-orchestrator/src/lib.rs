//! file-orchestrator: the parent of the MySQL pipeline. Each landing file goes through the
//! platform's landing flow (`landfall_landing::flow`: route, version, load, archive, email,
//! failures back to SQS or to the DLQ with their reason) with P1's part of it,
//! `landfall_mysql_orchestrate::MysqlFiles`: a data file to mysql-loader by its plan, a file
//! too big for Lambda to the loader as an ECS task, a `.sql` script to the db-init task, then
//! the reports. This adapts the environment and the SQS event to them.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_aws::invoke::Callee;
use landfall_aws::Aws;
use landfall_ecs_run::{TaskSettings, Tasks};
use landfall_email::Mailer;
use landfall_landing::flow::Landing;
use landfall_mysql_datasets::Datasets;
use landfall_mysql_load::pipeline::{
    DEFAULT_LOAD_BYTES_PER_SECOND, DEFAULT_SPLIT_BYTES, DEFAULT_TASK_BYTES,
};
use landfall_mysql_orchestrate::{MysqlFiles, Settings};
use landfall_runtime::{ConfigError, Env, FunctionError, Invocation};
use landfall_sqs_batch::DeadLetters;

pub struct App {
    files: MysqlFiles,
    landing: Landing,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let datasets = Datasets::from_env(env)?;
        let settings = Settings {
            loader: Callee::from_env(env, "LOADER_FUNCTION", "LOADER_TIMEOUT_SECONDS")?,
            reporter: Callee::from_env(env, "REPORTER_FUNCTION", "REPORTER_TIMEOUT_SECONDS")?,
            archive_bucket: env.required("ARCHIVE_BUCKET")?.to_owned(),
            split_bytes: env.parse_or("SPLIT_BYTES", DEFAULT_SPLIT_BYTES)?,
            load_bytes_per_second: env
                .parse_or("LOAD_BYTES_PER_SECOND", DEFAULT_LOAD_BYTES_PER_SECOND)?
                .max(1),
            stage_concurrency: env.parse_or("STAGE_CONCURRENCY", 4)?,
            max_receive_count: env.parse_or("MAX_RECEIVE_COUNT", 5)?,
            task_bytes: env.parse_or("TASK_BYTES", DEFAULT_TASK_BYTES)?,
            loader_task_definition: env.required("LOADER_TASK_DEFINITION")?.to_owned(),
            db_init_task_definition: env.required("DB_INIT_TASK_DEFINITION")?.to_owned(),
            init_notify: env.list("INIT_NOTIFY"),
            operations_notify: env.list("OPERATIONS_NOTIFY"),
        };
        let aws = Aws::load(env).await?;
        Ok(App {
            landing: Landing {
                s3: aws.s3(),
                archive_bucket: settings.archive_bucket.clone(),
                mailer: Mailer::new(aws.ses(), env.required("SENDER_EMAIL")?),
                operations_notify: settings.operations_notify.clone(),
                max_receive_count: settings.max_receive_count,
                dead_letters: DeadLetters::from_env(env, aws.sqs())?,
            },
            files: MysqlFiles {
                tasks: Tasks::new(aws.ecs(), aws.s3(), TaskSettings::from_env(env)?),
                s3: aws.s3(),
                lambda: aws.lambda(),
                datasets,
                settings,
            },
        })
    }

    pub async fn handle(
        &self,
        event: &SqsEvent,
        invocation: &Invocation,
    ) -> Result<SqsBatchResponse, FunctionError> {
        self.landing
            .consume(
                &self.files,
                event,
                &invocation.request_id,
                &invocation.deadline,
            )
            .await
    }
}
