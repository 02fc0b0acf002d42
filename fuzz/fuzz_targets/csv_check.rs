//! The CSV check with P1's encoder (`LOAD DATA` CSV): any bytes are accepted or refused
//! with a reason (never a panic), and the answer does not depend on how the stream was cut
//! into chunks — S3 hands the function arbitrary chunk boundaries.
#![no_main]

use landfall_fuzz::check_in_chunks;
use landfall_mysql_datasets::{Datasets, BUNDLED};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
    let datasets = Datasets::parse("datasets.toml", BUNDLED).expect("the bundled config");
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
    let whole = check(file, file.len());
    let chunked = check(file, usize::from(cut % 16) + 1);
    assert_eq!(whole, chunked, "the answer changed with the chunking");
    if let Ok(out) = whole {
        // LOAD DATA reads lines: every record the encoder wrote ends with one.
        assert!(out.is_empty() || out.ends_with(b"\n"));
    }
});
