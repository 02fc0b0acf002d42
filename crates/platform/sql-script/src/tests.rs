use super::*;

fn sql(script: &str) -> Vec<String> {
    split(script).unwrap().into_iter().map(|s| s.sql).collect()
}

#[test]
fn plain_statements_with_lines() {
    let statements = split("CREATE TABLE a (x INT);\n\nINSERT INTO a VALUES (1);\n").unwrap();
    assert_eq!(statements.len(), 2);
    assert_eq!(
        statements[1],
        Statement {
            sql: "INSERT INTO a VALUES (1)".into(),
            line: 3
        }
    );
}

#[test]
fn delimiter_blocks_keep_semicolons_inside_procedures() {
    let script = "DROP PROCEDURE IF EXISTS p;\nDELIMITER $$\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND$$\nDELIMITER ;\nCALL p();\n";
    assert_eq!(
        sql(script),
        [
            "DROP PROCEDURE IF EXISTS p",
            "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND",
            "CALL p()",
        ]
    );
    assert_eq!(split(script).unwrap()[1].line, 3);
}

#[test]
fn delimiter_keyword_is_case_insensitive_and_multi_character() {
    assert_eq!(
        sql("delimiter //\nSELECT 1; SELECT 2//\nDelimiter ;\nSELECT 3;"),
        ["SELECT 1; SELECT 2", "SELECT 3"]
    );
}

#[test]
fn quoted_and_commented_delimiters_do_not_split() {
    let script = r#"INSERT INTO t VALUES ('a;b', "c;d", 'it''s; fine', 'back\';slash');
-- a comment; with a semicolon
# another; comment
/* block; comment */ SELECT `odd;name` FROM t;"#;
    assert_eq!(
        sql(script),
        [
            r#"INSERT INTO t VALUES ('a;b', "c;d", 'it''s; fine', 'back\';slash')"#,
            "-- a comment; with a semicolon\n# another; comment\n/* block; comment */ SELECT `odd;name` FROM t",
        ]
    );
}

#[test]
fn comment_only_tail_and_double_dash_without_space() {
    assert_eq!(sql("SELECT 5--3;\n-- trailing comment\n"), ["SELECT 5--3"]);
}

#[test]
fn statement_without_final_delimiter_is_kept() {
    assert_eq!(sql("SELECT 1;\nSELECT 2"), ["SELECT 1", "SELECT 2"]);
}

#[test]
fn unterminated_quote_or_comment_names_the_line() {
    assert_eq!(
        split("SELECT 1;\nSELECT 'oops;\n").unwrap_err(),
        ScriptError::Unterminated {
            what: "a '…' string",
            line: 2
        }
    );
    assert_eq!(
        split("\n\n/* never closed").unwrap_err(),
        ScriptError::Unterminated {
            what: "a /* comment",
            line: 3
        }
    );
    assert_eq!(
        split("DELIMITER\nSELECT 1;").unwrap_err(),
        ScriptError::EmptyDelimiter { line: 1 }
    );
}

#[test]
fn versioned_comments_are_code() {
    assert_eq!(
        sql("/*!40101 SET NAMES utf8mb4 */;"),
        ["/*!40101 SET NAMES utf8mb4 */"]
    );
}

#[test]
fn dollar_quoted_bodies_keep_their_semicolons() {
    let script = "CREATE PROCEDURE p() AS $$\nBEGIN\n  DELETE FROM t;\n  RAISE INFO 'a;b';\nEND;\n$$ LANGUAGE plpgsql;\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\nSELECT price$1 FROM t;";
    let statements = split(script).unwrap();
    assert_eq!(statements.len(), 3, "{statements:?}");
    assert!(statements[0].sql.ends_with("$$ LANGUAGE plpgsql"));
    assert_eq!(statements[1].line, 7);
    assert!(statements[1].sql.contains("SELECT 1; $body$"));
    // `$` inside an identifier opens nothing.
    assert_eq!(statements[2].sql, "SELECT price$1 FROM t");
    assert_eq!(
        split("CREATE PROCEDURE p() AS $$\nBEGIN").unwrap_err(),
        ScriptError::Unterminated {
            what: "a $…$ quoted body",
            line: 1
        }
    );
}

/// Found by `make fuzz` (sql_script): the splitter walked bytes and sliced the script at
/// each one, so any character of more than one byte outside a quote or comment — a unicode
/// identifier, a BOM, text in a `$$` body, a DELIMITER line's tenth byte — panicked, and
/// db-init with it.
#[test]
fn characters_of_several_bytes_anywhere_split_cleanly() {
    assert_eq!(sql("\u{31f}"), ["\u{31f}"]);
    assert_eq!(
        sql("SELECT 1;\nCREATE TABLE café (prix int);"),
        ["SELECT 1", "CREATE TABLE café (prix int)"]
    );
    assert_eq!(
        sql("CREATE FUNCTION f() RETURNS text AS $$ SELECT 'é'; $$ LANGUAGE sql;\nSELECT 2;").len(),
        2
    );
    assert_eq!(sql("DELIMIT€R x\nSELECT 1;"), ["DELIMIT€R x\nSELECT 1"]);
}
