//! The price_index files P1 and P2 both take: one shape of CSV, one bad line, one correction.

use landfall_devstack::sample::price_index_csv;
use std::ops::Range;

/// A price that is no number.
pub const BAD_LINE: &str = "2024-02,Canada,Food,Bread,kg,1.2.3\n";

/// Products `Item <n>`, with a header.
pub fn rows(rows: Range<u32>) -> String {
    price_index_csv(rows)
}

/// Where the refusal of `BAD_LINE` as line `line` points.
pub fn bad_words(line: u32) -> String {
    format!("line {line}, column 6 (price)")
}

/// The same rows as `rows(0..rows)` at prices 1,000 higher, as a corrected upload has them.
pub fn changed(rows: u32) -> Vec<u8> {
    price_index_csv(0..rows)
        .replace(",kg,", ",kg,100")
        .into_bytes()
}
