//! A PostgreSQL session from a secret, with one credential refresh after an authentication
//! failure (the password may have been rotated since the container cached it).

use crate::{CredentialSource, DbCredentials, SecretError};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, PgConnection};

/// Why a PostgreSQL session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The credentials could not be had.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The server refused or could not be reached.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Wrong user or password (SQLSTATE class 28).
pub fn is_authentication(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e)
        if matches!(e.code().as_deref(), Some("28P01") | Some("28000")))
}

/// A session with the credentials `secret` holds.
pub async fn connect(
    credentials: &CredentialSource,
    ssl_mode: PgSslMode,
    application: &str,
) -> Result<PgConnection, ConnectError> {
    let options = |c: &DbCredentials| {
        let options = PgConnectOptions::new()
            .host(&c.host)
            .port(c.port.unwrap_or(5432))
            .username(&c.username)
            .password(c.password.expose_secret())
            .ssl_mode(ssl_mode)
            .application_name(application);
        match &c.dbname {
            Some(database) => options.database(database),
            None => options,
        }
    };
    match PgConnection::connect_with(&options(&credentials.get().await?)).await {
        Err(err) if is_authentication(&err) => {
            let fresh = credentials.refresh().await?;
            Ok(PgConnection::connect_with(&options(&fresh)).await?)
        }
        other => Ok(other?),
    }
}
