//! The gate for SQL that must run on RDS MySQL 8.0 and 8.4 as well as on the MariaDB the
//! local stack runs: no MySQL 8 server installs here, so every statement P1 ships or sends
//! (`sql/mysql`, the MySQL crates, db-init, the MySQL functions) is read for the forms
//! MariaDB accepts and MySQL 8 refuses or warns about. Supported servers: README, "P1".

use std::path::{Path, PathBuf};

/// (form, why MySQL 8 refuses it), matched in lower case with spaces folded.
const MARIADB_ONLY: &[(&str, &str)] = &[
    (
        "create or replace procedure",
        "MySQL has no CREATE OR REPLACE PROCEDURE: DROP PROCEDURE IF EXISTS, then CREATE",
    ),
    ("create or replace function", "MySQL has no CREATE OR REPLACE FUNCTION"),
    ("create or replace table", "MySQL has no CREATE OR REPLACE TABLE"),
    ("create or replace trigger", "MySQL has no CREATE OR REPLACE TRIGGER"),
    (
        "=values(",
        "VALUES(col) in ON DUPLICATE KEY UPDATE is deprecated since MySQL 8.0.20 (warning 1287): name the new values through a derived table",
    ),
    (" returning ", "MySQL has no INSERT/DELETE … RETURNING"),
    ("add column if not exists", "MySQL has no ADD COLUMN IF NOT EXISTS"),
    ("drop column if exists", "MySQL has no DROP COLUMN IF EXISTS"),
    ("create index if not exists", "MySQL has no CREATE INDEX IF NOT EXISTS"),
    ("drop index if exists", "MySQL has no DROP INDEX IF EXISTS"),
    ("create sequence", "MySQL has no sequences"),
    ("nextval(", "MySQL has no sequences"),
    ("with system versioning", "MySQL has no system-versioned tables"),
    ("engine=aria", "MySQL has no Aria engine"),
    ("set statement", "MySQL has no SET STATEMENT … FOR"),
    ("execute immediate", "MySQL has no EXECUTE IMMEDIATE"),
];

/// Lower case, comments dropped, white space folded to one space and none around `=`/`(`.
fn folded(text: &str, comment: &str) -> String {
    let code: String = text
        .lines()
        .map(|line| line.split(comment).next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let spaced = code.split_whitespace().collect::<Vec<_>>().join(" ");
    spaced
        .replace(" =", "=")
        .replace("= ", "=")
        .replace(" (", "(")
}

/// Each MariaDB-only form in `text`, with why.
fn violations(text: &str, comment: &str) -> Vec<&'static str> {
    let text = format!(" {} ", folded(text, comment));
    MARIADB_ONLY
        .iter()
        .filter(|(form, _)| text.contains(form))
        .map(|(_, why)| *why)
        .collect()
}

fn files(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, extension, out);
        } else if path.extension().is_some_and(|e| e == extension) {
            out.push(path);
        }
    }
}

#[test]
fn the_sql_p1_ships_and_sends_runs_on_mysql_8_and_mariadb() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    let mut checked = vec![];
    let mut sql = vec![];
    files(&root.join("sql/mysql"), "sql", &mut sql);
    let mut rust = vec![];
    for dir in [
        "crates/mysql",
        "tasks/db-init",
        "functions/mysql-loader",
        "functions/mysql-reporter",
    ] {
        files(&root.join(dir), "rs", &mut rust);
    }
    let me = Path::new(file!()).file_name().unwrap_or_default();
    rust.retain(|p| p.file_name() != Some(me));
    for (paths, comment) in [(&sql, "--"), (&rust, "//")] {
        for path in paths {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let found = violations(&text, comment);
            assert!(found.is_empty(), "{}: {found:#?}", path.display());
            checked.push(path);
        }
    }
    assert!(sql.len() >= 3 && rust.len() >= 10, "read {checked:?}");
}

#[test]
fn the_gate_finds_each_mariadb_only_form() {
    let load = "CREATE OR REPLACE PROCEDURE p() BEGIN INSERT INTO t (a) SELECT a FROM s \
                ON DUPLICATE KEY UPDATE a = VALUES ( a ); END";
    assert_eq!(violations(load, "--").len(), 2);
    assert!(violations("DELETE FROM t WHERE a = 1 RETURNING a", "--").len() == 1);
    // A comment may name them; a row alias-free derived-table upsert passes.
    let portable = "-- not CREATE OR REPLACE PROCEDURE\nDROP PROCEDURE IF EXISTS p;\n\
                    INSERT INTO t (a) SELECT * FROM (SELECT a AS new_a FROM s) AS d \
                    ON DUPLICATE KEY UPDATE a = new_a";
    assert!(violations(portable, "--").is_empty());
}
