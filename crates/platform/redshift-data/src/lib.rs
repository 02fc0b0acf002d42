//! Amazon Redshift through the Data API, as a pipeline needs it: statements submitted over
//! HTTPS (no driver, no connection held by the function), a batch that Redshift runs
//! serially as one transaction, a ClientToken so a resubmission finds the statement that
//! is already running instead of starting it again, and a failed statement reported with
//! its own SQL and Redshift's error.
//!
//! Where the Data API runs its statements is configuration: a provisioned cluster (a
//! Secrets Manager secret, or temporary credentials for a database user) or a serverless
//! workgroup (a secret, or the caller's IAM identity). Nothing else in a caller differs.
#![warn(missing_docs)]

pub mod migrate;

use aws_sdk_redshiftdata::types::{Field, SqlParameter, StatusString};
use aws_sdk_redshiftdata::Client;
use landfall_aws::{AwsError, SdkResultExt};
use landfall_env::{ConfigError, Env};
use landfall_failure::{Classify, Disposition};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const SERVICE: &str = "RedshiftData";

/// Where statements run, as the Data API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A provisioned cluster.
    Cluster {
        /// The cluster identifier.
        identifier: String,
        /// How statements authenticate.
        access: ClusterAccess,
    },
    /// A Redshift Serverless workgroup (statements run as the caller's IAM identity).
    Workgroup {
        /// The workgroup name.
        name: String,
        /// None: the caller's IAM identity (`redshift-serverless:GetCredentials`).
        secret_arn: Option<String>,
    },
}

/// How a statement on a provisioned cluster authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterAccess {
    /// A Secrets Manager secret (its ARN) holding the user and password.
    Secret(String),
    /// Temporary credentials for this database user (`redshift:GetClusterCredentials`).
    DbUser(String),
}

/// A database in a cluster or workgroup, and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Warehouse {
    client: Client,
    target: Target,
    database: String,
    /// How often a running statement is asked about, at most.
    pub poll: Duration,
}

/// One statement as `DescribeStatement` reports it (a batch's statements in order).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The statement id.
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Redshift's error, when it failed.
    pub error: Option<String>,
    /// Rows the statement (or a batch's last statement) affected or returned.
    pub result_rows: i64,
    /// How long it ran.
    pub duration: Duration,
    /// A batch's statements, in order.
    pub sub_statements: Vec<SubStatement>,
}

/// One statement of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SubStatement {
    /// Its id (`<batch id>:<n>`).
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Its SQL.
    pub sql: String,
    /// Redshift's error, when it failed.
    pub error: Option<String>,
    /// Rows it changed or returned.
    pub result_rows: i64,
}

/// A statement as `ListStatements` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The statement id.
    pub id: String,
    /// Where it stands.
    pub status: Status,
    /// Nanoseconds since the epoch.
    pub created_at: i128,
}

/// A statement's status, as the Data API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Accepted, not yet queued.
    Submitted,
    /// Queued to run.
    Picked,
    /// Running.
    Started,
    /// Done; its results (if any) can be read.
    Finished,
    /// Ended with an error (a batch: rolled back).
    Failed,
    /// Cancelled.
    Aborted,
}

impl Status {
    fn parse(text: &str) -> Status {
        match text {
            "FINISHED" => Status::Finished,
            "FAILED" => Status::Failed,
            "ABORTED" => Status::Aborted,
            "PICKED" => Status::Picked,
            "STARTED" => Status::Started,
            _ => Status::Submitted,
        }
    }

    /// Whether the statement will not change any more.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Finished | Status::Failed | Status::Aborted)
    }
}

/// Why a statement did not give its result.
#[derive(Debug, thiserror::Error)]
pub enum DataApiError {
    /// A Data API call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The statement (or, in a batch, the one that failed — the transaction left nothing)
    /// with its SQL and Redshift's words.
    #[error("statement {id} {status:?}: {error}{}", sql_text(.sql))]
    Failed {
        /// The statement id.
        id: String,
        /// Where it ended.
        status: Status,
        /// The SQL that failed, when the Data API says which.
        sql: Option<String>,
        /// Redshift's error.
        error: String,
    },
    /// Still running when the time to wait ran out; it goes on in Redshift.
    #[error("statement {id} still {status:?} after {waited:?}")]
    StillRunning {
        /// The statement id, to follow it.
        id: String,
        /// Where it stood.
        status: Status,
        /// How long it was followed.
        waited: Duration,
    },
    /// A result that cannot be read as asked.
    #[error("statement {id}: {reason}")]
    Result {
        /// The statement id.
        id: String,
        /// What does not fit.
        reason: String,
    },
}

fn sql_text(sql: &Option<String>) -> String {
    sql.as_ref()
        .map(|s| format!(" in `{}`", s.trim()))
        .unwrap_or_default()
}

impl Classify for DataApiError {
    fn disposition(&self) -> Disposition {
        match self {
            DataApiError::Aws(err) => err.disposition(),
            // Data the table can never take fails the same way every time: at once to the
            // dead-letter queue, not five more COPYs under the load's exclusive lock.
            DataApiError::Failed { error, .. } if is_data_error(error) => Disposition::Permanent,
            // A failed transaction left nothing behind; whether running it again can help
            // (a serialization conflict, a resize) is the caller's to say.
            DataApiError::Failed { .. } | DataApiError::StillRunning { .. } => {
                Disposition::Retryable
            }
            DataApiError::Result { .. } => Disposition::Permanent,
        }
    }
}

/// Redshift's words for input a table cannot take: COPY's own failure (details in
/// SYS_LOAD_ERROR_DETAIL), Spectrum's for a Parquet type or length it cannot read, and the
/// data-exception class of SQLSTATE (22xxx: bad value, overflow, too long).
const DATA_ERRORS: &[&str] = &[
    "load into table",
    "string length exceeds ddl length",
    "spectrum scan error",
    "invalid input syntax",
    "value too long for type",
    "numeric field overflow",
    "invalid digit",
    "sqlstate 22",
];

fn is_data_error(error: &str) -> bool {
    let error = error.to_lowercase();
    DATA_ERRORS.iter().any(|words| error.contains(words))
}

/// The target's fields on a request builder (each operation has its own builder type).
macro_rules! with_target {
    ($request:expr, $target:expr) => {
        match $target {
            Target::Cluster { identifier, access } => {
                let request = $request.cluster_identifier(identifier);
                match access {
                    ClusterAccess::Secret(arn) => request.secret_arn(arn),
                    ClusterAccess::DbUser(user) => request.db_user(user),
                }
            }
            Target::Workgroup { name, secret_arn } => $request
                .workgroup_name(name)
                .set_secret_arn(secret_arn.clone()),
        }
    };
}

impl Warehouse {
    /// Statements through `client` on `target`'s `database`.
    pub fn new(client: Client, target: Target, database: impl Into<String>) -> Warehouse {
        Warehouse {
            client,
            target,
            database: database.into(),
            poll: Duration::from_secs(2),
        }
    }

    /// `REDSHIFT_DATABASE`, and either `REDSHIFT_CLUSTER_ID` with `REDSHIFT_SECRET_ARN` or
    /// `REDSHIFT_DB_USER`, or `REDSHIFT_WORKGROUP` with an optional `REDSHIFT_SECRET_ARN`;
    /// `REDSHIFT_POLL_MILLISECONDS` (2000).
    pub fn from_env(env: &Env, client: Client) -> Result<Warehouse, ConfigError> {
        let secret = env.optional("REDSHIFT_SECRET_ARN").map(str::to_owned);
        let target = match (
            env.optional("REDSHIFT_CLUSTER_ID"),
            env.optional("REDSHIFT_WORKGROUP"),
        ) {
            (Some(identifier), None) => {
                let access = match (secret, env.optional("REDSHIFT_DB_USER")) {
                    (Some(arn), None) => ClusterAccess::Secret(arn),
                    (None, Some(user)) => ClusterAccess::DbUser(user.to_owned()),
                    _ => return Err(ConfigError::invalid(
                        "REDSHIFT_SECRET_ARN",
                        "",
                        "a cluster needs exactly one of REDSHIFT_SECRET_ARN and REDSHIFT_DB_USER",
                    )),
                };
                Target::Cluster {
                    identifier: identifier.to_owned(),
                    access,
                }
            }
            (None, Some(name)) => Target::Workgroup {
                name: name.to_owned(),
                secret_arn: secret,
            },
            _ => {
                return Err(ConfigError::invalid(
                    "REDSHIFT_CLUSTER_ID",
                    env.optional("REDSHIFT_CLUSTER_ID").unwrap_or_default(),
                    "set exactly one of REDSHIFT_CLUSTER_ID and REDSHIFT_WORKGROUP",
                ))
            }
        };
        let mut warehouse = Warehouse::new(client, target, env.required("REDSHIFT_DATABASE")?);
        warehouse.poll = Duration::from_millis(env.parse_or("REDSHIFT_POLL_MILLISECONDS", 2000)?);
        Ok(warehouse)
    }

    /// Where the statements run.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Submits `sqls` as one transaction named `name` (for [`Warehouse::list`]). The same
    /// `token` within the Data API's idempotency window returns the statement submitted
    /// first, running or done.
    pub async fn submit_batch(
        &self,
        sqls: &[String],
        token: &str,
        name: &str,
    ) -> Result<String, AwsError> {
        let request = self
            .client
            .batch_execute_statement()
            .set_sqls(Some(sqls.to_vec()))
            .database(&self.database)
            .client_token(token)
            .statement_name(name);
        let request = with_target!(request, &self.target);
        let out = request
            .send()
            .await
            .or_aws(SERVICE, "BatchExecuteStatement")?;
        Ok(out.id().unwrap_or_default().to_owned())
    }

    /// Submits one statement with named parameters (`:name` in the SQL; values as text,
    /// never spliced into it).
    pub async fn submit(&self, sql: &str, parameters: &[(&str, &str)]) -> Result<String, AwsError> {
        let parameters = parameters
            .iter()
            .map(|(name, value)| {
                SqlParameter::builder()
                    .name(*name)
                    .value(*value)
                    .build()
                    .map_err(|e| AwsError::invalid_request(SERVICE, "ExecuteStatement", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request = self
            .client
            .execute_statement()
            .sql(sql)
            .database(&self.database)
            .set_parameters((!parameters.is_empty()).then_some(parameters));
        let request = with_target!(request, &self.target);
        let out = request.send().await.or_aws(SERVICE, "ExecuteStatement")?;
        Ok(out.id().unwrap_or_default().to_owned())
    }

    /// The statements named `name` that the Data API still lists (those of the last 24
    /// hours, by this caller's role), newest first.
    pub async fn list(&self, name: &str) -> Result<Vec<Listed>, AwsError> {
        let mut listed = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_statements()
                .statement_name(name)
                .status(StatusString::All)
                .set_next_token(next.take())
                .send()
                .await
                .or_aws(SERVICE, "ListStatements")?;
            // The name filter matches prefixes: keep exact names only.
            listed.extend(
                out.statements()
                    .iter()
                    .filter(|s| s.statement_name() == Some(name))
                    .map(|s| Listed {
                        id: s.id().to_owned(),
                        status: Status::parse(s.status().map(|s| s.as_str()).unwrap_or_default()),
                        created_at: s.created_at().map(|t| t.as_nanos()).unwrap_or_default(),
                    }),
            );
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => break,
            }
        }
        listed.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(listed)
    }

    /// Asks Redshift to stop a running statement (a batch rolls back).
    pub async fn cancel(&self, id: &str) -> Result<bool, AwsError> {
        let out = self
            .client
            .cancel_statement()
            .id(id)
            .send()
            .await
            .or_aws(SERVICE, "CancelStatement")?;
        Ok(out.status().unwrap_or(false))
    }

    /// Where the statement `id` stands now.
    pub async fn describe(&self, id: &str) -> Result<Statement, AwsError> {
        let out = self
            .client
            .describe_statement()
            .id(id)
            .send()
            .await
            .or_aws(SERVICE, "DescribeStatement")?;
        Ok(Statement {
            id: id.to_owned(),
            status: Status::parse(out.status().map(StatusString::as_str).unwrap_or_default()),
            error: out.error().map(str::to_owned),
            result_rows: out.result_rows(),
            duration: Duration::from_nanos(out.duration().max(0) as u64),
            sub_statements: out
                .sub_statements()
                .iter()
                .map(|sub| SubStatement {
                    id: sub.id().to_owned(),
                    status: Status::parse(sub.status().map(|s| s.as_str()).unwrap_or_default()),
                    sql: sub.query_string().unwrap_or_default().to_owned(),
                    error: sub.error().map(str::to_owned),
                    result_rows: sub.result_rows(),
                })
                .collect(),
        })
    }

    /// Follows statement `id` until it is done or `budget` has passed: Ok when it
    /// finished; `Failed` naming the failed statement's SQL; `StillRunning` when the budget
    /// ran out first (the statement goes on in Redshift: resubmit with the same token, or
    /// `follow` the id again, to find it).
    pub async fn follow(&self, id: &str, budget: Duration) -> Result<Statement, DataApiError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let statement = self.describe(id).await?;
            match statement.status {
                Status::Finished => return Ok(statement),
                Status::Failed | Status::Aborted => {
                    let failed = statement
                        .sub_statements
                        .iter()
                        .find(|sub| matches!(sub.status, Status::Failed))
                        .or_else(|| {
                            statement
                                .sub_statements
                                .iter()
                                .find(|sub| sub.status != Status::Finished)
                        });
                    return Err(DataApiError::Failed {
                        id: id.to_owned(),
                        status: statement.status,
                        sql: failed.map(|sub| sub.sql.clone()),
                        error: failed
                            .and_then(|sub| sub.error.clone())
                            .or(statement.error)
                            .unwrap_or_else(|| "no error given".into()),
                    });
                }
                status => {
                    let waited = started.elapsed();
                    if waited + pause > budget {
                        return Err(DataApiError::StillRunning {
                            id: id.to_owned(),
                            status,
                            waited,
                        });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.poll);
                }
            }
        }
    }

    /// Runs one query to its end within `budget` and returns its rows, each value as text
    /// (None for NULL).
    pub async fn query(
        &self,
        sql: &str,
        parameters: &[(&str, &str)],
        budget: Duration,
    ) -> Result<Vec<Vec<Option<String>>>, DataApiError> {
        let id = self.submit(sql, parameters).await?;
        self.follow(&id, budget).await?;
        self.rows(&id).await
    }

    /// The result set of a finished statement (`<batch id>:<n>` for a batch's n-th).
    pub async fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, DataApiError> {
        let mut rows = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .get_statement_result()
                .id(id)
                .set_next_token(next.take())
                .send()
                .await
                .or_aws(SERVICE, "GetStatementResult")?;
            for record in out.records() {
                rows.push(
                    record
                        .iter()
                        .map(|field| field_text(id, field))
                        .collect::<Result<Vec<_>, _>>()?,
                );
            }
            match out.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(rows),
            }
        }
    }
}

fn field_text(id: &str, field: &Field) -> Result<Option<String>, DataApiError> {
    Ok(match field {
        Field::IsNull(true) => None,
        Field::StringValue(s) => Some(s.clone()),
        Field::LongValue(n) => Some(n.to_string()),
        Field::DoubleValue(x) => Some(x.to_string()),
        Field::BooleanValue(b) => Some(b.to_string()),
        other => {
            return Err(DataApiError::Result {
                id: id.to_owned(),
                reason: format!("a value this reader does not take: {other:?}"),
            })
        }
    })
}

/// A ClientToken for work identified by `parts` (an object's key and version): the same
/// work always gets the same token, different work a different one (the Data API takes at
/// most 64 characters).
pub fn client_token(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// A value that cannot be a bind parameter: `BatchExecuteStatement` takes none, and
/// `COPY … FROM` takes its S3 path only as a literal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} cannot be written into SQL: Redshift and PostgreSQL read a backslash or a control character differently")]
pub struct UnsafeLiteral {
    /// Its text.
    pub value: String,
}

/// `'value'`, each `'` in it doubled: the one escape Redshift and PostgreSQL read alike.
/// Redshift also takes a backslash as an escape (its QUOTE_LITERAL doubles both; Redshift
/// developer guide, "QUOTE_LITERAL function") where PostgreSQL takes it as itself, so a
/// value with a backslash — or a control character — is refused rather than escaped. Any
/// other character, in any script, means nothing inside the quotes: an S3 key as people
/// name files (`orders (copy) — été.csv`) is written as it is.
pub fn literal(value: &str) -> Result<String, UnsafeLiteral> {
    if value.chars().any(|c| c == '\\' || c.is_control()) {
        Err(UnsafeLiteral {
            value: value.to_owned(),
        })
    } else {
        Ok(format!("'{}'", value.replace('\'', "''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_of_data_the_table_cannot_take_is_permanent_and_a_conflict_is_not() {
        let failed = |error: &str| DataApiError::Failed {
            id: "s1".into(),
            status: Status::Failed,
            sql: Some("COPY orders_staging FROM 's3://b/m'".into()),
            error: error.into(),
        };
        for data in [
            "ERROR: Load into table 'orders_staging' failed. Check 'sys_load_error_detail' system table for details.",
            "ERROR: Spectrum Scan Error. File 's3://b/o.parquet' has an incompatible Parquet schema for column 'amount'",
            "ERROR: String length exceeds DDL length",
            "ERROR: value too long for type character varying(64) (SQLSTATE 22001)",
        ] {
            assert_eq!(failed(data).disposition(), Disposition::Permanent, "{data}");
        }
        for passing in [
            "ERROR: 1023 Serializable isolation violation on table - 123456",
            "ERROR: could not complete because of conflict with concurrent transaction (SQLSTATE 40001)",
        ] {
            assert_eq!(failed(passing).disposition(), Disposition::Retryable, "{passing}");
        }
    }

    #[test]
    fn literals_double_quotes_and_refuse_what_the_two_databases_read_differently() {
        assert_eq!(
            literal("transformed/orders/2026-12-02/orders-1.csv").unwrap(),
            "'transformed/orders/2026-12-02/orders-1.csv'"
        );
        assert_eq!(
            literal("orders/O'Brien (copy); été 東京 #1.csv").unwrap(),
            "'orders/O''Brien (copy); été 東京 #1.csv'"
        );
        assert_eq!(
            literal("'); DROP TABLE t; --").unwrap(),
            "'''); DROP TABLE t; --'"
        );
        for bad in ["a\\b", "a\nb", "a\rb", "a\u{0}b", "a\tb"] {
            assert_eq!(literal(bad).unwrap_err().value, bad);
        }
    }

    #[test]
    fn tokens_name_the_work_and_fit_the_api() {
        let token = client_token(&["transformed/orders/a.csv", "v1"]);
        assert_eq!(token.len(), 64);
        assert_eq!(token, client_token(&["transformed/orders/a.csv", "v1"]));
        assert_ne!(token, client_token(&["transformed/orders/a.csv", "v2"]));
        // The parts' boundaries count: ("ab", "c") is other work than ("a", "bc").
        assert_ne!(client_token(&["ab", "c"]), client_token(&["a", "bc"]));
    }

    #[test]
    fn the_target_comes_from_the_environment() {
        let client = Client::from_conf(
            aws_sdk_redshiftdata::Config::builder()
                .behavior_version(aws_sdk_redshiftdata::config::BehaviorVersion::latest())
                .build(),
        );
        let cluster = Env::from_pairs([
            ("REDSHIFT_CLUSTER_ID", "analytics"),
            ("REDSHIFT_DB_USER", "loader"),
            ("REDSHIFT_DATABASE", "dev"),
        ]);
        let warehouse = Warehouse::from_env(&cluster, client.clone()).unwrap();
        assert_eq!(
            warehouse.target(),
            &Target::Cluster {
                identifier: "analytics".into(),
                access: ClusterAccess::DbUser("loader".into())
            }
        );
        let serverless =
            Env::from_pairs([("REDSHIFT_WORKGROUP", "wg"), ("REDSHIFT_DATABASE", "dev")]);
        assert_eq!(
            Warehouse::from_env(&serverless, client.clone())
                .unwrap()
                .target(),
            &Target::Workgroup {
                name: "wg".into(),
                secret_arn: None
            }
        );
        for env in [
            Env::from_pairs([("REDSHIFT_DATABASE", "dev")]),
            Env::from_pairs([
                ("REDSHIFT_CLUSTER_ID", "a"),
                ("REDSHIFT_WORKGROUP", "b"),
                ("REDSHIFT_DATABASE", "dev"),
            ]),
            Env::from_pairs([("REDSHIFT_CLUSTER_ID", "a"), ("REDSHIFT_DATABASE", "dev")]),
        ] {
            assert!(Warehouse::from_env(&env, client.clone()).is_err());
        }
    }
}
