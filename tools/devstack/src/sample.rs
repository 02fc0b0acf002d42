//! Sample landing files for the local stack: the demo drops them (`devstack sample`), the
//! tests load them, so both exercise the same shapes.

use std::ops::Range;

/// The `price_index` dataset's header (config/datasets.toml).
pub const PRICE_INDEX_HEADER: &str = "ref_date,geo,category,product,uom,price\n";

/// `price_index` rows `range`, with a header: a distinct key per row (product `Item <i>`),
/// a quoted field holding the delimiter (`"Region <i % 5>, North"`), twelve months, and a
/// price of `<i % 50>.<i % 100>`, so a test can compute what a row holds.
pub fn price_index_csv(range: Range<u32>) -> String {
    let mut text = String::from(PRICE_INDEX_HEADER);
    for i in range {
        text.push_str(&format!(
            "2024-{:02},\"Region {}, North\",Food,\"Item {i}\",kg,{}.{:02}\n",
            i % 12 + 1,
            i % 5,
            i % 50,
            i % 100
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_and_quoted() {
        let text = price_index_csv(41..43);
        assert_eq!(
            text,
            "ref_date,geo,category,product,uom,price\n\
             2024-06,\"Region 1, North\",Food,\"Item 41\",kg,41.41\n\
             2024-07,\"Region 2, North\",Food,\"Item 42\",kg,42.42\n"
        );
    }
}
