//! The local stack's Redshift Data API: ExecuteStatement, BatchExecuteStatement,
//! DescribeStatement, GetStatementResult, CancelStatement and ListStatements, running the
//! statements on a PostgreSQL database for real. moto's redshift-data accepts SQL and runs
//! none, so without this nothing could test a Redshift load.
//!
//! Redshift's semantics kept here: statements run asynchronously and are asked about by
//! id; a batch runs serially as one transaction (a failure rolls it all back, the failed
//! statement FAILED and the rest ABORTED); `TRUNCATE` commits the transaction it runs in; a
//! ClientToken returns the statement it first submitted; `COPY … FROM 's3://…'` reads S3
//! (a prefix, or a MANIFEST's entries; CSV or Parquet) — here from moto, streamed into
//! `COPY … FROM STDIN`; each call is a session of its own (its temporary tables end with
//! it); a batch holds at most 40 statements. What differs is listed in README ("The local Redshift").

mod copy;
mod dialect;

use serde_json::{json, Map, Value};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Column, Connection as _, Row, TypeInfo};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The most statements one `BatchExecuteStatement` takes.
const MAX_BATCH_STATEMENTS: usize = 40;

/// An API error in the awsJson shape the SDK parses (`__type`, `message`).
#[derive(Debug)]
pub struct ApiError {
    /// The error code, e.g. `ValidationException`.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The credentials of a role session, by role ARN: what COPY's `IAM_ROLE` reads S3 as.
pub type RoleCredentials = BTreeMap<String, aws_sdk_s3::config::Credentials>;

#[derive(Clone)]
pub struct DataApi {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    s3: aws_sdk_s3::Client,
    /// A session of every role the stack created, by ARN: what COPY's `IAM_ROLE` reads as.
    roles: RoleCredentials,
    statements: Mutex<BTreeMap<String, Stored>>,
    /// ClientToken → the statement it submitted.
    tokens: Mutex<HashMap<String, String>>,
    next_id: AtomicU64,
}

#[derive(Debug, Clone)]
struct Stored {
    id: String,
    name: Option<String>,
    batch: bool,
    status: &'static str,
    error: Option<String>,
    created_at: f64,
    updated_at: f64,
    duration_ns: i64,
    pid: Option<i32>,
    request: Value,
    subs: Vec<Sub>,
}

#[derive(Debug, Clone)]
struct Sub {
    sql: String,
    status: &'static str,
    error: Option<String>,
    result_rows: i64,
    duration_ns: i64,
    result: Option<ResultSet>,
}

#[derive(Debug, Clone, Default)]
struct ResultSet {
    columns: Vec<(String, String)>,
    rows: Vec<Vec<Value>>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError {
        kind: "ValidationException",
        message: message.into(),
    }
}

impl DataApi {
    /// Statements run on `database`; COPY reads S3 through `s3` (moto), signing as the
    /// session in `roles` of the role its `IAM_ROLE` names.
    pub fn new(
        database: PgConnectOptions,
        s3: aws_sdk_s3::Client,
        roles: RoleCredentials,
    ) -> DataApi {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .connect_lazy_with(database);
        DataApi {
            inner: Arc::new(Inner {
                pool,
                s3,
                roles,
                statements: Mutex::new(BTreeMap::new()),
                tokens: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// An S3 client signing as `role`, so the local IAM lets COPY read exactly what the
    /// role's policies allow, as Redshift reads with the role it assumes (Redshift
    /// developer guide, "Authorization parameters"). Redshift cannot assume a role it was
    /// not given, nor read without one.
    fn s3_as(&self, role: Option<&str>) -> Result<aws_sdk_s3::Client, String> {
        let role = role.ok_or(
            "ERROR: COPY needs IAM_ROLE '<arn>' (the local stack emulates no other authorization)",
        )?;
        let credentials = self.inner.roles.get(role).cloned().ok_or_else(|| {
            format!("ERROR: User is not authorized to assume IAM Role {role} (no role of the stack has that ARN)")
        })?;
        let config = self
            .inner
            .s3
            .config()
            .to_builder()
            .credentials_provider(credentials)
            .build();
        Ok(aws_sdk_s3::Client::from_conf(config))
    }

    /// One awsJson call (`X-Amz-Target: RedshiftData.<Operation>`).
    pub async fn call(&self, target: &str, request: &Value) -> Result<Value, ApiError> {
        let operation = target.rsplit('.').next().unwrap_or(target);
        match operation {
            "ExecuteStatement" => {
                let sql = text(request, "Sql").ok_or_else(|| invalid("Sql is required"))?;
                let sql = with_parameters(&sql, request.get("Parameters"))?;
                self.submit(request, vec![sql], false)
            }
            "BatchExecuteStatement" => {
                let sqls: Vec<String> = request
                    .get("Sqls")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if sqls.is_empty() {
                    return Err(invalid("Sqls must hold at least one statement"));
                }
                // Redshift Data API reference, BatchExecuteStatement: Sqls holds 1 to 40.
                if sqls.len() > MAX_BATCH_STATEMENTS {
                    return Err(invalid(format!(
                        "1 validation error detected: Value at 'sqls' failed to satisfy constraint: Member must have length less than or equal to {MAX_BATCH_STATEMENTS}"
                    )));
                }
                self.submit(request, sqls, true)
            }
            "DescribeStatement" => self.describe(request),
            "GetStatementResult" => self.result(request),
            "CancelStatement" => self.cancel(request).await,
            "ListStatements" => Ok(self.list(request)),
            other => Err(invalid(format!(
                "the local stack does not emulate RedshiftData {other}"
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Stored>> {
        self.inner
            .statements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn submit(&self, request: &Value, sqls: Vec<String>, batch: bool) -> Result<Value, ApiError> {
        if text(request, "Database").is_none() {
            return Err(invalid("Database is required"));
        }
        if text(request, "ClusterIdentifier").is_some() == text(request, "WorkgroupName").is_some()
        {
            return Err(invalid(
                "exactly one of ClusterIdentifier and WorkgroupName is required",
            ));
        }
        let token = text(request, "ClientToken");
        let mut tokens = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(id) = token.as_ref().and_then(|t| tokens.get(t)) {
            return Ok(self.submitted(id, request));
        }
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        let created = now();
        let stored = Stored {
            id: id.clone(),
            name: text(request, "StatementName"),
            batch,
            status: "SUBMITTED",
            error: None,
            created_at: created,
            updated_at: created,
            duration_ns: -1,
            pid: None,
            request: request.clone(),
            subs: sqls
                .into_iter()
                .map(|sql| Sub {
                    sql,
                    status: "SUBMITTED",
                    error: None,
                    result_rows: -1,
                    duration_ns: -1,
                    result: None,
                })
                .collect(),
        };
        self.lock().insert(id.clone(), stored);
        if let Some(token) = token {
            tokens.insert(token, id.clone());
        }
        drop(tokens);
        let api = self.clone();
        let run_id = id.clone();
        tokio::spawn(async move { api.run(&run_id).await });
        Ok(self.submitted(&id, request))
    }

    fn submitted(&self, id: &str, request: &Value) -> Value {
        let created = self
            .lock()
            .get(id)
            .map(|s| s.created_at)
            .unwrap_or_default();
        let mut answer = json!({ "Id": id, "CreatedAt": created });
        for field in [
            "Database",
            "ClusterIdentifier",
            "WorkgroupName",
            "DbUser",
            "SecretArn",
        ] {
            if let Some(value) = request.get(field) {
                answer[field] = value.clone();
            }
        }
        answer
    }

    fn update(&self, id: &str, change: impl FnOnce(&mut Stored)) {
        if let Some(stored) = self.lock().get_mut(id) {
            change(stored);
            stored.updated_at = now();
        }
    }

    /// Runs a submitted statement (or batch) to its end and records each statement's fate.
    async fn run(&self, id: &str) {
        let started = Instant::now();
        let (sqls, batch) = match self.lock().get(id) {
            Some(s) => (
                s.subs.iter().map(|s| s.sql.clone()).collect::<Vec<_>>(),
                s.batch,
            ),
            None => return,
        };
        let mut conn = match self.inner.pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                self.update(id, |s| {
                    s.status = "FAILED";
                    s.error = Some(format!("could not connect to the database: {err}"));
                });
                return;
            }
        };
        let pid: Option<i32> = sqlx::Executor::fetch_one(&mut *conn, "SELECT pg_backend_pid()")
            .await
            .ok()
            .and_then(|row| row.try_get(0).ok());
        self.update(id, |s| {
            s.status = "STARTED";
            s.pid = pid;
        });
        let mut failed: Option<(usize, String)> = None;
        if batch {
            if let Err(err) = sqlx::Executor::execute(&mut *conn, sqlx::raw_sql("BEGIN")).await {
                failed = Some((0, err.to_string()));
            }
        }
        for (index, sql) in sqls.iter().enumerate() {
            if failed.is_some() {
                break;
            }
            self.update(id, |s| s.subs[index].status = "STARTED");
            let began = Instant::now();
            let outcome = self.execute(&mut conn, sql, batch).await;
            let elapsed = began.elapsed().as_nanos() as i64;
            match outcome {
                Ok((rows, result)) => self.update(id, |s| {
                    let sub = &mut s.subs[index];
                    sub.status = "FINISHED";
                    sub.result_rows = rows;
                    sub.duration_ns = elapsed;
                    sub.result = result;
                }),
                Err(message) => {
                    self.update(id, |s| {
                        let sub = &mut s.subs[index];
                        sub.status = "FAILED";
                        sub.error = Some(message.clone());
                        sub.duration_ns = elapsed;
                    });
                    failed = Some((index, message));
                }
            }
        }
        let finish = if failed.is_some() {
            "ROLLBACK"
        } else {
            "COMMIT"
        };
        if batch {
            let ended = sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(finish)).await;
            if let (Err(err), None) = (ended, &failed) {
                failed = Some((sqls.len().saturating_sub(1), err.to_string()));
            }
        }
        if failed.is_some() {
            // A connection whose transaction broke is not handed to the next statement.
            let _ = conn.detach().close().await;
        } else if sqlx::Executor::execute(&mut *conn, sqlx::raw_sql("DISCARD TEMP"))
            .await
            .is_err()
        {
            let _ = conn.detach().close().await;
        }
        let cancelled = |m: &str| m.contains("canceling statement due to user request");
        self.update(id, |s| {
            s.duration_ns = started.elapsed().as_nanos() as i64;
            match &failed {
                None => s.status = "FINISHED",
                Some((index, message)) => {
                    s.status = if cancelled(message) {
                        "ABORTED"
                    } else {
                        "FAILED"
                    };
                    s.error = Some(message.clone());
                    for sub in s.subs.iter_mut().skip(index + 1) {
                        sub.status = "ABORTED";
                    }
                    if cancelled(message) {
                        s.subs[*index].status = "ABORTED";
                    }
                }
            }
        });
    }

    /// One statement: COPY from S3 through moto, anything else as PostgreSQL runs it. The
    /// rows it affected or returned, and its result set when it has one.
    /// (Boxed: the sqlx futures inside are not provably `Send` for every lifetime
    /// when spawned otherwise.)
    fn execute<'a>(
        &'a self,
        conn: &'a mut sqlx::PgConnection,
        sql: &'a str,
        in_batch: bool,
    ) -> futures::future::BoxFuture<'a, Result<(i64, Option<ResultSet>), String>> {
        Box::pin(async move {
            if let Some(refused) = dialect::refuse(sql) {
                return Err(refused);
            }
            if let Some(copy) = copy::parse(sql)? {
                let rows = copy
                    .run(&self.s3_as(copy.iam_role.as_deref())?, conn)
                    .await?;
                return Ok((rows as i64, None));
            }
            let mut result = ResultSet::default();
            let mut affected = 0i64;
            let mut has_rows = false;
            {
                use futures::TryStreamExt;
                let mut stream = sqlx::Executor::fetch_many(&mut *conn, sqlx::raw_sql(sql));
                while let Some(item) = stream.try_next().await.map_err(|e| database_error(&e))? {
                    match item {
                        sqlx::Either::Left(done) => affected += done.rows_affected() as i64,
                        sqlx::Either::Right(row) => {
                            has_rows = true;
                            if result.columns.is_empty() {
                                result.columns = row
                                    .columns()
                                    .iter()
                                    .map(|c| (c.name().to_owned(), c.type_info().name().to_owned()))
                                    .collect();
                            }
                            result.rows.push(fields(&row)?);
                        }
                    }
                }
            }
            // Redshift: TRUNCATE commits the transaction it runs in, even inside a batch.
            if in_batch && first_word(sql).eq_ignore_ascii_case("TRUNCATE") {
                sqlx::Executor::execute(&mut *conn, sqlx::raw_sql("COMMIT; BEGIN"))
                    .await
                    .map_err(|e| database_error(&e))?;
            }
            let is_query = has_rows
                || matches!(
                    first_word(sql).to_ascii_uppercase().as_str(),
                    "SELECT" | "WITH" | "SHOW" | "CALL"
                );
            if has_rows {
                Ok((result.rows.len() as i64, Some(result)))
            } else if is_query {
                Ok((0, Some(result)))
            } else {
                Ok((affected, None))
            }
        })
    }

    fn find(&self, request: &Value) -> Result<(Stored, Option<usize>), ApiError> {
        let id = text(request, "Id").ok_or_else(|| invalid("Id is required"))?;
        let (base, sub) = match id.rsplit_once(':') {
            Some((base, n)) => (
                base.to_owned(),
                n.parse::<usize>().ok().map(|n| n.saturating_sub(1)),
            ),
            None => (id.clone(), None),
        };
        self.lock()
            .get(&base)
            .cloned()
            .map(|stored| (stored, sub))
            .ok_or_else(|| ApiError {
                kind: "ResourceNotFoundException",
                message: format!("Query {id} does not exist"),
            })
    }

    fn describe(&self, request: &Value) -> Result<Value, ApiError> {
        let (stored, _) = self.find(request)?;
        let mut answer = json!({
            "Id": stored.id,
            "Status": stored.status,
            "CreatedAt": stored.created_at,
            "UpdatedAt": stored.updated_at,
            "Duration": stored.duration_ns,
            "RedshiftPid": stored.pid.unwrap_or(0),
            "RedshiftQueryId": 0,
            "HasResultSet": false,
            "ResultRows": stored.subs.last().map(|s| s.result_rows).unwrap_or(-1),
        });
        if let Some(error) = &stored.error {
            answer["Error"] = json!(error);
        }
        for field in [
            "Database",
            "ClusterIdentifier",
            "WorkgroupName",
            "DbUser",
            "SecretArn",
        ] {
            if let Some(value) = stored.request.get(field) {
                answer[field] = value.clone();
            }
        }
        if stored.batch {
            answer["SubStatements"] = stored
                .subs
                .iter()
                .enumerate()
                .map(|(i, sub)| {
                    let mut s = json!({
                        "Id": format!("{}:{}", stored.id, i + 1),
                        "Status": sub.status,
                        "QueryString": sub.sql,
                        "ResultRows": sub.result_rows,
                        "Duration": sub.duration_ns,
                        "HasResultSet": sub.result.is_some(),
                        "CreatedAt": stored.created_at,
                        "UpdatedAt": stored.updated_at,
                        "RedshiftQueryId": 0,
                    });
                    if let Some(error) = &sub.error {
                        s["Error"] = json!(error);
                    }
                    s
                })
                .collect();
        } else if let Some(sub) = stored.subs.first() {
            answer["QueryString"] = json!(sub.sql);
            answer["HasResultSet"] = json!(sub.result.is_some());
            if let Some(parameters) = stored.request.get("Parameters") {
                answer["QueryParameters"] = parameters.clone();
            }
        }
        Ok(answer)
    }

    fn result(&self, request: &Value) -> Result<Value, ApiError> {
        let (stored, sub) = self.find(request)?;
        let sub = match (stored.batch, sub) {
            (true, Some(index)) => stored.subs.get(index),
            (false, None) => stored.subs.first(),
            _ => None,
        }
        .ok_or_else(|| invalid("for a batch, ask for a statement of it (<id>:<n>)"))?;
        if sub.status != "FINISHED" {
            return Err(invalid(format!(
                "Query has not finished: it is {}",
                sub.status
            )));
        }
        let result = sub.result.clone().ok_or_else(|| ApiError {
            kind: "ResourceNotFoundException",
            message: "Query does not have result".into(),
        })?;
        Ok(json!({
            "Records": result.rows,
            "ColumnMetadata": result.columns.iter().map(|(name, kind)| json!({
                "name": name, "label": name, "typeName": kind.to_ascii_lowercase(),
                "nullable": 1, "isCaseSensitive": false, "isCurrency": false, "isSigned": true,
                "length": 0, "precision": 0, "scale": 0, "schemaName": "", "tableName": "", "columnDefault": null,
            })).collect::<Vec<_>>(),
            "TotalNumRows": result.rows.len(),
        }))
    }

    async fn cancel(&self, request: &Value) -> Result<Value, ApiError> {
        let (stored, _) = self.find(request)?;
        if matches!(stored.status, "FINISHED" | "FAILED" | "ABORTED") {
            return Err(invalid(format!(
                "Could not cancel a query that is already in {} state",
                stored.status
            )));
        }
        if let Some(pid) = stored.pid {
            let mut conn = self
                .inner
                .pool
                .acquire()
                .await
                .map_err(|e| invalid(e.to_string()))?;
            sqlx::query("SELECT pg_cancel_backend($1)")
                .bind(pid)
                .execute(&mut *conn)
                .await
                .map_err(|e| invalid(e.to_string()))?;
        }
        Ok(json!({ "Status": true }))
    }

    fn list(&self, request: &Value) -> Value {
        let name = text(request, "StatementName");
        let status = text(request, "Status").unwrap_or_else(|| "ALL".into());
        let statements: Vec<Value> = self
            .lock()
            .values()
            .filter(|s| {
                name.as_ref()
                    .is_none_or(|n| s.name.as_deref().is_some_and(|m| m.starts_with(n.as_str())))
            })
            .filter(|s| status == "ALL" || s.status == status)
            .map(|s| {
                let mut listed = json!({
                    "Id": s.id,
                    "Status": s.status,
                    "CreatedAt": s.created_at,
                    "UpdatedAt": s.updated_at,
                    "IsBatchStatement": s.batch,
                });
                if let Some(name) = &s.name {
                    listed["StatementName"] = json!(name);
                }
                if s.batch {
                    listed["QueryStrings"] = s.subs.iter().map(|sub| json!(sub.sql)).collect();
                } else {
                    listed["QueryString"] = json!(s.subs.first().map(|sub| sub.sql.clone()));
                }
                listed
            })
            .collect();
        json!({ "Statements": statements })
    }
}

/// Creates the database the Data API runs statements on, when it is missing.
pub async fn ensure_database(database: &PgConnectOptions) -> anyhow::Result<()> {
    let name = database.get_database().unwrap_or("redshift").to_owned();
    let mut server =
        sqlx::PgConnection::connect_with(&database.clone().database("postgres")).await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut server)
        .await?;
    if exists.is_none() {
        // An identifier cannot be a bind parameter; the name is the operator's own flag.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        sqlx::raw_sql(&format!("CREATE DATABASE {quoted}"))
            .execute(&mut server)
            .await?;
    }
    Ok(())
}

fn text(request: &Value, field: &str) -> Option<String> {
    request
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The statement without the comments before it.
fn code(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(line) = rest.strip_prefix("--") {
            rest = line.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(block) = rest.strip_prefix("/*") {
            rest = block.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest;
        }
    }
}

fn first_word(sql: &str) -> &str {
    code(sql)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .next()
        .unwrap_or_default()
}

fn database_error(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => {
            let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>();
            match pg.and_then(|e| e.detail().map(|d| format!("{} ({d})", e.message()))) {
                Some(with_detail) => format!("ERROR: {with_detail}"),
                None => format!("ERROR: {}", db.message()),
            }
        }
        other => other.to_string(),
    }
}

/// A row in the Data API's field shapes. The simple query protocol returns every value as
/// text, so numbers are told apart by their column type.
fn fields(row: &PgRow) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
        let value = if sqlx::ValueRef::is_null(&raw) {
            json!({ "isNull": true })
        } else {
            let text = raw.as_str().map_err(|e| e.to_string())?;
            match column.type_info().name() {
                "INT2" | "INT4" | "INT8" => text
                    .parse::<i64>()
                    .map(|n| json!({ "longValue": n }))
                    .unwrap_or_else(|_| json!({ "stringValue": text })),
                "FLOAT4" | "FLOAT8" => text
                    .parse::<f64>()
                    .map(|x| json!({ "doubleValue": x }))
                    .unwrap_or_else(|_| json!({ "stringValue": text })),
                "BOOL" => json!({ "booleanValue": text == "t" }),
                _ => json!({ "stringValue": text }),
            }
        };
        out.push(value);
    }
    Ok(out)
}

/// `:name` parameters as the Data API substitutes them: each value a string, cast by the
/// database to what the context needs. Written here as quoted literals (the simple query
/// protocol, so every result comes back as text), outside quotes and never for `::`.
fn with_parameters(sql: &str, parameters: Option<&Value>) -> Result<String, ApiError> {
    let mut values: Map<String, Value> = Map::new();
    for parameter in parameters.and_then(Value::as_array).into_iter().flatten() {
        let (Some(name), Some(value)) = (
            parameter.get("name").and_then(Value::as_str),
            parameter.get("value").and_then(Value::as_str),
        ) else {
            return Err(invalid("each parameter needs a name and a value"));
        };
        values.insert(name.to_owned(), json!(value));
    }
    if values.is_empty() {
        return Ok(sql.to_owned());
    }
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b':' && bytes.get(i + 1) == Some(&b':') => {
                out.push_str("::");
                i += 2;
                continue;
            }
            None if b == b':'
                && bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                let end = sql[i + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(sql.len(), |e| i + 1 + e);
                let name = &sql[i + 1..end];
                let value = values
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("no value for parameter :{name}")))?;
                out.push('\'');
                out.push_str(&value.replace('\'', "''"));
                out.push('\'');
                i = end;
                continue;
            }
            None => {}
        }
        let c = sql[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_literals_outside_quotes_only() {
        let parameters = json!([{"name": "key", "value": "a'b"}, {"name": "n", "value": "3"}]);
        assert_eq!(
            with_parameters(
                "SELECT ':key', x::int FROM t WHERE k = :key AND n = :n",
                Some(&parameters)
            )
            .unwrap(),
            "SELECT ':key', x::int FROM t WHERE k = 'a''b' AND n = '3'"
        );
        assert!(with_parameters("SELECT :missing", Some(&parameters)).is_err());
    }
}
