//! The ingestion bucket's object layout: one object per table and extract run,
//! `<table>/<yyyy-mm-dd of the run's upper bound>/<table>-<sequence, 10 digits>.jsonl.gz`,
//! gzip-compressed JSON lines, one source row version per line. Sorted by sequence within a
//! table; a retried run reuses its key. The writer and the readers share this crate so the
//! layout cannot drift between them.

/// The key of a table's run `sequence` whose upper bound is `upper` (an ISO-8601 timestamp).
pub fn object_key(table: &str, upper: &str, sequence: u64) -> String {
    let date = upper.get(..10).unwrap_or("unknown");
    format!("{table}/{date}/{table}-{sequence:010}{SUFFIX}")
}

const SUFFIX: &str = ".jsonl.gz";

/// The object's user metadata naming its run's upper bound: every source row of the table
/// with `last_updated` at or before it is in this object or an earlier one. Downstream, it
/// says how fresh the warehouse is once the object is loaded.
pub const UPPER_METADATA: &str = "landfall-upper";

/// The parts of an ingestion key a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectName<'a> {
    pub table: &'a str,
    pub sequence: u64,
    /// The key without `.jsonl.gz`: derived objects are named after it.
    pub stem: &'a str,
}

/// The table and sequence id an ingestion key names; None for any other key.
pub fn parse_object_key(key: &str) -> Option<ObjectName<'_>> {
    let stem = key.strip_suffix(SUFFIX)?;
    let file = stem.rsplit('/').next()?;
    let (table, sequence) = file.rsplit_once('-')?;
    if table.is_empty() || sequence.len() != 10 {
        return None;
    }
    Some(ObjectName {
        table,
        sequence: sequence.parse().ok()?,
        stem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_table_date_and_padded_sequence_and_parse_back() {
        let key = object_key("transaction", "2024-11-14T15:34:09.845", 42);
        assert_eq!(
            key,
            "transaction/2024-11-14/transaction-0000000042.jsonl.gz"
        );
        let name = parse_object_key(&key).unwrap();
        assert_eq!((name.table, name.sequence), ("transaction", 42));
        assert_eq!(name.stem, "transaction/2024-11-14/transaction-0000000042");
        let name =
            parse_object_key("sales_order/2024-01-01/sales_order-0000000001.jsonl.gz").unwrap();
        assert_eq!((name.table, name.sequence), ("sales_order", 1));
    }

    #[test]
    fn other_keys_are_not_ingestion_objects() {
        for key in [
            "x/readme.txt",
            "sales_order/2024-01-01/sales_order-1.jsonl.gz",
            "sales_order/2024-01-01/-0000000001.jsonl.gz",
            "sales_order/2024-01-01/sales_order-00000000x1.jsonl.gz",
            "sales_order/2024-01-01/sales_order-0000000001.jsonl",
        ] {
            assert_eq!(parse_object_key(key), None, "{key}");
        }
    }
}
