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

/// An orders file's header (P3).
pub const ORDERS_HEADER: &str = "order_id,customer_id,order_ts,status,amount,currency\n";

const SEGMENTS: [&str; 3] = ["consumer", "corporate", "small business"];
const STATUSES: [&str; 4] = ["placed", "paid", "shipped", "delivered"];

/// The `customers` reference table's rows `C0000`…: segment `i % 3`, country `i % 4`.
pub fn customers(count: u32) -> Vec<[String; 4]> {
    (0..count)
        .map(|i| {
            [
                format!("C{i:04}"),
                format!("Customer {i}"),
                SEGMENTS[i as usize % SEGMENTS.len()].to_owned(),
                ["GB", "FR", "DE", "ES"][i as usize % 4].to_owned(),
            ]
        })
        .collect()
}

/// Orders `range` (`O<i>`, a customer of `customers`, a status, an amount of
/// `<i % 1000>.<i % 100>`), each at `2026-11-<day> <hour>:…` with `revision` seconds added:
/// a later revision of the same orders is newer and wins.
pub fn orders_csv(range: Range<u32>, customers: u32, revision: u32) -> String {
    let mut text = String::from(ORDERS_HEADER);
    for i in range {
        text.push_str(&format!(
            "O{i:07},C{:04},2026-11-{:02} {:02}:{:02}:{:02},{},{}.{:02},GBP\n",
            i % customers.max(1),
            i % 28 + 1,
            i % 24,
            i % 60,
            revision % 60,
            STATUSES[(i + revision) as usize % STATUSES.len()],
            i % 1000,
            i % 100
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_name_known_customers_and_later_revisions_are_newer() {
        assert_eq!(
            orders_csv(5..6, 3, 0),
            format!("{ORDERS_HEADER}O0000005,C0002,2026-11-06 05:05:00,paid,5.05,GBP\n")
        );
        assert!(orders_csv(5..6, 3, 1).contains("2026-11-06 05:05:01,shipped"));
        assert_eq!(
            customers(4)[3],
            ["C0003", "Customer 3", "consumer", "ES"].map(String::from)
        );
    }

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
