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
use landfall_aws::parameters::JsonParameters;
use landfall_totesys_contract::extract_state::TableState;
use landfall_totesys_star::SourceTable;
use sqlx::PgConnection;
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

pub async fn measure(
    conn: &mut PgConnection,
    extract_state: &JsonParameters,
    now: OffsetDateTime,
) -> Result<Freshness, WarehouseError> {
    let mut tables = Vec::new();
    for source in SourceTable::ALL {
        let table = source.name();
        let state: TableState = extract_state.load(table).await?;
        if state.sequence == 0 {
            continue; // nothing extracted: nothing to be late with
        }
        let first_missing: Option<i64> = sqlx::query_scalar(
            "SELECT min(s) FROM generate_series(1::bigint, $2::bigint) s
             WHERE NOT EXISTS (SELECT 1 FROM landfall.load_ledger l
                               WHERE l.source_table = $1 AND l.sequence = s)",
        )
        .bind(table)
        .bind(state.sequence as i64)
        .fetch_one(&mut *conn)
        .await
        .map_err(database(format!("freshness of {table}")))?;
        let visible_through = match first_missing {
            None => state.watermark.clone(),
            Some(1) => None,
            Some(next) => sqlx::query_scalar(
                "SELECT to_char(max(upper_bound), 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')
                 FROM landfall.load_ledger WHERE source_table = $1 AND sequence = $2",
            )
            .bind(table)
            .bind(next - 1)
            .fetch_one(&mut *conn)
            .await
            .map_err(database(format!("freshness of {table}")))?,
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
