//! How stale the warehouse is: per source table, the time up to which every change is
//! visible, and the pipeline lag = now − the oldest of those. A source row changed after
//! that time is not (known to be) in the warehouse, so the lag bounds the age of the oldest
//! change not yet visible — the quantity the 30-minute freshness promise is about.
//!
//! A table is visible up to:
//! - db-extract's watermark, when every object it has written (sequence 1..=n, contiguous)
//!   is in the load ledger — quiet tables stay fresh without writing objects;
//! - otherwise the upper bound of the object before the first one not loaded (an object
//!   stuck in transform, waiting on a dimension, or quarantined holds the lag back, so the
//!   alarm sees it);
//! - unknown while none of its objects has loaded (the first cycle).
//!
//! Source timestamps have no zone; totesys (like RDS by default) runs on UTC, and so do
//! the comparisons here.

use crate::load::{database, WarehouseError};
use crate::Session;
use landfall_aws::parameters::JsonParameters;
use landfall_totesys_contract::extract_state::TableState;
use landfall_totesys_star::SourceTable;
use std::collections::HashMap;
use time::{OffsetDateTime, PrimitiveDateTime};

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableFreshness {
    pub table: &'static str,
    /// `YYYY-MM-DDTHH:MM:SS.mmm` (UTC); None: nothing of the table has loaded yet.
    pub visible_through: Option<String>,
    pub lag_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Freshness {
    pub tables: Vec<TableFreshness>,
}

impl Freshness {
    /// The pipeline lag: the stalest table's (None until a table has loaded).
    pub fn lag_seconds(&self) -> Option<f64> {
        self.tables
            .iter()
            .filter_map(|t| t.lag_seconds)
            .reduce(f64::max)
    }
}

const SOURCE_TIME: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
);

fn seconds_since(stamp: &str, now: OffsetDateTime) -> Option<f64> {
    let at = PrimitiveDateTime::parse(stamp, SOURCE_TIME)
        .ok()?
        .assume_utc();
    Some((now - at).as_seconds_f64().max(0.0))
}

/// Per source table that has loaded anything: the first sequence id the ledger lacks, and
/// the upper bound of the one before it. One statement in the SQL both engines run (no
/// `generate_series`, which Redshift runs on its leader node only).
const GAPS: &str = "WITH gaps AS (
   SELECT c.source_table, MIN(c.s) AS first_missing
   FROM (SELECT DISTINCT source_table, CAST(1 AS BIGINT) AS s FROM landfall.load_ledger
         UNION ALL
         SELECT source_table, sequence + 1 FROM landfall.load_ledger) c
   WHERE NOT EXISTS (SELECT 1 FROM landfall.load_ledger m
                     WHERE m.source_table = c.source_table AND m.sequence = c.s)
   GROUP BY c.source_table)
 SELECT g.source_table, g.first_missing, CAST(MAX(l.upper_bound) AS VARCHAR)
 FROM gaps g
 LEFT JOIN landfall.load_ledger l
   ON l.source_table = g.source_table AND l.sequence = g.first_missing - 1
 GROUP BY g.source_table, g.first_missing";

/// `2024-11-14 15:04:09.8` (as a database writes a timestamp) as `2024-11-14T15:04:09.800`.
fn source_time(text: &str) -> Option<String> {
    let (date, time) = text.trim().split_once([' ', 'T'])?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    Some(format!("{date}T{clock}.{millis}"))
}

pub(crate) async fn measure(
    session: &mut Session<'_>,
    extract_state: &JsonParameters,
    now: OffsetDateTime,
) -> Result<Freshness, WarehouseError> {
    let gaps: HashMap<String, (i64, Option<String>)> = match session {
        Session::Postgres(conn) => sqlx::query_as::<_, (String, i64, Option<String>)>(GAPS)
            .fetch_all(&mut **conn)
            .await
            .map_err(database("freshness"))?
            .into_iter()
            .map(|(table, first, upper)| (table, (first, upper)))
            .collect(),
        Session::Redshift(redshift) => redshift
            .query(GAPS)
            .await?
            .into_iter()
            .filter_map(|row| {
                let mut row = row.into_iter();
                let table = row.next()??;
                let first = row.next()??.parse().ok()?;
                Some((table, (first, row.next().flatten())))
            })
            .collect(),
    };
    let mut tables = Vec::new();
    for source in SourceTable::ALL {
        let table = source.name();
        let state: TableState = extract_state.load(table).await?;
        if state.sequence == 0 {
            continue; // nothing extracted: nothing to be late with
        }
        let visible_through = match gaps.get(table) {
            None | Some((1, _)) => None,
            Some((first, _)) if *first > state.sequence as i64 => state.watermark.clone(),
            Some((_, upper)) => upper.as_deref().and_then(source_time),
        };
        tables.push(TableFreshness {
            table,
            lag_seconds: visible_through
                .as_deref()
                .and_then(|s| seconds_since(s, now)),
            visible_through,
        });
    }
    Ok(Freshness { tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_counted_from_the_source_clock_as_utc() {
        let now = time::macros::datetime!(2024-11-14 15:34:09.845 UTC);
        assert_eq!(seconds_since("2024-11-14T15:04:09.845", now), Some(1800.0));
        assert_eq!(seconds_since("2024-11-14T15:34:10.000", now), Some(0.0));
        assert_eq!(seconds_since("not a time", now), None);
    }

    #[test]
    fn database_timestamps_read_as_the_extract_writes_them() {
        for (text, expected) in [
            ("2024-11-14 15:04:09.845", "2024-11-14T15:04:09.845"),
            ("2024-11-14 15:04:09.8", "2024-11-14T15:04:09.800"),
            ("2024-11-14 15:04:09", "2024-11-14T15:04:09.000"),
            ("2024-11-14T15:04:09.845123", "2024-11-14T15:04:09.845"),
        ] {
            assert_eq!(source_time(text).as_deref(), Some(expected), "{text}");
        }
        assert_eq!(source_time("yesterday"), None);
    }

    #[test]
    fn the_stalest_table_is_the_pipeline_lag() {
        let table = |lag| TableFreshness {
            table: "t",
            visible_through: None,
            lag_seconds: lag,
        };
        let freshness = Freshness {
            tables: vec![table(Some(5.0)), table(None), table(Some(90.0))],
        };
        assert_eq!(freshness.lag_seconds(), Some(90.0));
        assert_eq!(Freshness { tables: vec![] }.lag_seconds(), None);
    }
}
