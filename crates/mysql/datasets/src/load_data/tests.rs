use crate::config::Datasets;
use crate::BadInput;
use landfall_csv_check::Origin;

/// The shipped configuration: price_index's columns are what these tests check against.
fn datasets() -> Datasets {
    Datasets::parse("config/datasets.toml", crate::BUNDLED).unwrap()
}

const HEADER: &str = "ref_date,geo,category,product,uom,price\n";

/// Feeds `input` in chunks of `chunk` bytes: results must not depend on chunking.
fn check(input: &[u8], chunk: usize) -> Result<(String, u64), BadInput> {
    let datasets = datasets();
    let mut checker = datasets
        .get("price_index")
        .unwrap()
        .checker("landing/mysql/price_index/f.csv");
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

/// `rows` joined with `ending`, the last bad (a month 13), after the header.
fn with_ending(ending: &str, rows: &[&str]) -> String {
    let header = HEADER.trim_end();
    let mut lines = vec![header];
    lines.extend_from_slice(rows);
    lines.join(ending) + ending
}

#[test]
fn line_numbers_are_right_for_lf_crlf_and_cr_alone() {
    for ending in ["\n", "\r\n", "\r"] {
        let input = with_ending(ending, &["2024-01,A,F,P,g,1.00", "2024-13,A,F,P,g,1.00"]);
        let err = error(&input);
        assert_eq!((err.line, err.column), (3, Some(1)), "{ending:?}: {err}");
        // The same with the bad row last and no line end after it.
        let input = input.trim_end_matches(['\r', '\n']);
        assert_eq!(error(input).line, 3, "{ending:?} without a final line end");
    }
}

#[test]
fn a_line_end_inside_quotes_counts_as_a_line() {
    for ending in ["\n", "\r\n"] {
        let quoted = format!("2024-01,A,F,\"two{ending}lines\",g,1.00");
        let input = with_ending(ending, &[&quoted, "2024-01,A,F,P,g,x"]);
        let err = error(&input);
        assert_eq!((err.line, err.column), (4, Some(6)), "{ending:?}: {err}");
    }
}

#[test]
fn blank_lines_are_skipped_and_counted() {
    let err = error(&format!("{HEADER}\r\n\r\n2024-01,A,F,P,g,x\r\n"));
    assert_eq!(err.line, 4, "{err}");
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_first_field() {
    let input = format!("\u{feff}{HEADER}2024-01,A,F,P,g,1.00\r\n2024-01,A,F,P,g,1.0.0\r\n");
    for chunk in [1, 2, 3, 4, 100] {
        let err = check(input.as_bytes(), chunk).unwrap_err();
        assert_eq!((err.line, err.column), (3, Some(6)), "chunk {chunk}: {err}");
    }
    let (out, rows) = check(
        format!("\u{feff}{HEADER}2024-01,A,F,P,g,1.00\n").as_bytes(),
        2,
    )
    .unwrap();
    assert_eq!(
        (out.as_str(), rows),
        ("2024-01,\"A\",\"F\",\"P\",\"g\",1.00\n", 1)
    );
}

#[test]
fn a_quoted_empty_text_is_an_empty_string_and_an_unquoted_one_is_null() {
    let input =
        format!("{HEADER}2024-01,A,F,P,\"\",1.00\n2024-01,A,F,P,,1.00\n2024-01,A,\"\",P,g,1.00\n");
    let (out, rows) = check(input.as_bytes(), 3).unwrap();
    assert_eq!(rows, 3);
    assert_eq!(
        out,
        "2024-01,\"A\",\"F\",\"P\",\"\",1.00\n\
         2024-01,\"A\",\"F\",\"P\",NULL,1.00\n\
         2024-01,\"A\",\"\",\"P\",\"g\",1.00\n"
    );
    // A number has no empty value, quoted or not.
    let err = error(&format!("{HEADER}2024-01,A,F,P,g,\"\"\n"));
    assert_eq!(
        (err.column, err.reason.as_str()),
        (Some(6), "missing value")
    );
}

#[test]
fn a_file_of_blank_lines_has_no_header() {
    let err = error("\n\r\n\n");
    assert!(err.reason.contains("no header"), "{err}");
    assert!(!err.reason.contains("has a header"), "{err}");
}

#[test]
fn a_part_reports_the_line_of_the_whole_file_and_names_the_part() {
    let datasets = datasets();
    let dataset = datasets.get("price_index").unwrap();
    let origin = Origin::part(
        "mysql/price_index/big.csv",
        "parts/big/00001.csv",
        3_768_115,
    );
    let mut checker = dataset.checker(origin);
    let part = format!("{HEADER}2024-01,A,F,P,g,1.00\r\n2024-01,A,F,P,g,x\r\n");
    let err = checker
        .feed(part.as_bytes())
        .and_then(|_| checker.finish())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "mysql/price_index/big.csv: line 3768116, column 6 (price): \"x\" is not a number \
         (checked in part parts/big/00001.csv)"
    );
}
