//! A private MariaDB database per test, dropped afterwards.

use anyhow::Result;
use landfall_mysql_load::scripts;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `MYSQL_URL` (default: the local stack's root on 127.0.0.1:3306).
pub fn server_url() -> String {
    std::env::var("MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub struct TestDatabase {
    pub name: String,
    pool: Pool,
}

impl TestDatabase {
    pub async fn create() -> Result<TestDatabase> {
        let name = format!(
            "landfall_t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let server = Opts::from_url(&server_url())?;
        let mut admin = Conn::new(server.clone()).await?;
        admin
            .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .await?;
        admin
            .query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .await?;
        admin.disconnect().await?;
        let pool = Pool::new(OptsBuilder::from_opts(server).db_name(Some(name.clone())));
        Ok(TestDatabase { name, pool })
    }

    /// With every script in sql/mysql applied, as db-init does.
    pub async fn create_with_scripts() -> Result<TestDatabase> {
        let db = TestDatabase::create().await?;
        let mut conn = db.conn().await?;
        let mut paths: Vec<_> = std::fs::read_dir(crate::workspace_root().join("sql/mysql"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "sql"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            scripts::apply(&mut conn, &name, &std::fs::read_to_string(&path)?).await?;
        }
        Ok(db)
    }

    /// The RDS-shaped secret of a user of this database alone, with a password of its own
    /// (so every test's logs and payloads can be searched for it), reached at `port` — 3306,
    /// or a fault proxy's. The user goes with the database.
    pub async fn secret(&self, port: u16) -> Result<String> {
        let password = format!("pw-{}-{}", self.name, std::process::id() ^ 0x5eed);
        let mut admin = Conn::new(Opts::from_url(&server_url())?).await?;
        // CREATE USER takes no bind parameter; the password is ours, letters, digits and `_-`.
        admin
            .query_drop(format!(
                "CREATE OR REPLACE USER `{}`@'%' IDENTIFIED BY '{password}'",
                self.name
            ))
            .await?;
        admin
            .query_drop(format!("GRANT ALL ON `{0}`.* TO `{0}`@'%'", self.name))
            .await?;
        admin.disconnect().await?;
        Ok(
            serde_json::json!({"host": "127.0.0.1", "port": port, "username": self.name,
                              "password": password, "dbname": self.name})
            .to_string(),
        )
    }

    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    pub async fn conn(&self) -> Result<Conn> {
        Ok(self.pool.get_conn().await?)
    }

    /// How many rows `table` holds.
    pub async fn rows(&self, table: &str) -> Result<u64> {
        self.count(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// The number `sql` (a `SELECT COUNT(*) …`) answers.
    pub async fn count(&self, sql: &str) -> Result<u64> {
        Ok(self
            .conn()
            .await?
            .query_first::<u64, _>(sql)
            .await?
            .unwrap_or(0))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        crate::clean_up_detached(move || async move {
            let mut admin = Conn::new(Opts::from_url(&server_url()).ok()?).await.ok()?;
            admin
                .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .await
                .ok()?;
            admin
                .query_drop(format!("DROP USER IF EXISTS `{name}`@'%'"))
                .await
                .ok()?;
            admin.disconnect().await.ok()
        });
    }
}

/// The bundled datasets file with price_index promoted by `load_price_index` through
/// `price_index_stage` (both defined in sql/mysql/010_price_index.sql): the path a dataset
/// with a load procedure takes, split files included.
pub fn procedure_datasets_text() -> String {
    landfall_mysql_datasets::BUNDLED.replace(
        "[datasets.price_index]\n",
        "[datasets.price_index]\nstage_table = \"price_index_stage\"\nload_procedure = \"load_price_index\"\n",
    )
}

/// price_index as a dataset with a load procedure.
pub fn procedure_dataset() -> landfall_mysql_datasets::Dataset {
    let datasets =
        landfall_mysql_datasets::Datasets::parse("datasets.toml", &procedure_datasets_text())
            .expect("the bundled datasets with a procedure");
    let dataset = datasets.get("price_index").expect("price_index").clone();
    assert!(matches!(
        dataset.promotion(),
        landfall_mysql_datasets::Promotion::Procedure { .. }
    ));
    dataset
}

/// `procedure_datasets_text` as a file the functions can read (`DATASETS_FILE`); written
/// once per run under target/, replaced atomically so concurrent tests never see half.
pub fn procedure_datasets_file() -> std::path::PathBuf {
    let dir = crate::workspace_root().join("target/test-config");
    let path = dir.join("datasets-procedure.toml");
    let text = procedure_datasets_text();
    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
        std::fs::create_dir_all(&dir).expect("target/test-config");
        let partial = dir.join(format!("datasets-procedure.{}.tmp", std::process::id()));
        std::fs::write(&partial, &text).expect("writing the datasets file");
        std::fs::rename(&partial, &path).expect("renaming the datasets file");
    }
    path
}

/// A MariaDB server of its own that offers TLS, as every RDS instance does: a certificate for
/// `localhost` signed by a CA made for it (`ca_file`), beside a CA that signed nothing
/// (`other_ca_file`). Root, without a password, on `port`; stopped and removed when dropped.
/// The local MariaDB offers no TLS, so the two together cover both kinds of server.
pub struct TlsServer {
    pub port: u16,
    pub ca_file: std::path::PathBuf,
    pub other_ca_file: std::path::PathBuf,
    dir: std::path::PathBuf,
    server: tokio::process::Child,
}

impl TlsServer {
    pub async fn start() -> Result<TlsServer> {
        let dir = std::env::temp_dir().join(format!(
            "landfall-tls-mariadb-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        std::fs::write(dir.join("san"), "subjectAltName=DNS:localhost\n")?;
        let (ca, ca_key, other, other_key) = (
            path("ca.pem"),
            path("ca.key"),
            path("other.pem"),
            path("other.key"),
        );
        let (cert, key, request, san) = (
            path("server.pem"),
            path("server.key"),
            path("server.csr"),
            path("san"),
        );
        let self_signed = |key: &str, cert: &str, subject: &str| {
            let args = [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ];
            let mut args: Vec<String> = args.map(str::to_owned).to_vec();
            args.extend(["-keyout", key, "-out", cert, "-subj", subject].map(str::to_owned));
            args
        };
        run(
            "openssl",
            &self_signed(&ca_key, &ca, "/CN=landfall test CA"),
        )
        .await?;
        run(
            "openssl",
            &self_signed(&other_key, &other, "/CN=another CA"),
        )
        .await?;
        let request_args = [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ];
        let mut args: Vec<String> = request_args.map(str::to_owned).to_vec();
        args.extend(["-keyout", &key, "-out", &request].map(str::to_owned));
        run("openssl", &args).await?;
        let sign = [
            "x509",
            "-req",
            "-days",
            "2",
            "-CAcreateserial",
            "-in",
            &request,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-out",
            &cert,
            "-extfile",
            &san,
        ];
        run("openssl", &sign.map(str::to_owned)).await?;
        // Each server keeps its temporary files to itself: two bootstraps at once sharing /tmp
        // failed (`Unknown table 'mysql.tmp_user_sys'`); and bootstraps run one at a time.
        std::fs::create_dir_all(path("tmp"))?;
        static BOOTSTRAP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let bootstrap = BOOTSTRAP.lock().await;
        run(
            "mariadb-install-db",
            &[
                "--no-defaults".into(),
                format!("--datadir={}", path("data")),
                format!("--tmpdir={}", path("tmp")),
                "--user=root".into(),
                "--auth-root-authentication-method=normal".into(),
                "--skip-test-db".into(),
            ],
        )
        .await?;
        drop(bootstrap);
        let port = crate::free_port()?;
        let server = tokio::process::Command::new(mariadbd())
            .args([
                "--no-defaults".into(),
                format!("--datadir={}", path("data")),
                format!("--tmpdir={}", path("tmp")),
                "--user=root".into(),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", path("sock")),
                format!("--pid-file={}", path("pid")),
                "--innodb-buffer-pool-size=16M".into(),
                "--local-infile=1".into(),
                format!("--ssl-ca={ca}"),
                format!("--ssl-cert={cert}"),
                format!("--ssl-key={key}"),
            ])
            .stdout(std::fs::File::create(dir.join("server.log"))?)
            .stderr(std::fs::File::create(dir.join("server.err"))?)
            .kill_on_drop(true)
            .spawn()?;
        let tls = TlsServer {
            port,
            ca_file: dir.join("ca.pem"),
            other_ca_file: dir.join("other.pem"),
            dir,
            server,
        };
        if crate::wait_for_port(port, std::time::Duration::from_secs(30))
            .await
            .is_err()
        {
            anyhow::bail!(
                "the TLS MariaDB did not start: {}",
                std::fs::read_to_string(tls.dir.join("server.err")).unwrap_or_default()
            );
        }
        Ok(tls)
    }

    /// Root's credentials at `host` (a name the certificate holds, or not).
    pub fn credentials(&self, host: &str) -> landfall_secrets::DbCredentials {
        landfall_secrets::DbCredentials {
            host: host.to_owned(),
            port: Some(self.port),
            username: "root".into(),
            password: String::new().into(),
            dbname: Some("mysql".into()),
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.server.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// mariadbd, wherever Debian put it (sbin is not always on PATH).
fn mariadbd() -> &'static str {
    if std::path::Path::new("/usr/sbin/mariadbd").exists() {
        "/usr/sbin/mariadbd"
    } else {
        "mariadbd"
    }
}

async fn run(program: &str, args: &[String]) -> Result<()> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| anyhow::anyhow!("{program}: {e}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
