-- warehouse-loader's bookkeeping, apart from the star schema BI users query.
CREATE SCHEMA landfall;

-- One row per loaded manifest, written in the same transaction as its rows: a retry, a
-- redelivery or an overlapping run finds the row (or waits on it) and loads nothing twice.
CREATE TABLE landfall.load_ledger (
  manifest        text PRIMARY KEY,          -- its ready/ key in the processed bucket
  source          text NOT NULL,             -- s3://ingestion bucket/key
  source_version  text NOT NULL,
  source_table    text NOT NULL,
  sequence        bigint NOT NULL,
  upper_bound     timestamp(3),              -- the extract run's upper bound, when known
  rows            integer NOT NULL,
  loaded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX load_ledger_table_sequence ON landfall.load_ledger (source_table, sequence);

-- The version of each dimension row now in the warehouse, so an older version arriving late
-- never overwrites a newer one (the dimensions themselves keep exactly the spec's columns).
CREATE TABLE landfall.dim_version (
  dim                  text NOT NULL,
  id                   integer NOT NULL,
  source_last_updated  timestamp(3) NOT NULL,
  joined_last_updated  timestamp(3),
  PRIMARY KEY (dim, id)
);

-- One fact row per source version: a second guard behind the ledger.
CREATE UNIQUE INDEX fact_sales_order_version
  ON fact_sales_order (sales_order_id, last_updated_date, last_updated_time);
CREATE UNIQUE INDEX fact_purchase_orders_version
  ON fact_purchase_orders (purchase_order_id, last_updated_date, last_updated_time);
CREATE UNIQUE INDEX fact_payment_version
  ON fact_payment (payment_id, last_updated_date, last_updated_time);
