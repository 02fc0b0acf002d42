//! mysql-reporter: for a dataset, every report table → one CSV object in the reports
//! bucket, `<dataset>/<table>/<yyyy-mm-dd>/<table>-<run>.csv`, streamed from the server
//! into a multipart upload (no MySQL command line, no /tmp file).

use landfall_aws::s3_stream::MultipartWriter;
use landfall_aws::Aws;
use landfall_mysql_datasets::Datasets;
use landfall_mysql_load::export::table_csv;
use landfall_mysql_load::protocol::reporter::{Export, Request, Response};
use landfall_mysql_load::Database;
use landfall_runtime::{ConfigError, Env, FunctionError};
use landfall_secrets::CredentialSource;

pub struct App {
    datasets: Datasets,
    s3: aws_sdk_s3::Client,
    reports_bucket: String,
    database: Database,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let aws = Aws::load(env).await?;
        let credentials = CredentialSource::from_env(aws.secrets(), env, "MYSQL")?;
        Ok(App {
            datasets: Datasets::from_env(env)?,
            s3: aws.s3(),
            reports_bucket: env.required("REPORTS_BUCKET")?.to_owned(),
            database: Database::from_env(credentials, env, "MYSQL")?,
        })
    }

    pub async fn handle(&self, request: Request) -> Result<Response, FunctionError> {
        let dataset = self.datasets.get(&request.dataset).ok_or_else(|| {
            FunctionError::permanent(format!("unknown dataset {:?}", request.dataset))
        })?;
        let run: String = request
            .run
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        let today = time::OffsetDateTime::now_utc().date();
        let pool = self
            .database
            .pool()
            .await
            .map_err(|e| FunctionError::from_error(&e))?;
        let mut conn = pool
            .get_conn()
            .await
            .map_err(|e| FunctionError::from_error(&landfall_mysql_load::MysqlError::from(e)))?;
        let mut exports = Vec::new();
        for table in &dataset.report_tables {
            let key = format!("{}/{table}/{today}/{table}-{run}.csv", request.dataset);
            let mut writer =
                MultipartWriter::start(&self.s3, &self.reports_bucket, &key, 8 << 20).await?;
            let rows = match Box::pin(table_csv(&mut conn, table, &mut writer)).await {
                Ok(rows) => rows,
                Err(err) => {
                    writer.abort().await;
                    return Err(FunctionError::from_error(&err));
                }
            };
            writer.finish().await?;
            tracing::info!(table = table.as_str(), rows, key, "report exported");
            exports.push(Export {
                table: table.to_string(),
                object: format!("s3://{}/{key}", self.reports_bucket),
                rows,
            });
        }
        Ok(Response { exports })
    }
}
