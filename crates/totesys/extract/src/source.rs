//! The SQL that turns a source table's changed rows into JSON lines. PostgreSQL renders each
//! row itself (`json_build_object`), so strings are escaped by the server and no value passes
//! through a float: numerics become JSON strings, timestamps ISO-8601 with milliseconds,
//! enums text, NULL null. Column names and types come from the catalog; the table name from
//! the allowlisted config; the bounds are bind parameters.

use landfall_sql_ident::Ident;
use sqlx::PgConnection;

/// `json_build_object` takes at most 100 arguments: 50 columns.
const COLUMNS_PER_OBJECT: usize = 50;
pub const TIMESTAMP_FORMAT: &str = "YYYY-MM-DD\"T\"HH24:MI:SS.MS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// As `format_type` writes it: `integer`, `numeric(10,2)`, `timestamp(3) without time zone`, …
    pub type_name: String,
}

/// The relation's columns in order; empty when it does not exist or is not visible.
pub async fn columns(conn: &mut PgConnection, relation: &str) -> Result<Vec<Column>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
           FROM pg_attribute a
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum",
    )
    .bind(relation)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, type_name)| Column { name, type_name })
        .collect())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// How one column is written into the JSON object.
fn value_expression(column: &Column) -> String {
    let c = format!("t.{}", quote_ident(&column.name));
    let t = column.type_name.as_str();
    match t {
        "integer" | "smallint" | "bigint" | "boolean" | "json" | "jsonb" => c,
        "date" => format!("to_char({c}, 'YYYY-MM-DD')"),
        _ if t.starts_with("timestamp")
            && t.ends_with("with time zone")
            && !t.ends_with("without time zone") =>
        {
            format!("to_char({c} AT TIME ZONE 'UTC', '{TIMESTAMP_FORMAT}\"Z\"')")
        }
        _ if t.starts_with("timestamp") => format!("to_char({c}, '{TIMESTAMP_FORMAT}')"),
        // numeric, real, text, varchar, enums, uuid, …: text, so no float touches money.
        _ => format!("{c}::text"),
    }
}

/// One text value per row: the row as a JSON object, keys in column order.
pub fn json_expression(columns: &[Column]) -> String {
    let objects: Vec<String> = columns
        .chunks(COLUMNS_PER_OBJECT)
        .map(|chunk| {
            let pairs: Vec<String> = chunk
                .iter()
                .map(|c| format!("{}, {}", quote_literal(&c.name), value_expression(c)))
                .collect();
            pairs.join(", ")
        })
        .collect();
    if objects.len() == 1 {
        format!("json_build_object({})::text", objects[0])
    } else {
        // jsonb objects concatenate (keys then sort by jsonb's rules).
        let merged: Vec<String> = objects
            .iter()
            .map(|o| format!("jsonb_build_object({o})"))
            .collect();
        format!("({})::text", merged.join(" || "))
    }
}

/// The rows with `lower < cursor <= upper` (no lower bound on the first run). Binds: the
/// bounds as text, lower first when there is one.
pub fn select_changed(relation: &str, json: &str, cursor: &Ident, has_lower: bool) -> String {
    let cursor = cursor.pg_quoted();
    if has_lower {
        format!("SELECT {json} FROM {relation} t WHERE t.{cursor} > $1::timestamp AND t.{cursor} <= $2::timestamp")
    } else {
        format!("SELECT {json} FROM {relation} t WHERE t.{cursor} <= $1::timestamp")
    }
}

/// A run's rows in (cursor, key) order, so it can stop after any row and go on after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunked<'a> {
    pub relation: &'a str,
    pub cursor: &'a Ident,
    pub key: &'a Column,
    pub has_lower: bool,
    /// Whether the run goes on after a row its earlier objects hold.
    pub has_after: bool,
}

impl Chunked<'_> {
    /// The range, and the next bind's number. Binds: lower (when there is one), upper, then the
    /// cursor and key after which it goes on (when it does), all as text.
    fn range(&self) -> (String, usize) {
        let cursor = self.cursor.pg_quoted();
        let mut n = 1;
        let mut next = || {
            n += 1;
            n - 1
        };
        let mut clauses = Vec::new();
        if self.has_lower {
            clauses.push(format!("t.{cursor} > ${}::timestamp", next()));
        }
        clauses.push(format!("t.{cursor} <= ${}::timestamp", next()));
        if self.has_after {
            let key = quote_ident(&self.key.name);
            let (c, k) = (next(), next());
            clauses.push(format!(
                "(t.{cursor}, t.{key}) > (${c}::timestamp, ${k}::{})",
                self.key.type_name
            ));
        }
        (clauses.join(" AND "), next())
    }

    fn order(&self) -> String {
        format!(
            "t.{}, t.{}",
            self.cursor.pg_quoted(),
            quote_ident(&self.key.name)
        )
    }

    /// The next object's rows (bind the limit last): each as JSON, with its cursor (as the
    /// watermark spells it) and key as text.
    /// Ordered and limited before a row is rendered, so a sort moves the rows, not their JSON.
    pub fn select(&self, json: &str) -> String {
        let (range, limit) = self.range();
        format!(
            "SELECT {json}, to_char(t.{}, '{TIMESTAMP_FORMAT}'), t.{}::text FROM \
             (SELECT * FROM {} t WHERE {range} ORDER BY {order} LIMIT ${limit}) t ORDER BY {order}",
            self.cursor.pg_quoted(),
            quote_ident(&self.key.name),
            self.relation,
            order = self.order()
        )
    }

    /// The planner's estimate of the rows in the range (the same binds, no limit): its plan,
    /// whose first line ends `rows=<n> width=<w>)`.
    pub fn estimate(&self) -> String {
        let (range, _) = self.range();
        format!("EXPLAIN SELECT 1 FROM {} t WHERE {range}", self.relation)
    }
}

/// The relation's primary key, when it is one column (None for a view or a composite key).
pub async fn primary_key(
    conn: &mut PgConnection,
    relation: &str,
) -> Result<Option<String>, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
    )
    .bind(relation)
    .fetch_all(conn)
    .await?;
    Ok(match <[String; 1]>::try_from(names) {
        Ok([name]) => Some(name),
        Err(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, type_name: &str) -> Column {
        Column {
            name: name.into(),
            type_name: type_name.into(),
        }
    }

    #[test]
    fn each_type_is_rendered_exactly() {
        let columns = [
            column("id", "integer"),
            column("price", "numeric(10,2)"),
            column("last_updated", "timestamp(3) without time zone"),
            column("at", "timestamp with time zone"),
            column("kind", "\"PaymentTypeName\""),
            column("paid", "boolean"),
            column("it's", "text"),
        ];
        let json = json_expression(&columns);
        assert_eq!(
            json,
            "json_build_object('id', t.\"id\", 'price', t.\"price\"::text, \
             'last_updated', to_char(t.\"last_updated\", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), \
             'at', to_char(t.\"at\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
             'kind', t.\"kind\"::text, 'paid', t.\"paid\", 'it''s', t.\"it's\"::text)::text"
        );
    }

    #[test]
    fn wide_tables_merge_several_objects() {
        let columns: Vec<Column> = (0..120).map(|i| column(&format!("c{i}"), "text")).collect();
        let json = json_expression(&columns);
        assert_eq!(json.matches("jsonb_build_object(").count(), 3);
    }

    #[test]
    fn a_chunk_goes_on_after_the_last_row_in_cursor_then_key_order() {
        let cursor = Ident::new("last_updated").unwrap();
        let key = column("payment_id", "integer");
        let chunked = Chunked {
            relation: "\"payment\"",
            cursor: &cursor,
            key: &key,
            has_lower: true,
            has_after: true,
        };
        assert_eq!(
            chunked.select("J"),
            "SELECT J, to_char(t.\"last_updated\", 'YYYY-MM-DD\"T\"HH24:MI:SS.MS'), t.\"payment_id\"::text \
             FROM (SELECT * FROM \"payment\" t WHERE t.\"last_updated\" > $1::timestamp \
             AND t.\"last_updated\" <= $2::timestamp \
             AND (t.\"last_updated\", t.\"payment_id\") > ($3::timestamp, $4::integer) \
             ORDER BY t.\"last_updated\", t.\"payment_id\" LIMIT $5) t \
             ORDER BY t.\"last_updated\", t.\"payment_id\""
        );
        assert_eq!(
            chunked.estimate(),
            "EXPLAIN SELECT 1 FROM \"payment\" t WHERE t.\"last_updated\" > $1::timestamp \
             AND t.\"last_updated\" <= $2::timestamp \
             AND (t.\"last_updated\", t.\"payment_id\") > ($3::timestamp, $4::integer)"
        );
    }

    #[test]
    fn bounds_are_parameters() {
        let cursor = Ident::new("last_updated").unwrap();
        assert_eq!(
            select_changed("\"transaction\"", "J", &cursor, true),
            "SELECT J FROM \"transaction\" t WHERE t.\"last_updated\" > $1::timestamp AND t.\"last_updated\" <= $2::timestamp"
        );
        assert!(select_changed("x", "J", &cursor, false).ends_with("<= $1::timestamp"));
    }
}
