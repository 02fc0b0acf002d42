use landfall_failure::{Classify, Disposition};
use landfall_mysql_datasets::BadInput;

#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error(transparent)]
    BadInput(#[from] BadInput),
    #[error("the load raised warnings, so it was not kept: {0}")]
    Warnings(String),
    #[error("{staged} rows reached the database, the file has {expected}: nothing was kept")]
    CountMismatch { expected: u64, staged: u64 },
    #[error("{table} loads by upsert, straight into the table: it has no stage to stage a part into or promote from")]
    NotStaged { table: String },
    #[error("the file stream ended before the checker saw its end")]
    Incomplete,
    #[error("MYSQL_TLS={mode}, but the database at {host} offers no TLS: turn TLS on at the server, or set MYSQL_TLS=preferred")]
    NoTls { host: String, mode: &'static str },
    #[error(transparent)]
    Secret(#[from] landfall_secrets::SecretError),
    #[error("database: {0}")]
    Database(#[from] mysql_async::Error),
    #[error("script {name}, statement at line {line}: {source}")]
    Script {
        name: String,
        line: usize,
        #[source]
        source: mysql_async::Error,
    },
    #[error("script {name} changed after it was applied (recorded checksum {recorded}, now {now}); write a new script instead")]
    ScriptChanged {
        name: String,
        recorded: String,
        now: String,
    },
    #[error(transparent)]
    ScriptSyntax(#[from] landfall_sql_script::ScriptError),
    /// The export's sink failed; its own classification comes along (an S3 bucket that
    /// denies access stays denied).
    #[error("writing the export")]
    Export {
        disposition: Disposition,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Server errors that a later attempt can get past (a restart, a lock, a full pool).
const TRANSIENT_SERVER_CODES: &[u16] = &[
    1040, // too many connections
    1053, // server shutdown in progress
    1205, // lock wait timeout
    1213, // deadlock
    1317, // query interrupted
    1927, // connection killed
    2006, // server has gone away
    2013, // lost connection during query
];

fn database_disposition(err: &mysql_async::Error) -> Disposition {
    match err {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => Disposition::Retryable,
        mysql_async::Error::Server(server) if TRANSIENT_SERVER_CODES.contains(&server.code) => {
            Disposition::Retryable
        }
        _ => Disposition::Permanent,
    }
}

impl MysqlError {
    /// Access denied: the password may have been rotated since the secret was read.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, MysqlError::Database(mysql_async::Error::Server(e)) if e.code == 1045)
    }
}

impl Classify for MysqlError {
    fn disposition(&self) -> Disposition {
        match self {
            MysqlError::Database(err) | MysqlError::Script { source: err, .. } => {
                database_disposition(err)
            }
            // A stream cut short (S3 or network trouble) may well pass next time.
            MysqlError::Export { disposition, .. } => *disposition,
            MysqlError::Secret(err) => err.disposition(),
            MysqlError::Incomplete => Disposition::Retryable,
            _ => Disposition::Permanent,
        }
    }
}
