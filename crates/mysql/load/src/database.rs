//! Reaching the database: credentials from Secrets Manager, the connection encrypted as
//! `MYSQL_TLS` says, one pool per container.

use crate::MysqlError;
use landfall_env::{ConfigError, Env};
use mysql_async::{Conn, Opts, OptsBuilder, Pool, SslOpts};
use std::path::PathBuf;

/// How the connection is encrypted: the modes of the mysql client's `--ssl-mode`.
/// RDS and Aurora MySQL offer TLS on every instance, each with a certificate that names its
/// endpoint, signed by the RDS CAs (which no public trust store holds) — so verifying needs
/// their bundle; and `require_secure_transport=ON` (MySQL 9.7's default on RDS) refuses
/// plaintext ("Requiring SSL/TLS for all connections to a MySQL DB instance", RDS User Guide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Never encrypted.
    Disabled,
    /// Encrypted whenever the server offers TLS, plaintext when it does not; the certificate
    /// is not checked (the mysql client's default). Encrypts against a listener on the
    /// network, not against an impostor in the VPC.
    Preferred,
    /// Encrypted or no connection at all; the certificate is not checked.
    Required,
    /// Encrypted, with a certificate signed by a CA in `ca_file` (the RDS bundle, say) that
    /// names the host connected to. (No `verify-ca`, which skips the name: mysql_async 0.37
    /// recognises a wrong name by rustls's old error text, so it would check the name anyway.)
    VerifyIdentity { ca_file: PathBuf },
}

impl Tls {
    /// `<PREFIX>_TLS` (`disabled`, `preferred` — the default —, `required`,
    /// `verify-identity`) and, for the last, `<PREFIX>_TLS_CA_FILE`: a PEM file of
    /// the CAs to trust, which must be readable now (a Lambda layer's `/opt/…`, the image).
    pub fn from_env(env: &Env, prefix: &str) -> Result<Tls, ConfigError> {
        let mode_var = format!("{prefix}_TLS");
        let ca_var = format!("{prefix}_TLS_CA_FILE");
        let ca_file = || -> Result<PathBuf, ConfigError> {
            let path = env.required(&ca_var)?;
            std::fs::metadata(path).map_err(|e| ConfigError::invalid(&ca_var, path, e))?;
            Ok(PathBuf::from(path))
        };
        match env.optional(&mode_var).unwrap_or("preferred") {
            "disabled" => Ok(Tls::Disabled),
            "preferred" => Ok(Tls::Preferred),
            "required" => Ok(Tls::Required),
            "verify-identity" => Ok(Tls::VerifyIdentity {
                ca_file: ca_file()?,
            }),
            other => Err(ConfigError::invalid(
                &mode_var,
                other,
                "expected disabled, preferred, required or verify-identity",
            )),
        }
    }

    /// Opens one connection with `options` (from [`connect_options`]) to learn what the
    /// server offers, at cold start rather than in the middle of a load: under `Preferred`,
    /// a server without TLS gets the same options in plaintext, with a warning; under the
    /// stricter modes it is refused, naming the setting. Certificate and authentication
    /// errors come out here too.
    pub async fn settle(&self, options: Opts) -> Result<Opts, MysqlError> {
        if *self == Tls::Disabled {
            return Ok(options);
        }
        install_crypto_provider();
        // Without the database: db-init asks before it creates it.
        let probe = OptsBuilder::from_opts(options.clone()).db_name(None::<String>);
        match Conn::new(probe).await {
            Ok(conn) => {
                let _ = conn.disconnect().await;
                Ok(options)
            }
            Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            )) => {
                let host = options.ip_or_hostname().to_owned();
                if *self != Tls::Preferred {
                    return Err(MysqlError::NoTls {
                        host,
                        mode: self.name(),
                    });
                }
                tracing::warn!(
                    host,
                    "the database offers no TLS: connecting unencrypted (MYSQL_TLS=preferred; `required` would refuse)"
                );
                Ok(OptsBuilder::from_opts(options)
                    .ssl_opts(None::<SslOpts>)
                    .into())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// As `MYSQL_TLS` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Tls::Disabled => "disabled",
            Tls::Preferred => "preferred",
            Tls::Required => "required",
            Tls::VerifyIdentity { .. } => "verify-identity",
        }
    }

    fn ssl_opts(&self) -> Option<SslOpts> {
        match self {
            Tls::Disabled => None,
            Tls::Preferred | Tls::Required => {
                Some(SslOpts::default().with_danger_accept_invalid_certs(true))
            }
            Tls::VerifyIdentity { ca_file } => Some(
                SslOpts::default()
                    .with_root_certs(vec![ca_file.clone().into()])
                    // Only the CAs named: the RDS CAs are in no public store anyway.
                    .with_disable_built_in_roots(true),
            ),
        }
    }
}

/// mysql_async's TLS takes rustls's process-wide provider, which rustls cannot choose by
/// itself when a build enables both of its providers (sqlx brings ring, the AWS SDK and
/// mysql_async aws-lc-rs): name one, once. Another one installed first is kept.
fn install_crypto_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Connection options from Secrets Manager credentials; `database` when the secret names
/// none; TLS as `tls` asks, `Preferred` as if required until [`Tls::settle`] asks the server.
pub fn connect_options(
    credentials: &landfall_secrets::DbCredentials,
    database: Option<&str>,
    tls: &Tls,
) -> Opts {
    use secrecy::ExposeSecret;
    OptsBuilder::default()
        .ip_or_hostname(credentials.host.clone())
        .tcp_port(credentials.port.unwrap_or(3306))
        .user(Some(credentials.username.clone()))
        .pass(Some(credentials.password.expose_secret().to_owned()))
        .db_name(credentials.dbname.clone().or(database.map(str::to_owned)))
        // The database is reached over the network, as in AWS, even when it is local (the
        // driver would otherwise switch to its Unix socket, past whatever is in between).
        .prefer_socket(false)
        .ssl_opts(tls.ssl_opts())
        .into()
}

/// The database as a function reaches it: credentials from Secrets Manager, one pool per
/// container, rebuilt with fresh credentials after an authentication failure.
pub struct Database {
    credentials: landfall_secrets::CredentialSource,
    default_database: Option<String>,
    tls: Tls,
    pool: tokio::sync::RwLock<Option<Pool>>,
}

impl Database {
    pub fn new(
        credentials: landfall_secrets::CredentialSource,
        default_database: Option<String>,
        tls: Tls,
    ) -> Database {
        Database {
            credentials,
            default_database,
            tls,
            pool: tokio::sync::RwLock::new(None),
        }
    }

    /// `<PREFIX>_DATABASE` when the secret names no database, and `<PREFIX>_TLS`.
    pub fn from_env(
        credentials: landfall_secrets::CredentialSource,
        env: &Env,
        prefix: &str,
    ) -> Result<Database, ConfigError> {
        Ok(Database::new(
            credentials,
            env.optional(&format!("{prefix}_DATABASE"))
                .map(str::to_owned),
            Tls::from_env(env, prefix)?,
        ))
    }

    /// The options a connection opens with, TLS settled against the server
    /// ([`Tls::settle`]).
    pub async fn options(&self) -> Result<Opts, MysqlError> {
        let credentials = self.credentials.get().await?;
        self.tls
            .settle(connect_options(
                &credentials,
                self.default_database.as_deref(),
                &self.tls,
            ))
            .await
    }

    pub async fn pool(&self) -> Result<Pool, MysqlError> {
        if let Some(pool) = self.pool.read().await.as_ref() {
            return Ok(pool.clone());
        }
        let mut slot = self.pool.write().await;
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        let pool = Pool::new(self.options().await?);
        *slot = Some(pool.clone());
        Ok(pool)
    }

    /// After "access denied": the password may have been rotated.
    pub async fn reconnect_with_fresh_credentials(
        &self,
    ) -> Result<(), landfall_secrets::SecretError> {
        self.credentials.refresh().await?;
        *self.pool.write().await = None;
        Ok(())
    }
}
