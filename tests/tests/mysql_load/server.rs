//! What P1 relies on of the MySQL server and the connection to it: TLS as RDS offers it
//! (`MYSQL_TLS`: preferred, required, verified), and MySQL 8's default SQL mode on the
//! local MariaDB, so SQL RDS would refuse fails here too.

use anyhow::Result;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use landfall_devstack::sample::price_index_csv;
use landfall_mysql_datasets::Datasets;
use landfall_mysql_load::scripts;
use landfall_mysql_load::{connect_options, BatchId, LedgerSource, MysqlError, MysqlLoader, Tls};
use landfall_tests::mysql::{TestDatabase, TlsServer};
use landfall_tests::workspace_root;
use mysql_async::prelude::Queryable;

/// The cipher of a connection from `pool`, as the server sees it ("" when unencrypted).
async fn cipher(pool: &mysql_async::Pool) -> Result<String> {
    let mut conn = pool.get_conn().await?;
    let row: Option<(String, String)> = conn.query_first("SHOW STATUS LIKE 'Ssl_cipher'").await?;
    Ok(row.map(|(_, value)| value).unwrap_or_default())
}

/// Options for `credentials` under `tls`, settled against the server as a function does.
async fn settled(
    tls: &Tls,
    credentials: &landfall_secrets::DbCredentials,
) -> Result<mysql_async::Opts, MysqlError> {
    tls.settle(connect_options(credentials, None, tls)).await
}

/// RDS offers TLS on every instance: by default (`preferred`) the loader encrypts, and a file
/// goes through `LOAD DATA LOCAL` over it.
#[tokio::test]
async fn the_loader_encrypts_whenever_the_server_offers_tls_and_loads_over_it() -> Result<()> {
    let server = TlsServer::start().await?;
    let tls = Tls::Preferred;
    let pool = mysql_async::Pool::new(settled(&tls, &server.credentials("127.0.0.1")).await?);
    let cipher_in_use = cipher(&pool).await?;
    assert!(!cipher_in_use.is_empty(), "not encrypted");

    let mut conn = pool.get_conn().await?;
    conn.query_drop("CREATE DATABASE landfall CHARACTER SET utf8mb4; USE landfall")
        .await?;
    let mut paths: Vec<_> = std::fs::read_dir(workspace_root().join("sql/mysql"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        scripts::apply(&mut conn, &name, &std::fs::read_to_string(&path)?).await?;
    }
    let mut credentials = server.credentials("127.0.0.1");
    credentials.dbname = Some("landfall".into());
    let loader = MysqlLoader::new(mysql_async::Pool::new(settled(&tls, &credentials).await?));
    let dataset = Datasets::load(&workspace_root().join("config/datasets.toml"))?
        .get("price_index")
        .expect("price_index is configured")
        .clone();
    let key = "mysql/price_index/tls.csv";
    let source = LedgerSource {
        dataset: "price_index".into(),
        key: key.into(),
        version: "v1".into(),
        landed: None,
    };
    let body = stream::iter([Ok(Bytes::from(price_index_csv(0..2000)))]).boxed();
    let batch = BatchId::for_object("landing", key, "v1");
    let loaded = loader.load(&dataset, &batch, key, body, &source).await?;
    assert_eq!(loaded.rows, 2000);
    let mut conn = loader.conn().await?;
    let (_, loader_cipher): (String, String) = conn
        .query_first("SHOW STATUS LIKE 'Ssl_cipher'")
        .await?
        .expect("a status row");
    assert_eq!(loader_cipher, cipher_in_use, "the load ran encrypted");
    let rows: Option<u64> = conn.query_first("SELECT COUNT(*) FROM price_index").await?;
    assert_eq!(rows, Some(2000));
    Ok(())
}

/// A server without TLS (the local MariaDB) still serves `preferred`, unencrypted; the
/// stricter modes refuse it at once, naming the setting, as a permanent failure.
#[tokio::test]
async fn a_server_without_tls_is_reached_in_plaintext_only_when_tls_is_merely_preferred(
) -> Result<()> {
    let db = TestDatabase::create().await?;
    let credentials: landfall_secrets::DbCredentials =
        landfall_secrets::parse("local", &db.secret(3306).await?)?;
    let pool = mysql_async::Pool::new(settled(&Tls::Preferred, &credentials).await?);
    assert_eq!(cipher(&pool).await?, "", "this server offers no TLS");

    let server = TlsServer::start().await?; // only for a CA file that exists
    for tls in [
        Tls::Required,
        Tls::VerifyIdentity {
            ca_file: server.ca_file.clone(),
        },
    ] {
        let err = settled(&tls, &credentials).await.unwrap_err();
        assert!(
            matches!(err, MysqlError::NoTls { .. }),
            "{}: {err:?}",
            tls.name()
        );
        assert!(
            err.to_string().contains(&format!(
                "MYSQL_TLS={}, but the database at 127.0.0.1 offers no TLS",
                tls.name()
            )),
            "{err}"
        );
        assert_eq!(
            landfall_runtime::Classify::disposition(&err),
            landfall_runtime::Disposition::Permanent
        );
    }
    Ok(())
}

/// `verify-identity` trusts only the CA file given (RDS's bundle in AWS), and only a
/// certificate that names the host connected to.
#[tokio::test]
async fn verify_identity_trusts_only_the_given_ca_and_the_name_in_the_certificate() -> Result<()> {
    let server = TlsServer::start().await?;
    let by_name = server.credentials("localhost");
    let by_address = server.credentials("127.0.0.1"); // not in the certificate
    let verify = |ca_file: &std::path::Path| Tls::VerifyIdentity {
        ca_file: ca_file.to_owned(),
    };

    let pool = mysql_async::Pool::new(settled(&verify(&server.ca_file), &by_name).await?);
    assert!(!cipher(&pool).await?.is_empty(), "not encrypted");
    let wrong_host = settled(&verify(&server.ca_file), &by_address)
        .await
        .unwrap_err();
    assert!(
        wrong_host
            .to_string()
            .contains("certificate not valid for name \"127.0.0.1\""),
        "{wrong_host}"
    );
    let wrong_ca = settled(&verify(&server.other_ca_file), &by_name)
        .await
        .unwrap_err();
    assert!(wrong_ca.to_string().contains("UnknownIssuer"), "{wrong_ca}");
    Ok(())
}

/// `MYSQL_TLS` as the template passes it: `preferred` when unset, a verifying mode only with
/// a CA file that is there, anything else refused at cold start naming the variable.
#[test]
fn mysql_tls_is_read_from_the_environment_and_checked_at_cold_start() {
    use landfall_runtime::Env;
    let tls = |pairs: &[(&str, &str)]| Tls::from_env(&Env::from_pairs(pairs.to_vec()), "MYSQL");
    assert_eq!(tls(&[]).unwrap(), Tls::Preferred);
    assert_eq!(
        tls(&[("MYSQL_TLS", "")]).unwrap(),
        Tls::Preferred,
        "an empty parameter"
    );
    assert_eq!(tls(&[("MYSQL_TLS", "required")]).unwrap(), Tls::Required);
    assert_eq!(tls(&[("MYSQL_TLS", "disabled")]).unwrap(), Tls::Disabled);
    let cargo_toml = workspace_root().join("Cargo.toml");
    assert_eq!(
        tls(&[
            ("MYSQL_TLS", "verify-identity"),
            ("MYSQL_TLS_CA_FILE", cargo_toml.to_str().unwrap())
        ])
        .unwrap(),
        Tls::VerifyIdentity {
            ca_file: cargo_toml
        }
    );
    let missing = tls(&[("MYSQL_TLS", "verify-identity")])
        .unwrap_err()
        .to_string();
    assert!(missing.contains("MYSQL_TLS_CA_FILE"), "{missing}");
    let absent = tls(&[
        ("MYSQL_TLS", "verify-identity"),
        ("MYSQL_TLS_CA_FILE", "/opt/rds/none.pem"),
    ])
    .unwrap_err()
    .to_string();
    assert!(absent.contains("/opt/rds/none.pem"), "{absent}");
    let unknown = tls(&[("MYSQL_TLS", "verify-ca")]).unwrap_err().to_string();
    assert!(
        unknown.contains("MYSQL_TLS") && unknown.contains("verify-identity"),
        "{unknown}"
    );
}

/// The tests run under MySQL 8's default sql_mode (`scripts/ensure-databases.sh` sets it on the
/// local MariaDB), so SQL that RDS MySQL would refuse — a GROUP BY that leaves a column out, a
/// zero date — fails here too.
#[tokio::test]
async fn the_local_mariadb_enforces_mysql_8s_default_sql_mode() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mode: Option<String> = db
        .conn()
        .await?
        .query_first("SELECT @@SESSION.sql_mode")
        .await?;
    let mode = mode.unwrap_or_default();
    for required in [
        "ONLY_FULL_GROUP_BY",
        "STRICT_TRANS_TABLES",
        "NO_ZERO_IN_DATE",
        "NO_ZERO_DATE",
        "ERROR_FOR_DIVISION_BY_ZERO",
    ] {
        assert!(mode.contains(required), "{required} missing from {mode}");
    }
    let mut conn = db.conn().await?;
    conn.query_drop("CREATE TABLE t (a INT, b INT)").await?;
    let loose = conn.query_drop("SELECT a, b FROM t GROUP BY a").await;
    assert!(loose.is_err(), "a column neither grouped nor aggregated");
    Ok(())
}
