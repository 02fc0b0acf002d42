use crate::{BadInput, Datasets, DuplicateKey, BUNDLED};
use serde_json::{json, Value};

const HEADER: &str = "ref_date,geo,category,product,uom,price\n";
const FILE: &str = "dynamodb/price_index/f.csv";

/// Converts `input` fed in chunks of `chunk` bytes: the items, and the first duplicate key.
fn convert(input: &str, chunk: usize) -> Result<(Vec<Value>, Option<DuplicateKey>), BadInput> {
    let datasets = Datasets::parse("dynamodb.toml", BUNDLED).unwrap();
    let mut checker = datasets.get("price_index").unwrap().checker(FILE);
    let mut out = Vec::new();
    for piece in input.as_bytes().chunks(chunk) {
        out.extend(checker.feed(piece)?);
    }
    out.extend(checker.finish()?);
    let rows = checker.rows();
    let items: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(items.len() as u64, rows);
    let run = checker
        .into_encoder()
        .into_keys()
        .into_run(&Default::default())
        .unwrap();
    Ok((items, crate::first_duplicate(&[run]).unwrap()))
}

fn error(input: &str) -> String {
    let small = convert(input, 3).unwrap_err();
    assert_eq!(small, convert(input, 1 << 20).unwrap_err());
    small.to_string()
}

#[test]
fn rows_become_typed_items_with_a_deterministic_key() {
    let input = format!(
        "{HEADER}2024-01,Canada,Food,\"Bread #1, white\",675 g,3.49\n2024-01,Qu\u{e9}bec,Food,\"Say \"\"cheese\"\"\",,-12e3\n"
    );
    for chunk in [1, 7, 1 << 20] {
        let (items, duplicate) = convert(&input, chunk).unwrap();
        assert_eq!(duplicate, None);
        assert_eq!(
            items[0],
            json!({"Item": {
                "pk": {"S": "2024-01#Canada#Bread %231, white"},
                "ref_date": {"S": "2024-01"}, "geo": {"S": "Canada"}, "category": {"S": "Food"},
                "product": {"S": "Bread #1, white"}, "uom": {"S": "675 g"}, "price": {"N": "3.49"}
            }}),
            "chunk {chunk}"
        );
        assert_eq!(items[1]["Item"]["uom"], json!({"NULL": true}));
        assert_eq!(items[1]["Item"]["product"], json!({"S": "Say \"cheese\""}));
        assert_eq!(items[1]["Item"]["price"], json!({"N": "-12e3"}));
    }
    // The same rows give the same keys, whatever else changed.
    let changed = input.replace("3.49", "3.99");
    assert_eq!(
        convert(&changed, 64).unwrap().0[0]["Item"]["pk"],
        convert(&input, 64).unwrap().0[0]["Item"]["pk"]
    );
}

#[test]
fn duplicate_keys_are_named_by_both_lines() {
    let input = format!(
        "{HEADER}2024-01,Canada,Food,Bread,g,1\n2024-02,Canada,Food,Bread,g,1\n2024-01,Canada,Fuel,Bread,L,2\n"
    );
    let (_, duplicate) = convert(&input, 5).unwrap();
    assert_eq!(
        duplicate,
        Some(DuplicateKey {
            first_line: 2,
            second_line: 4
        })
    );
}

#[test]
fn values_dynamodb_cannot_hold_are_refused_with_line_and_column() {
    let row = |price: &str| {
        format!("{HEADER}2024-01,Canada,Food,Bread,g,1\n2024-01,Canada,Food,Milk,g,{price}\n")
    };
    let err = error(&row("12,34x").replace(",12,34x", ",\"12,34x\""));
    assert_eq!(
        err,
        "dynamodb/price_index/f.csv: line 3, column 6 (price): \"12,34x\" is not a number"
    );
    let digits = "1234567890123456789012345678901234567"; // 37
    assert!(convert(&row(&format!("{digits}9")), 64).is_ok());
    assert!(
        convert(&row(&format!("{digits}90000.000")), 64).is_ok(),
        "trailing zeros are not significant"
    );
    let err = error(&row(&format!("{digits}.12")));
    assert!(err.contains("39 significant digits"), "{err}");
    assert!(error(&row("1e126")).contains("outside the range"));
    assert!(convert(&row("9.9e125"), 64).is_ok());
    assert!(error(&row("1e-131")).contains("outside the range"));
    for bad in ["1.", ".", "--1", "1e", "0x10", "1 000", "NaN", "Infinity"] {
        assert!(error(&row(bad)).contains("is not a number"), "{bad}");
    }
    assert!(error(&row("")).contains("column 6 (price): missing value"));
}

#[test]
fn missing_keys_oversized_items_and_bad_bytes_are_refused() {
    let err = error(&format!("{HEADER}2024-01,,Food,Bread,g,1\n"));
    assert_eq!(
        err,
        "dynamodb/price_index/f.csv: line 2, column 2 (geo): missing key value"
    );
    let huge = "x".repeat(410 * 1024);
    let err = error(&format!("{HEADER}2024-01,Canada,{huge},Bread,g,1\n"));
    assert!(
        err.contains("line 2: the item would be") && err.contains("400 KB"),
        "{err}"
    );
    let mut bytes = format!("{HEADER}2024-01,Canada,Food,Br").into_bytes();
    bytes.extend_from_slice(b"\xff\xfe");
    bytes.extend_from_slice(b"ad,g,1\n");
    let datasets = Datasets::parse("dynamodb.toml", BUNDLED).unwrap();
    let mut checker = datasets.get("price_index").unwrap().checker(FILE);
    let err = checker
        .feed(&bytes)
        .and_then(|_| checker.finish())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "dynamodb/price_index/f.csv: line 2, column 4 (product): invalid UTF-8 at byte 2"
    );
    assert!(error("").contains("the file is empty"));
    assert!(error(HEADER).contains("a header but no data rows"));
}

#[test]
fn a_running_number_key_is_the_line() {
    let text = BUNDLED.replace(
        r#"key = ["ref_date", "geo", "product"]"#,
        r#"key = "running_number""#,
    );
    let datasets = Datasets::parse("dynamodb.toml", &text).unwrap();
    let mut checker = datasets.get("price_index").unwrap().checker(FILE);
    let mut out = checker
        .feed(
            format!("{HEADER}\n2024-01,Canada,Food,Bread,g,1\n2024-01,Canada,Food,Bread,g,1\n")
                .as_bytes(),
        )
        .unwrap();
    out.extend(checker.finish().unwrap());
    let keys: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["Item"]["pk"].clone())
        .collect();
    assert_eq!(keys, [json!({"N": "3"}), json!({"N": "4"})]);
}
