//! CSV → DynamoDB JSON (P2's encoder): any file is refused with a reason or becomes lines
//! that are each one JSON object `{"Item": …}` holding the key attribute, and the answer does
//! not depend on the chunking.
#![no_main]

use landfall_dynamodb_datasets::{Datasets, BUNDLED};
use landfall_fuzz::check_in_chunks;
use libfuzzer_sys::fuzz_target;

fn convert(data: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
    let datasets = Datasets::parse("dynamodb.toml", BUNDLED).expect("the bundled config");
    let checker = datasets
        .get("price_index")
        .expect("price_index")
        .checker("fuzz.csv");
    check_in_chunks(checker, data, chunk)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, file)) = data.split_first() else {
        return;
    };
    let whole = convert(file, file.len());
    assert_eq!(whole, convert(file, usize::from(cut % 16) + 1));
    if let Ok(out) = whole {
        for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let item: serde_json::Value = serde_json::from_slice(line).expect("a JSON line");
            assert!(
                item["Item"]["pk"]["S"].is_string(),
                "no key attribute: {item}"
            );
        }
    }
});
