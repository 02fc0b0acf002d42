//! P1's rules as a file pipeline, without the loop (`landfall_landing::flow` runs it) and
//! without the calls (file-orchestrator invokes mysql-loader and starts tasks): what a `mysql/`
//! key is, how a file of a given size loads, and what the outcome emails say.

use crate::protocol::db_init;
use futures::stream::{self, StreamExt};
use landfall_failure::FunctionError;
use landfall_landing::flow::Summary;
use landfall_landing::{LandingError, LandingKey, ObjectVersion};
use landfall_mysql_datasets::{Dataset, Datasets, Promotion};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// Landing keys P1 owns.
pub const PREFIX: &str = "mysql";

/// What a `mysql/` key is.
#[derive(Debug, Clone, Copy)]
pub enum MysqlFile<'a> {
    /// `mysql/<dataset>/<file>.csv`
    Data { name: &'a str, dataset: &'a Dataset },
    /// `mysql/init/<file>.sql`: applied by the db-init task.
    Init,
}

/// Reads a landing key against the configured datasets.
pub fn route<'a>(key: &str, datasets: &'a Datasets) -> Result<MysqlFile<'a>, LandingError> {
    let key = LandingKey::parse(
        PREFIX,
        key,
        "mysql/<dataset>/<file>.csv or mysql/init/<file>.sql",
    )?;
    if key.folder == "init" {
        return if key.file.ends_with(".sql") {
            Ok(MysqlFile::Init)
        } else {
            Err(LandingError::unknown_key(
                key.key,
                "init scripts end in .sql",
            ))
        };
    }
    let name = key.dataset(&datasets.names())?;
    let (name, dataset) = datasets
        .datasets
        .get_key_value(name.as_str())
        .ok_or_else(|| LandingError::unknown_key(key.key, "no such dataset"))?;
    Ok(MysqlFile::Data {
        name: name.as_str(),
        dataset,
    })
}

// Sizes and rates from a 285 MB file on the local stack (README, "Big files"): parts staged
// at 5.8 MB/s, the promotion (the dataset's upsert procedure) at 2.2 MB/s.
/// The rate a step's time is estimated with: the slower of the two, the promotion's.
pub const DEFAULT_LOAD_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
/// A part stages in about 23 s (64 s estimated), a small fraction of the loader's 15 minutes.
pub const DEFAULT_SPLIT_BYTES: u64 = 128 * 1024 * 1024;
/// Promoting 1 GiB takes about 8 minutes at that rate; with splitting, staging and archiving
/// beside it a bigger file would not fit in 15, so it loads in an ECS task.
pub const DEFAULT_TASK_BYTES: u64 = 1024 * 1024 * 1024;

/// How a data file loads, by its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPlan {
    /// One transaction in mysql-loader, straight into the table (upsert) or staged and
    /// promoted.
    Whole,
    /// Cut into parts staged side by side, then promoted together.
    Split,
    /// The same single-transaction load as `Whole`, in an ECS task without Lambda's
    /// 15-minute limit.
    Task,
}

impl LoadPlan {
    /// Above `task_bytes` a file would not load in one invocation even split; above
    /// `split_bytes` a dataset with a load procedure splits. An upsert dataset's file loads
    /// whole at any size up to a task's: one transaction straight into its table is faster
    /// than staging parts and promoting them.
    pub fn of(size: u64, dataset: &Dataset, split_bytes: u64, task_bytes: u64) -> LoadPlan {
        if size > task_bytes {
            LoadPlan::Task
        } else if size > split_bytes && matches!(dataset.promotion(), Promotion::Procedure { .. }) {
            LoadPlan::Split
        } else {
            LoadPlan::Whole
        }
    }
}

/// Stages every part with `stage` (its index and the part; the rows it staged),
/// `concurrency` at a time; the rows staged in all. After a failure no new part starts and
/// the running ones finish (so nothing is still writing when the attempt is discarded); the
/// failure of the earliest part is returned — the first bad line of the file.
pub async fn stage_all<T, F, Fut>(
    parts: &[T],
    concurrency: usize,
    stage: F,
) -> Result<u64, FunctionError>
where
    T: Clone,
    F: Fn(usize, T) -> Fut,
    Fut: Future<Output = Result<u64, FunctionError>>,
{
    let failed = AtomicBool::new(false);
    let (failed, stage) = (&failed, &stage);
    // Owned parts: a closure over borrowed ones is not provably Send for every lifetime
    // (rust-lang/rust#110338), which the landing flow's future must be.
    let outcomes: Vec<Result<u64, FunctionError>> = stream::iter(parts.iter().cloned().enumerate())
        .map(|(index, part)| async move {
            if failed.load(Ordering::SeqCst) {
                return None; // not started after a failure
            }
            let staged = stage(index, part).await;
            if staged.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            Some(staged)
        })
        .buffered(concurrency.max(1))
        .filter_map(|outcome| async move { outcome })
        .collect()
        .await;
    outcomes.into_iter().sum()
}

/// A data file loaded and archived, as its email tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLoaded {
    pub dataset: String,
    pub rows: u64,
    pub already_loaded: bool,
    /// An upload of the key that landed later was loaded first (its version): this one
    /// loaded nothing, so as not to overwrite the later one's rows.
    pub superseded_by: Option<String>,
    pub parts: usize,
    pub plan: LoadPlan,
    pub archived_to: String,
    pub report_procedures: u64,
    /// Report objects written: "s3://… (N rows)".
    pub reports: Vec<String>,
    /// Why the reports were not rebuilt, when they were not: the file is loaded all the same.
    pub reports_failed: Option<String>,
}

/// An init script applied and archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptApplied {
    pub applied: db_init::Response,
    pub archived_to: String,
}

/// What P1 did with a file that got through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MysqlDone {
    Loaded(FileLoaded),
    Applied(ScriptApplied),
}

impl Summary for MysqlDone {
    fn subject(&self, object: &ObjectVersion) -> String {
        match self {
            MysqlDone::Loaded(FileLoaded {
                dataset,
                superseded_by: Some(_),
                ..
            }) => format!("{dataset}: {} superseded by a later upload", object.key),
            MysqlDone::Loaded(loaded) => format!(
                "{}: {} rows loaded from {}{}",
                loaded.dataset,
                loaded.rows,
                object.key,
                if loaded.reports_failed.is_some() {
                    " (reports failed)"
                } else {
                    ""
                }
            ),
            MysqlDone::Applied(_) => format!("database init: {}", object.key),
        }
    }

    fn result(&self) -> String {
        match self {
            MysqlDone::Loaded(FileLoaded {
                superseded_by: Some(later),
                ..
            }) => format!(
                "not loaded: an upload of the same key that landed later (version {later}) is \
                 loaded already, and this older one would overwrite its rows"
            ),
            MysqlDone::Loaded(loaded) => match (&loaded.reports_failed, loaded.already_loaded) {
                (Some(why), _) => format!(
                    "loaded; report failed ({why}); the reports are rebuilt by the next load or \
                     a `report` invoke (README, Runbook)"
                ),
                (None, true) => "already loaded earlier; nothing changed".to_owned(),
                (None, false) => "loaded".to_owned(),
            },
            MysqlDone::Applied(_) => "applied".to_owned(),
        }
    }

    fn details(&self) -> String {
        match self {
            MysqlDone::Loaded(loaded) => format!(
                "Rows loaded: {}\nRows rejected: 0\nParts: {}\nLoaded by: {}\nArchived to: {}\nReport procedures run: {}\nReports written:\n  {}\n",
                loaded.rows,
                loaded.parts,
                match loaded.plan {
                    LoadPlan::Task => "mysql-loader (ECS task)",
                    LoadPlan::Whole | LoadPlan::Split => "mysql-loader (Lambda)",
                },
                loaded.archived_to,
                loaded.report_procedures,
                loaded.reports.join("\n  "),
            ),
            MysqlDone::Applied(applied) => {
                let scripts: Vec<String> = applied
                    .applied
                    .scripts
                    .iter()
                    .map(|s| format!("{}: {}", s.name, s.outcome))
                    .collect();
                format!(
                    "Scripts:\n  {}\nArchived to: {}\n",
                    scripts.join("\n  "),
                    applied.archived_to
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_landing::Version;

    fn datasets() -> Datasets {
        Datasets::parse("datasets.toml", landfall_mysql_datasets::BUNDLED).unwrap()
    }

    #[test]
    fn routes_data_files_and_init_scripts() {
        let datasets = datasets();
        assert!(matches!(
            route("mysql/price_index/2024 01.CSV", &datasets).unwrap(),
            MysqlFile::Data {
                name: "price_index",
                ..
            }
        ));
        assert!(matches!(
            route("mysql/init/001_schema.sql", &datasets).unwrap(),
            MysqlFile::Init
        ));
        for (key, reason) in [
            ("mysql/unknown/x.csv", "no dataset \"unknown\""),
            ("mysql/init/x.csv", "end in .sql"),
            (
                "mysql/x.csv",
                "expected mysql/<dataset>/<file>.csv or mysql/init/<file>.sql",
            ),
            ("dynamodb/price_index/x.csv", "not under mysql/"),
        ] {
            let err = route(key, &datasets).unwrap_err().to_string();
            assert!(err.contains(reason) && err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn a_file_splits_only_for_a_procedure_and_goes_to_a_task_past_the_task_size() {
        let bundled = datasets();
        let upsert = bundled.get("price_index").expect("bundled");
        assert!(matches!(upsert.promotion(), Promotion::Upsert));
        // price_index with the procedure sql/mysql/010_price_index.sql defines for it.
        let staged = Datasets::parse(
            "datasets.toml",
            &landfall_mysql_datasets::BUNDLED.replace(
                "[datasets.price_index]\n",
                "[datasets.price_index]\nstage_table = \"price_index_stage\"\nload_procedure = \"load_price_index\"\n",
            ),
        )
        .unwrap();
        let procedure = staged.get("price_index").expect("bundled");
        assert!(matches!(procedure.promotion(), Promotion::Procedure { .. }));
        let (split, task) = (100, 1000);
        assert_eq!(LoadPlan::of(100, procedure, split, task), LoadPlan::Whole);
        assert_eq!(LoadPlan::of(101, procedure, split, task), LoadPlan::Split);
        assert_eq!(LoadPlan::of(101, upsert, split, task), LoadPlan::Whole);
        assert_eq!(LoadPlan::of(1000, upsert, split, task), LoadPlan::Whole);
        assert_eq!(LoadPlan::of(1001, upsert, split, task), LoadPlan::Task);
        assert_eq!(LoadPlan::of(1001, procedure, split, task), LoadPlan::Task);
    }

    #[tokio::test]
    async fn staging_stops_starting_parts_after_a_failure_and_names_the_earliest() {
        let started = std::sync::Mutex::new(Vec::new());
        let stage = |index: usize, rows: u64| {
            started.lock().unwrap().push(index);
            async move {
                match index {
                    1 | 2 => Err(FunctionError::permanent(format!("part {index}: line 3"))),
                    _ => Ok(rows),
                }
            }
        };
        let parts = [10, 20, 30, 40, 50, 60];
        let err = stage_all(&parts, 2, stage).await.unwrap_err();
        assert_eq!(err.message, "part 1: line 3", "the earliest part's failure");
        let started = started.into_inner().unwrap();
        assert!(
            !started.contains(&5),
            "no part starts after a failure: {started:?}"
        );
        assert_eq!(
            stage_all(&parts[..1], 2, |_, rows| async move { Ok(rows) })
                .await
                .unwrap(),
            10
        );
        assert_eq!(
            stage_all(&[1u64, 2, 3], 0, |_, rows| async move { Ok(rows) })
                .await
                .unwrap(),
            6
        );
    }

    #[test]
    fn the_load_email_tells_a_failed_report_without_calling_the_file_not_loaded() {
        let object = ObjectVersion {
            bucket: "landing".into(),
            key: "mysql/price_index/a.csv".into(),
            version: Version::Id("v1".into()),
        };
        let loaded = FileLoaded {
            dataset: "price_index".into(),
            rows: 250,
            already_loaded: false,
            superseded_by: None,
            parts: 1,
            plan: LoadPlan::Task,
            archived_to: "s3://archive/price_index/2026/12/05/a.csv".into(),
            report_procedures: 0,
            reports: vec![],
            reports_failed: Some("timeout".into()),
        };
        let done = MysqlDone::Loaded(loaded);
        assert_eq!(
            done.subject(&object),
            "price_index: 250 rows loaded from mysql/price_index/a.csv (reports failed)"
        );
        assert!(done.result().starts_with("loaded; report failed (timeout)"));
        assert!(done
            .details()
            .contains("Loaded by: mysql-loader (ECS task)\n"));
        let MysqlDone::Loaded(loaded) = done else {
            unreachable!()
        };
        let superseded = MysqlDone::Loaded(FileLoaded {
            rows: 0,
            superseded_by: Some("v2".into()),
            reports_failed: None,
            ..loaded
        });
        assert_eq!(
            superseded.subject(&object),
            "price_index: mysql/price_index/a.csv superseded by a later upload"
        );
        assert!(superseded
            .result()
            .starts_with("not loaded: an upload of the same key that landed later (version v2)"));
        let applied = MysqlDone::Applied(ScriptApplied {
            applied: db_init::Response {
                scripts: vec![db_init::Script {
                    name: "020_region_alias.sql".into(),
                    outcome: "applied (3 statements)".into(),
                }],
            },
            archived_to: "s3://archive/init/2026/12/05/020_region_alias.sql".into(),
        });
        assert_eq!(
            applied.subject(&object),
            "database init: mysql/price_index/a.csv"
        );
        assert!(applied
            .details()
            .contains("Scripts:\n  020_region_alias.sql: applied (3 statements)\n"));
    }
}
