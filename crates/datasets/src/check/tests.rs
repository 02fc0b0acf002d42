use super::*;
use crate::config::Datasets;

/// The shipped configuration: price_index's columns are what these tests check against.
fn datasets() -> Datasets {
    Datasets::parse("config/datasets.toml", crate::BUNDLED).unwrap()
}

const HEADER: &str = "ref_date,geo,category,product,uom,price\n";

/// Feeds `input` in chunks of `chunk` bytes: results must not depend on chunking.
fn check(input: &[u8], chunk: usize) -> Result<(String, u64), BadInput> {
    let datasets = datasets();
    let mut checker = CsvChecker::new(
        datasets.get("price_index").unwrap(),
        "landing/mysql/price_index/f.csv",
    );
    let mut out = Vec::new();
    for part in input.chunks(chunk.max(1)) {
        out.extend(checker.feed(part)?);
    }
    out.extend(checker.finish()?);
    Ok((String::from_utf8(out).unwrap(), checker.rows()))
}

#[test]
fn valid_rows_are_re_encoded_whatever_the_chunking() {
    let input = format!(
        "{HEADER}2024-01,Canada,Food,\"Bread, white\",675 g,3.49\n2024-02,Québec,Food,\"Say \"\"cheese\"\"\nplease\",,12\n2024-03,Ontario,Fuel,Gas,L,-0.5"
    );
    let expected = "2024-01,\"Canada\",\"Food\",\"Bread, white\",\"675 g\",3.49\n\
                    2024-02,\"Québec\",\"Food\",\"Say \"\"cheese\"\"\nplease\",NULL,12\n\
                    2024-03,\"Ontario\",\"Fuel\",\"Gas\",\"L\",-0.5\n";
    for chunk in [1, 2, 3, 7, 64, 1 << 20] {
        let (out, rows) = check(input.as_bytes(), chunk).unwrap();
        assert_eq!(rows, 3, "chunk {chunk}");
        assert_eq!(out, expected, "chunk {chunk}");
    }
}

fn error(input: &str) -> BadInput {
    let err_small = check(input.as_bytes(), 5).unwrap_err();
    let err_big = check(input.as_bytes(), 1 << 20).unwrap_err();
    assert_eq!(err_small, err_big);
    err_big
}

#[test]
fn wrong_column_count_names_the_line() {
    let err = error(&format!(
        "{HEADER}2024-01,Canada,Food,Bread,g,1.00\n2024-01,Canada,Food,Bread,1.00\n"
    ));
    assert_eq!(err.line, 3);
    assert_eq!(
        err.to_string(),
        "landing/mysql/price_index/f.csv: line 3: expected 6 columns, found 5"
    );
}

#[test]
fn bad_number_names_line_and_column() {
    let err = error(&format!("{HEADER}2024-01,Canada,Food,Bread,g,1.00\n2024-01,Canada,Food,Bread,g,1,50\n2024-01,Canada,Food,Bread,g,abc\n"));
    assert_eq!(err.line, 3, "{err}");
    let err = error(&format!("{HEADER}2024-01,Canada,Food,Bread,g,abc\n"));
    assert_eq!(
        (err.line, err.column, err.field.as_deref()),
        (2, Some(6), Some("price"))
    );
    assert!(
        err.to_string()
            .contains("line 2, column 6 (price): \"abc\" is not a number"),
        "{err}"
    );
    let err = error(&format!(
        "{HEADER}2024-01,Canada,Food,Bread,g,12345678901.00\n"
    ));
    assert!(err.reason.contains("does not fit decimal(12,2)"), "{err}");
    let err = error(&format!("{HEADER}2024-01,Canada,Food,Bread,g,1.234\n"));
    assert!(err.reason.contains("does not fit"), "{err}");
}

#[test]
fn bad_dates_missing_values_and_long_text() {
    let err = error(&format!("{HEADER}2024-13,Canada,Food,Bread,g,1.00\n"));
    assert_eq!(
        (err.column, err.reason.as_str()),
        (Some(1), "\"2024-13\" is not a year and month (YYYY-MM)")
    );
    let err = error(&format!("{HEADER}2024-01,,Food,Bread,g,1.00\n"));
    assert_eq!(
        (err.column, err.reason.as_str()),
        (Some(2), "missing value")
    );
    let err = error(&format!(
        "{HEADER}2024-01,{},Food,Bread,g,1.00\n",
        "x".repeat(65)
    ));
    assert!(err.reason.contains("65 characters, at most 64"), "{err}");
}

#[test]
fn unclosed_quote_is_reported_where_the_record_starts() {
    let err = error(&format!("{HEADER}2024-01,Canada,Food,Bread,g,1.00\n2024-01,Canada,\"Food,Bread,g,1.00\n2024-02,Canada,Food,Bread,g,1.00\n"));
    assert_eq!(err.line, 3);
    assert!(err.reason.contains("never closed"), "{err}");
}

#[test]
fn invalid_utf8_names_the_field() {
    let mut input = format!("{HEADER}2024-01,Canada,Food,").into_bytes();
    input.extend_from_slice(b"Br\xffad,g,1.00\n");
    let err = check(&input, 4).unwrap_err();
    assert_eq!((err.line, err.column), (2, Some(4)));
    assert!(err.reason.contains("invalid UTF-8"), "{err}");
}

#[test]
fn empty_and_header_only_files_are_refused() {
    assert!(error("").reason.contains("empty (0 bytes)"));
    assert!(error(HEADER).reason.contains("no data rows"));
}

#[test]
fn header_must_name_the_configured_columns() {
    let err = error("ref_date,geo,category,product,price,uom\n2024-01,Canada,Food,Bread,1.00,g\n");
    assert_eq!((err.line, err.column), (1, Some(5)));
    assert!(err.reason.contains("expected \"uom\""), "{err}");
}
