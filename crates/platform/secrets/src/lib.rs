//! Database credentials from Secrets Manager, in the shape RDS writes
//! (`{"host","port","username","password","dbname"}`), or only `username` and `password` (the
//! secret RDS manages for a master user) with the rest from the function's configuration
//! ([`Endpoint`]). Fetched once per container and
//! cached; `refresh` fetches again after an authentication failure (a rotated password).
//! The password is a `SecretString`: its `Debug` prints nothing, and nothing here logs it.
#![warn(missing_docs)]

#[cfg(feature = "postgres")]
pub mod postgres;

use landfall_aws::AwsError;
use landfall_env::{ConfigError, Env};
use landfall_failure::{Classify, Disposition};
use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;
use tokio::sync::Mutex;

/// A database's connection details, as a Secrets Manager database secret holds them.
#[derive(Clone)]
pub struct DbCredentials {
    /// The server's host name.
    pub host: String,
    /// Its port, when not the engine's default.
    pub port: Option<u16>,
    /// The user.
    pub username: String,
    /// The password, never logged.
    pub password: SecretString,
    /// The database, when the secret names one.
    pub dbname: Option<String>,
}

/// The secret as stored: RDS-managed master secrets hold only `username` and `password`.
#[derive(Deserialize)]
struct Stored {
    #[serde(default)]
    host: Option<String>,
    #[serde(default, deserialize_with = "port_number")]
    port: Option<u16>,
    username: String,
    password: SecretString,
    #[serde(default, alias = "dbInstanceIdentifier", alias = "database")]
    dbname: Option<String>,
}

/// Where the database is when the secret does not say. The secret RDS manages for a master
/// user holds only `username` and `password` (RDS user guide, "Password management with
/// Amazon RDS and AWS Secrets Manager"), so the stack passes the rest as parameters; what
/// the secret does say wins.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// Overrides the secret's host.
    pub host: Option<String>,
    /// Overrides the secret's port.
    pub port: Option<u16>,
    /// Overrides the secret's database.
    pub dbname: Option<String>,
}

impl Endpoint {
    /// `<PREFIX>_HOST`, `<PREFIX>_PORT` and `<PREFIX>_DATABASE`, each optional.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Endpoint, ConfigError> {
        let text = |suffix: &str| {
            env.optional(&format!("{prefix}_{suffix}"))
                .map(str::to_owned)
        };
        let port = match text("PORT") {
            Some(port) => Some(
                port.parse()
                    .map_err(|e| ConfigError::invalid(&format!("{prefix}_PORT"), &port, e))?,
            ),
            None => None,
        };
        Ok(Endpoint {
            host: text("HOST"),
            port,
            dbname: text("DATABASE"),
        })
    }
}

impl fmt::Debug for DbCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCredentials")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .field("dbname", &self.dbname)
            .finish()
    }
}

/// RDS writes the port as a number; people often write it as a string.
fn port_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(t)) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Why the credentials could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// GetSecretValue failed.
    #[error("reading secret {secret}")]
    Fetch {
        /// The secret's id.
        secret: String,
        /// The Secrets Manager error.
        #[source]
        source: AwsError,
    },
    // The parse error is about the shape, never the value: serde_json does not echo input.
    /// The secret is not database credentials.
    #[error("secret {secret} is not database credentials ({reason})")]
    Shape {
        /// The secret's id.
        secret: String,
        /// What is missing or wrong (never a value).
        reason: String,
    },
}

impl Classify for SecretError {
    fn disposition(&self) -> Disposition {
        match self {
            SecretError::Fetch { source, .. } => source.disposition(),
            SecretError::Shape { .. } => Disposition::Permanent,
        }
    }
}

/// One secret, cached.
#[derive(Clone)]
pub struct CredentialSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    endpoint: Endpoint,
    cached: Arc<Mutex<Option<DbCredentials>>>,
}

impl CredentialSource {
    /// Credentials from the secret `secret_id`, fetched on first use.
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        CredentialSource {
            client,
            secret_id: secret_id.into(),
            endpoint: Endpoint::default(),
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The secret `<PREFIX>_SECRET_ARN` names, completed by `<PREFIX>_HOST`, `_PORT` and
    /// `_DATABASE` where it lacks them.
    pub fn from_env(
        client: aws_sdk_secretsmanager::Client,
        env: &Env,
        prefix: &str,
    ) -> Result<Self, ConfigError> {
        let mut source =
            CredentialSource::new(client, env.required(&format!("{prefix}_SECRET_ARN"))?);
        source.endpoint = Endpoint::from_env(env, prefix)?;
        Ok(source)
    }

    /// The credentials: cached, or fetched.
    pub async fn get(&self) -> Result<DbCredentials, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref() {
            return Ok(credentials.clone());
        }
        let credentials = self.fetch().await?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    /// Forgets the cached value and fetches it again.
    pub async fn refresh(&self) -> Result<DbCredentials, SecretError> {
        *self.cached.lock().await = None;
        tracing::info!(secret = self.secret_id, "refreshing database credentials");
        self.get().await
    }

    async fn fetch(&self) -> Result<DbCredentials, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|err| SecretError::Fetch {
                secret: self.secret_id.clone(),
                source: AwsError::new("Secrets Manager", "GetSecretValue", err),
            })?;
        let text = out.secret_string().ok_or_else(|| SecretError::Shape {
            secret: self.secret_id.clone(),
            reason: "no SecretString".into(),
        })?;
        parse_completed(&self.secret_id, text, &self.endpoint)
    }
}

/// Reads a secret's JSON text; errors name the secret, never a value.
pub fn parse(secret_id: &str, text: &str) -> Result<DbCredentials, SecretError> {
    parse_completed(secret_id, text, &Endpoint::default())
}

/// The secret's credentials, with `endpoint` filling in what the secret lacks.
pub fn parse_completed(
    secret_id: &str,
    text: &str,
    endpoint: &Endpoint,
) -> Result<DbCredentials, SecretError> {
    let stored: Stored = serde_json::from_str(text).map_err(|err| SecretError::Shape {
        secret: secret_id.to_owned(),
        reason: format!(
            "{} at line {} column {}",
            classify(&err),
            err.line(),
            err.column()
        ),
    })?;
    let host = stored
        .host
        .or_else(|| endpoint.host.clone())
        .ok_or_else(|| SecretError::Shape {
            secret: secret_id.to_owned(),
            reason: "no host: the secret has none (an RDS-managed secret holds only username \
                     and password) and the function has no <PREFIX>_HOST"
                .into(),
        })?;
    Ok(DbCredentials {
        host,
        port: stored.port.or(endpoint.port),
        username: stored.username,
        password: stored.password,
        dbname: stored.dbname.or_else(|| endpoint.dbname.clone()),
    })
}

fn classify(err: &serde_json::Error) -> &'static str {
    match err.classify() {
        serde_json::error::Category::Data => "a field is missing or has the wrong type",
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Io => "unreadable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn parses_the_rds_shape_and_hides_the_password() {
        let credentials = parse(
            "landfall/mysql",
            r#"{"engine":"mysql","host":"db.internal","port":3306,"username":"loader","password":"s3cr3t-value","dbname":"landfall"}"#,
        )
        .unwrap();
        assert_eq!(credentials.port, Some(3306));
        assert_eq!(credentials.password.expose_secret(), "s3cr3t-value");
        let printed = format!("{credentials:?}");
        assert!(!printed.contains("s3cr3t-value"), "{printed}");
        let string_port = parse(
            "s",
            r#"{"host":"h","port":"5432","username":"u","password":"p"}"#,
        )
        .unwrap();
        assert_eq!(string_port.port, Some(5432));
    }

    #[test]
    fn an_rds_managed_secret_takes_host_port_and_database_from_the_configuration() {
        let managed = r#"{"username":"admin","password":"s3cr3t-value"}"#;
        let refused = parse("rds!db-1", managed).unwrap_err().to_string();
        assert!(
            refused.contains("no host") && !refused.contains("s3cr3t"),
            "{refused}"
        );
        let env = Env::from_pairs([
            ("MYSQL_HOST", "db.internal"),
            ("MYSQL_PORT", "3307"),
            ("MYSQL_DATABASE", "landfall"),
        ]);
        let endpoint = Endpoint::from_env(&env, "MYSQL").unwrap();
        let credentials = parse_completed("rds!db-1", managed, &endpoint).unwrap();
        assert_eq!(credentials.host, "db.internal");
        assert_eq!(credentials.port, Some(3307));
        assert_eq!(credentials.dbname.as_deref(), Some("landfall"));
        assert_eq!(credentials.username, "admin");
        // What the secret says wins.
        let full = r#"{"host":"h","port":1,"username":"u","password":"p","dbname":"d"}"#;
        let credentials = parse_completed("s", full, &endpoint).unwrap();
        assert_eq!(
            (credentials.host.as_str(), credentials.port),
            ("h", Some(1))
        );
        assert_eq!(credentials.dbname.as_deref(), Some("d"));
    }

    #[test]
    fn a_malformed_secret_is_described_without_its_value() {
        let err = parse(
            "landfall/mysql",
            r#"{"host":"h","username":"u","pass":"hunter2"}"#,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("a field is missing"), "{text}");
        assert_eq!(err.disposition(), Disposition::Permanent);
        assert!(!parse("s", "hunter2")
            .unwrap_err()
            .to_string()
            .contains("hunter2"));
    }
}
