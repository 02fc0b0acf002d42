//! What PostgreSQL runs and Redshift does not: the emulation refuses it, so SQL that works
//! here works on Redshift too. From the Redshift developer guide's "Unsupported PostgreSQL
//! features" and "Unsupported PostgreSQL data types", and the INSERT/UPDATE/DELETE syntax
//! (no `ON CONFLICT`, no `RETURNING`). Keys and uniqueness are "informational only" in
//! Redshift but enforced by PostgreSQL, so the emulation refuses declaring them: no code may
//! rely on an enforcement Redshift never does.

/// (the words in a row, what Redshift says or lacks)
const LACKS: &[(&[&str], &str)] = &[
    (
        &["ON", "CONFLICT"],
        "INSERT … ON CONFLICT (Redshift has MERGE)",
    ),
    (&["RETURNING"], "RETURNING"),
    (&["CREATE", "INDEX"], "indexes"),
    (&["CREATE", "UNIQUE", "INDEX"], "indexes"),
    (&["CREATE", "TRIGGER"], "triggers"),
    (&["CREATE", "SEQUENCE"], "sequences"),
    (&["NEXTVAL"], "sequences"),
    (&["INHERITS"], "table inheritance"),
    (&["PARTITION", "BY", "RANGE"], "table partitioning"),
    (&["PARTITION", "BY", "LIST"], "table partitioning"),
    (&["PARTITION", "BY", "HASH"], "table partitioning"),
    (&["CHECK", "("], "CHECK constraints"),
    (
        &["PRIMARY", "KEY"],
        "enforced primary keys (Redshift's are informational only)",
    ),
    (
        &["UNIQUE"],
        "enforced uniqueness (Redshift's is informational only)",
    ),
    (
        &["REFERENCES"],
        "enforced foreign keys (Redshift's are informational only)",
    ),
    (&["ARRAY", "["], "array constructors"),
    (&["SERIAL"], "the SERIAL type (Redshift has IDENTITY)"),
    (&["BIGSERIAL"], "the BIGSERIAL type (Redshift has IDENTITY)"),
    (
        &["SMALLSERIAL"],
        "the SMALLSERIAL type (Redshift has IDENTITY)",
    ),
    (&["BYTEA"], "the BYTEA type"),
    (&["JSONB"], "the JSONB type (Redshift has SUPER)"),
    (&["UUID"], "the UUID type"),
    (&["MONEY"], "the MONEY type"),
    (&["HSTORE"], "the HSTORE type"),
];

/// The statement's words, upper-cased, with `(` and `[` as words of their own; string
/// literals and comments left out, procedure bodies (`$$ … $$`) kept (they are SQL too).
fn words(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |word: &mut String, words: &mut Vec<String>| {
        if !word.is_empty() {
            words.push(word.to_ascii_uppercase());
            word.clear();
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                flush(&mut word, &mut words);
                while let Some(c) = chars.next() {
                    if c == '\'' && chars.next_if_eq(&'\'').is_none() {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut word, &mut words);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word, &mut words);
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                // A quoted identifier is a name, never a keyword.
                flush(&mut word, &mut words);
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
                words.push("\"\"".into());
            }
            c if c.is_alphanumeric() || c == '_' => word.push(c),
            '(' | '[' => {
                flush(&mut word, &mut words);
                words.push(c.to_string());
            }
            _ => flush(&mut word, &mut words),
        }
    }
    flush(&mut word, &mut words);
    words
}

/// `Some(error)` when the statement uses what Redshift lacks.
pub fn refuse(sql: &str) -> Option<String> {
    let words = words(sql);
    LACKS.iter().find_map(|(pattern, what)| {
        words
            .windows(pattern.len())
            .any(|w| w.iter().zip(pattern.iter()).all(|(a, b)| a == b))
            .then(|| {
                format!(
                    "ERROR: {} is not supported by Amazon Redshift: {what} (the local Redshift \
                     refuses what Redshift lacks)",
                    pattern.join(" ")
                )
            })
    })
}

#[cfg(test)]
mod tests {
    use super::refuse;

    #[test]
    fn postgresql_only_sql_is_refused_naming_what_redshift_lacks() {
        for (sql, lacking) in [
            (
                "INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING",
                "ON CONFLICT",
            ),
            ("insert into t (a) values (1) returning a", "RETURNING"),
            ("CREATE INDEX t_a ON t (a)", "indexes"),
            ("create unique index t_a on t (a)", "indexes"),
            ("CREATE TABLE t (id BIGSERIAL, a INT)", "BIGSERIAL"),
            ("CREATE TABLE t (a INT CHECK (a > 0))", "CHECK constraints"),
            ("CREATE TABLE t (a INT PRIMARY KEY)", "primary keys"),
            ("CREATE TABLE t (a INT, UNIQUE (a))", "uniqueness"),
            ("CREATE TABLE t (a INT REFERENCES u (a))", "foreign keys"),
            ("CREATE TABLE t (a JSONB)", "SUPER"),
            ("SELECT ARRAY[1, 2]", "array constructors"),
            (
                "CREATE PROCEDURE p() AS $$ BEGIN INSERT INTO t VALUES (1) RETURNING a; END $$ LANGUAGE plpgsql",
                "RETURNING",
            ),
            ("CREATE TABLE t (a INT) PARTITION BY RANGE (a)", "partitioning"),
        ] {
            let refused = refuse(sql).unwrap_or_else(|| panic!("{sql} was not refused"));
            assert!(refused.contains(lacking), "{sql}: {refused}");
        }
    }

    #[test]
    fn redshift_sql_and_words_inside_strings_and_names_pass() {
        for sql in [
            "SELECT 'ON CONFLICT, RETURNING, PRIMARY KEY' AS text",
            "SELECT \"unique\" FROM t -- a comment about RETURNING",
            "/* CREATE INDEX */ SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
            "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b WHEN NOT MATCHED THEN INSERT VALUES (s.a, s.b)",
            "CREATE TABLE t (id BIGINT IDENTITY(1, 1), a VARCHAR(20) NOT NULL) DISTKEY (a) SORTKEY (id)",
            "COPY t FROM 's3://b/k' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET",
        ] {
            assert_eq!(refuse(sql), None, "{sql}");
        }
    }
}
